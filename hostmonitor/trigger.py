"""Hand one host failure to Mistral: start ``instance_ha.host_evacuate``.

The execution id is derived from the failure (host and fence completion
time), so every trigger of the same failure, from any controller, after any
restart, names the same execution; Mistral returns the existing execution
for an id it already has (POST /v2/executions with an ``id``).
python-mistralclient's ``executions.create`` has no id argument, hence the
direct POST through the client's own manager.
"""

import datetime
import json
import uuid

WORKFLOW = "instance_ha.host_evacuate"
# Namespace of the execution ids; changing it would re-trigger every
# failure still in Pacemaker's history.
EXECUTION_NAMESPACE = uuid.UUID("6f0b6a52-8c8e-5d1e-9a3e-2c1d6b7f4e10")
DESCRIPTION_PREFIX = "instance-ha: evacuate host "


def failure_key(host, fenced_at):
    """The identity of one failure of one host, as text (in UTC: the same
    instant must give the same key on every controller)."""
    fenced_at = fenced_at.astimezone(datetime.timezone.utc)
    return f"{host}@{fenced_at.isoformat(timespec='microseconds')}"


def execution_id(host, fenced_at):
    return str(uuid.uuid5(EXECUTION_NAMESPACE, failure_key(host, fenced_at)))


def description(host, fenced_at, origin):
    return (f"{DESCRIPTION_PREFIX}{host} (fenced "
            f"{fenced_at.isoformat(timespec='seconds')}), "
            f"triggered by {origin}")


def workflow_input(host, on_shared_storage, node=None):
    """``host``: the Nova host; ``node``: its Pacemaker node (default: the
    same name), which the workflow finds fenced before it acts."""
    return {"search_opts": {"host": host},
            "fencing": {"node": node or host},
            "on_shared_storage": bool(on_shared_storage)}


class Trigger:
    """Start the host workflow for failed_fenced verdicts."""

    def __init__(self, client, on_shared_storage, origin="hostmonitor",
                 workflow=WORKFLOW):
        self.client = client
        self.on_shared_storage = on_shared_storage
        self.origin = origin
        self.workflow = workflow

    def __call__(self, verdict):
        """The Mistral execution (new, or the existing one for this
        failure); raises what python-mistralclient raises."""
        host, fenced_at = verdict.name, verdict.fenced_at
        if fenced_at is None:
            raise ValueError(f"{host}: no fencing time: not a failed_fenced "
                             "verdict")
        body = {
            "id": execution_id(host, fenced_at),
            "workflow_name": self.workflow,
            "input": json.dumps(workflow_input(host,
                                               self.on_shared_storage)),
            "description": description(host, fenced_at, self.origin),
        }
        return self.client.executions._create("/executions", body)
