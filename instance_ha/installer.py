"""Register the pack's workflows on a Mistral, idempotently and all-or-nothing.

Everything that can refuse is checked before anything is written: Mistral is
reachable, every action the workflows use is known to it (otherwise the pack
is not installed where that Mistral runs its executors), every sub-workflow
resolves, and Mistral validates every definition.  Only then are workflows
created or updated, and a workflow whose stored definition already equals
the pack's is left alone, so a second install changes nothing.
"""

import dataclasses
import time

from mistralclient.api import base as mistral_base

from instance_ha import mistral_client
from instance_ha import pack

SMOKE_WORKFLOW = "instance_ha.smoke_test"


class InstallError(Exception):
    """The pack was not installed; nothing was changed.  ``transient``:
    Mistral did not answer or answered 5xx, so trying again may work."""

    def __init__(self, message, transient=False):
        super().__init__(message)
        self.transient = transient


@dataclasses.dataclass(frozen=True)
class Outcome:
    workflow: str
    change: str  # created | updated | unchanged


def install(client, files=None):
    """Create or update every workflow of the pack; return one Outcome each."""
    files = pack.workflow_files() if files is None else files
    existing = _stored_definitions(client, files)
    _check_actions(client, files)
    _check_subworkflows(client, files)
    _validate(client, files)
    return [Outcome(wf.workflow, _install_one(client, wf,
                                              existing.get(wf.workflow)))
            for wf in files]


def _install_one(client, wf, stored):
    """created | updated | unchanged.  Another installer (the embedded
    server registering the pack at its start, a second controller) may
    create the workflow between our read and our create: Mistral answers
    409 "Duplicate entry", and the stored definition is read again and
    compared, then updated when it differs."""
    if stored is None:
        try:
            _write(client.workflows.create, wf)
            return "created"
        except InstallError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, mistral_base.APIException)
                    and cause.error_code == 409):
                raise
        stored = _stored_definitions(client, [wf]).get(wf.workflow)
    if stored == wf.text:
        return "unchanged"
    _write(client.workflows.update, wf)
    return "updated"


def verify_executors(client, timeout=60.0, interval=0.5):
    """Run the smoke workflow: proves an executor has this pack version."""
    try:
        execution = client.executions.create(
            SMOKE_WORKFLOW,
            workflow_input={"expected_version": pack.version()},
            description="instance-ha install --verify")
        deadline = time.monotonic() + timeout
        while execution.state in ("IDLE", "RUNNING"):
            if time.monotonic() > deadline:
                raise InstallError(
                    f"{SMOKE_WORKFLOW} execution {execution.id} still "
                    f"{execution.state} after {timeout:.0f} s: is any Mistral "
                    "executor running?")
            time.sleep(interval)
            execution = client.executions.get(execution.id)
    except mistral_client.TRANSPORT_ERRORS as exc:
        raise InstallError(f"smoke workflow failed to run: "
                           f"{mistral_client.describe(exc)}") from exc
    if execution.state != "SUCCESS":
        raise InstallError(f"{SMOKE_WORKFLOW} execution {execution.id} ended "
                           f"{execution.state}: {execution.state_info}")
    return execution


def _stored_definitions(client, files):
    stored = {}
    for wf in files:
        try:
            stored[wf.workflow] = client.workflows.get(wf.workflow).definition
        except mistral_base.APIException as exc:
            if exc.error_code != 404:
                raise _unreachable(exc) from exc
        except mistral_client.TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc
    return stored


def _check_actions(client, files):
    needed = sorted(set().union(*(wf.actions for wf in files)))
    missing = [name for name in needed if not _known(client.actions, name)]
    if missing:
        raise InstallError(
            "Mistral does not know the action(s) " + ", ".join(missing) +
            ": install the instance-ha package where Mistral's API, engines "
            "and executors run, restart them, then run install again. "
            "No workflow was uploaded.")


def _check_subworkflows(client, files):
    ours = {wf.workflow for wf in files}
    needed = sorted(set().union(*(wf.subworkflows for wf in files)) - ours)
    missing = [name for name in needed if not _known(client.workflows, name)]
    if missing:
        raise InstallError("sub-workflow(s) not found in the pack or on "
                           "Mistral: " + ", ".join(missing) +
                           ". No workflow was uploaded.")


def _validate(client, files):
    for wf in files:
        try:
            result = client.workflows.validate(wf.text)
        except mistral_client.TRANSPORT_ERRORS as exc:
            raise _unreachable(exc) from exc
        if not result.get("valid"):
            raise InstallError(f"Mistral rejects {wf.filename}: "
                               f"{result.get('error')}. No workflow was "
                               "uploaded.")


def _known(manager, name):
    try:
        manager.get(name)
        return True
    except mistral_base.APIException as exc:
        if exc.error_code == 404:
            return False
        raise _unreachable(exc) from exc
    except mistral_client.TRANSPORT_ERRORS as exc:
        raise _unreachable(exc) from exc


def _write(method, wf):
    try:
        method(wf.text)
    except mistral_client.TRANSPORT_ERRORS as exc:
        raise InstallError(
            f"uploading {wf.filename} failed: "
            f"{mistral_client.describe(exc)}; workflows listed before it "
            "were already written, run install again",
            transient=_transient(exc)) from exc


def _unreachable(exc):
    return InstallError(f"cannot use Mistral: {mistral_client.describe(exc)}",
                        transient=_transient(exc))


def _transient(exc):
    if isinstance(exc, mistral_base.APIException):
        return (exc.error_code or 0) >= 500
    return True


def mistral_url(client):
    return client.workflows.http_client.base_url
