"""Operator commands that start, follow and stop recoveries: evacuate,
restart-instance, process-down, host-return, status, abort."""

import json
import time

import click

from instance_ha import cli_common
from instance_ha import workflow_inputs

TERMINAL = ("SUCCESS", "ERROR", "CANCELLED")


@click.command()
@click.argument("host")
@click.option("--shared-storage/--no-shared-storage", default=None,
              help="Tell Nova the instances' disks are on shared storage "
                   "(used only below compute API 2.14; newer Nova "
                   "decides itself).  [default: let Nova decide]")
@click.option("--concurrency", type=click.IntRange(1, 200), default=10,
              show_default=True, help="VMs evacuated at once.")
@click.option("--restart-group", "restart_groups", multiple=True,
              metavar="NAME",
              help="A restart group (instance_ha:restart_group), repeated "
                   "in the order the groups start: each group's VMs start "
                   "only after every VM of the groups before it is "
                   "recovered or failed; VMs of no named group come last.")
@click.option("--capacity-check/--no-capacity-check", default=True,
              show_default=True,
              help="Estimate from placement which VMs the other hosts have "
                   "room for, and leave those that fit nowhere on HOST "
                   "(reported failed) instead of sending them to fail with "
                   "NoValidHost.")
@click.option("--ignore-max-failures", is_flag=True,
              help="Recover HOST although one of its aggregates has more "
                   "failed hosts than its instance_ha:max_failures allows "
                   "(the agent never does).")
@click.option("--wait", is_flag=True,
              help="Follow the recovery until it ends; exit 1 unless every "
                   "VM was moved or skipped.")
@click.option("--pacemaker-node", metavar="NODE",
              help="HOST's name in Pacemaker, where it differs from Nova's. "
                   " [default: HOST]")
@click.option("--fencing-override", metavar="WHY",
              help="Evacuate without Pacemaker's word, for a host it does "
                   "not manage that you know is powered off: WHY (10 to "
                   f"{workflow_inputs.MAX_OVERRIDE_REASON} characters) goes "
                   "into the recovery's input, its output and Nova's "
                   "disabled reason.")
@cli_common.mistral_options
def evacuate(host, shared_storage, concurrency, restart_groups,
             capacity_check, ignore_max_failures, wait, pacemaker_node,
             fencing_override, mistral_url, os_cloud, clouds_yaml):
    """Recover the VMs of HOST, a compute host that is down and FENCED.

    Starts instance_ha.host_evacuate and prints its execution id, then
    what its first step found: Pacemaker (read where Mistral runs its
    actions) shows HOST fenced, or the run refused and changed nothing
    (exit 1).  A recovery already running for HOST is shown instead of
    starting a second one.
    """
    from instance_ha import recovery_status

    fencing = {"node": pacemaker_node} if pacemaker_node else {}
    if fencing_override is not None:
        if pacemaker_node:
            raise click.UsageError("--pacemaker-node and --fencing-override "
                                   "exclude each other")
        fencing = {"override": fencing_override}
    wf_input = {"search_opts": {"host": host}, "fencing": fencing,
                "on_shared_storage": shared_storage,
                "concurrency": concurrency,
                "restart_groups": list(restart_groups),
                "check_capacity": capacity_check,
                "ignore_max_failures": ignore_max_failures}
    found = workflow_inputs.problems(recovery_status.HOST_WORKFLOW, wf_input)
    if found:
        raise click.UsageError("; ".join(found))
    client = cli_common.connect(mistral_url, os_cloud, clouds_yaml)
    with cli_common.mistral_errors():
        running = [e for e in client.executions.list(
            workflow_name=recovery_status.HOST_WORKFLOW, state="RUNNING")
            if _host_of(e) == host]
        if running:
            click.echo(f"a recovery of {host} is already running: "
                       f"{running[0].id}")
            execution = running[0]
        else:
            execution = client.executions.create(
                recovery_status.HOST_WORKFLOW, workflow_input=wf_input,
                description=f"evacuate {host} (manual: instance-ha "
                            "evacuate)")
            click.echo(execution.id)
            click.echo(f"fencing: {_fencing_decision(client, execution)}")
    if wait:
        recovery = follow(client, execution.id)
        print_table(recovery)
        if recovery.state != "SUCCESS":
            raise click.exceptions.Exit(1)


def _fencing_decision(client, execution, timeout=120, interval=0.5):
    """What the run's confirm_fencing step found; ClickException (exit 1)
    when the run refused."""
    from instance_ha import recovery_status

    deadline = time.monotonic() + timeout
    while True:
        recovery = recovery_status.read(client, execution.id)
        if recovery.state == "ERROR":
            raise click.ClickException(recovery.state_info or "the "
                                       "recovery failed before its first "
                                       "step")
        if recovery.fencing:
            return recovery.fencing
        if time.monotonic() > deadline:
            return (f"not decided after {timeout} s (see instance-ha "
                    f"status {execution.id})")
        time.sleep(interval)


@click.command("restart-instance")
@click.argument("server")
@cli_common.mistral_options
def restart_instance(server, mistral_url, os_cloud, clouds_yaml):
    """Recover one crashed VM in place (stop, then start, by its state)."""
    client = cli_common.connect(mistral_url, os_cloud, clouds_yaml)
    with cli_common.mistral_errors():
        execution = client.executions.create(
            "instance_ha.instance_restart",
            workflow_input={"server": server},
            description=f"restart instance {server} (manual)")
    click.echo(execution.id)


PROCESS_DOWN_WORKFLOW = "instance_ha.process_down"


@click.command("process-down")
@click.argument("host")
@click.option("--reason", metavar="TEXT",
              help="Nova's disabled reason.  [default: the workflow's, "
                   "naming its execution]")
@click.option("--wait", is_flag=True,
              help="Follow the run until it ends and print its outcome; "
                   "exit 1 unless it succeeded.")
@cli_common.mistral_options
def process_down(host, reason, wait, mistral_url, os_cloud, clouds_yaml):
    """Disable nova-compute of HOST, whose nova-compute is down for good
    while the host itself is up: nothing new is scheduled there and its
    VMs are left alone.

    Starts instance_ha.process_down and prints its execution id.  A bad
    HOST or reason is refused before Mistral is asked; a HOST that Nova
    does not know fails the run (shown with --wait).
    """
    execution = _start_host_workflow(
        "process-down", PROCESS_DOWN_WORKFLOW, host,
        {"host": host, "reason": reason},
        f"process down on {host} (manual: instance-ha process-down)",
        wait, (mistral_url, os_cloud, clouds_yaml))
    if execution is None:
        return
    service = _output_of(execution).get("service") or {}
    done = "disabled" if service.get("changed") else "already disabled"
    click.echo(f"process-down of {host}: SUCCESS: nova-compute {done} "
               f"({service.get('disabled_reason')})")


HOST_RETURN_WORKFLOW = "instance_ha.host_return"


@click.command("host-return")
@click.argument("host")
@click.option("--pacemaker-node", metavar="NODE",
              help="HOST's name in Pacemaker, where it differs from Nova's. "
                   " [default: HOST]")
@click.option("--leave-disabled", is_flag=True,
              help="Only unset forced_down: nova-compute stays disabled, "
                   "with its reason, until you enable it.")
@click.option("--wait", is_flag=True,
              help="Follow the run until it ends and print its outcome; "
                   "exit 1 unless it succeeded.")
@cli_common.mistral_options
def host_return(host, pacemaker_node, leave_disabled, wait, mistral_url,
                os_cloud, clouds_yaml):
    """Return HOST to service after its evacuation and repair: unset
    forced_down on its nova-compute and enable it.

    Starts instance_ha.host_return and prints its execution id.  The run
    changes nothing unless Pacemaker (read where Mistral runs its
    actions) shows HOST online, its nova-compute runs again (a heartbeat
    while forced down) and no evacuation from HOST is under way or waits
    for that restart; otherwise it ends in ERROR saying which (shown with
    --wait).  A bad HOST or NODE is refused before Mistral is asked.
    """
    execution = _start_host_workflow(
        "host-return", HOST_RETURN_WORKFLOW, host,
        {"host": host, "node": pacemaker_node,
         "leave_disabled": leave_disabled},
        f"return {host} to service (manual: instance-ha host-return)",
        wait, (mistral_url, os_cloud, clouds_yaml))
    if execution is None:
        return
    click.echo(f"host-return of {host}: SUCCESS: "
               f"{_returned(_output_of(execution))}")


def _start_host_workflow(command, workflow, host, wf_input, description,
                         wait, mistral):
    """Check ``wf_input``, start ``workflow`` and print its id; with
    ``wait``, the ended execution (ClickException unless SUCCESS), else
    None.  ``mistral``: the --mistral-url, --os-cloud and --clouds-yaml
    values."""
    found = workflow_inputs.problems(workflow, wf_input)
    if found:
        raise click.UsageError("; ".join(found))
    client = cli_common.connect(*mistral)
    with cli_common.mistral_errors():
        execution = client.executions.create(
            workflow, workflow_input=wf_input, description=description)
        click.echo(execution.id)
        if not wait:
            return None
        while execution.state not in TERMINAL:
            time.sleep(0.5)
            execution = client.executions.get(execution.id)
    if execution.state != "SUCCESS":
        raise click.ClickException(
            f"{command} of {host} ({execution.id}): {execution.state}: "
            f"{execution.state_info or 'no reason given'}")
    return execution


def _returned(output):
    """What host_return changed, in a few words."""
    changed = output.get("changed") or {}
    service = output.get("service") or {}
    done = []
    if changed.get("forced_down_unset"):
        done.append("forced_down unset")
    if changed.get("enabled"):
        done.append("enabled")
    if service.get("disabled"):
        done.append(f"left disabled ({service.get('disabled_reason')})")
    return ", ".join(done) or "nothing to change"


@click.command()
@click.argument("execution")
@click.option("--reason", metavar="WHY",
              help="Why, one line (in the run's output and state).  "
                   "[default: an operator asked for it]")
@click.option("--wait", is_flag=True,
              help="Follow the run until it ends and print its table.")
@cli_common.mistral_options
def abort(execution, reason, wait, mistral_url, os_cloud, clouds_yaml):
    """Stop the host recovery EXECUTION cleanly: no new evacuation starts,
    those under way are waited for, the locks it kept are released, and
    its report lists the VMs it did not attempt.  The run then ends in
    ERROR and the agent does not start it again.

    Made of two updates of the execution through Mistral's API (pause,
    then resume with the environment instance_ha_abort=WHY), which
    'mistral execution-update' can make as well.
    """
    from instance_ha import abort as abort_module

    reason = abort_module.DEFAULT_REASON if reason is None else reason
    problem = abort_module.reason_problem(reason)
    if problem:
        raise click.UsageError(f"--reason: {problem}")
    client = cli_common.connect(mistral_url, os_cloud, clouds_yaml)
    with cli_common.mistral_errors():
        try:
            after = abort_module.request(client, execution, reason)
        except abort_module.NotAbortable as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - Mistral's refusal
            if _not_found(exc):
                raise click.ClickException(
                    f"no execution {execution} in Mistral") from None
            raise
    click.echo(f"abort of {execution} requested ({reason}): no new "
               f"evacuation starts; {after.state}")
    if wait:
        recovery = follow(client, execution)
        print_table(recovery)


def _not_found(exc):
    from mistralclient.api import base as mistral_base

    return isinstance(exc, mistral_base.APIException) and \
        getattr(exc, "error_code", None) == 404


@click.command()
@click.argument("execution", required=False)
@click.option("--watch", is_flag=True,
              help="Follow the recovery live until it ends.")
@cli_common.mistral_options
def status(execution, watch, mistral_url, os_cloud, clouds_yaml):
    """Show a host recovery VM by VM (without EXECUTION: the recent ones)."""
    from instance_ha import recovery_status

    client = cli_common.connect(mistral_url, os_cloud, clouds_yaml)
    with cli_common.mistral_errors():
        if execution is None:
            for e in recovery_status.recent(client):
                click.echo(f"{e.id}  {e.state:<8} {e.created_at}  "
                           f"{e.description}")
            return
        recovery = (follow(client, execution) if watch
                    else recovery_status.read(client, execution))
    print_table(recovery)


def follow(client, execution_id, interval=1.0):
    from instance_ha import recovery_status

    recovery = recovery_status.read(client, execution_id)
    with click.progressbar(length=max(len(recovery.vms), 1),
                           label=f"recovering {recovery.host}",
                           show_pos=True) as bar:
        done = 0
        while True:
            counts = recovery.counts()
            bar.length = max(len(recovery.vms), 1)
            bar.label = (f"{recovery.host}: {counts['moved']} moved, "
                         f"{counts['failed']} failed, "
                         f"{counts['pending']} pending")
            finished = len(recovery.vms) - counts["pending"]
            bar.update(finished - done)
            done = finished
            if recovery.finished:
                return recovery
            time.sleep(interval)
            recovery = recovery_status.read(client, execution_id)


def print_table(recovery):
    counts = recovery.counts()
    click.echo(f"recovery {recovery.execution_id} of {recovery.host}: "
               f"{recovery.state}")
    if recovery.state_info:
        click.echo(f"  {recovery.state_info}")
    if recovery.fencing:
        click.echo(f"  fencing: {recovery.fencing}")
    rows = [("SERVER", "NAME", "OUTCOME", "HOST", "VM STATE", "REASON")]
    rows += [(vm.id, vm.name or "", vm.outcome or "", vm.host or "",
              vm.vm_state or "", vm.reason or "") for vm in recovery.vms]
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    for row in rows:
        cells = [str(cell).ljust(w)
                 for cell, w in zip(row[:5], widths, strict=True)]
        click.echo("  ".join(cells) + "  " + row[5])
    click.echo(", ".join(f"{n} {k}" for k, n in counts.items()))


def _host_of(execution):
    wf_input = execution.input
    if isinstance(wf_input, str):
        wf_input = json.loads(wf_input or "{}")
    return ((wf_input or {}).get("search_opts") or {}).get("host")


def _output_of(execution):
    output = execution.output
    if isinstance(output, str):
        output = json.loads(output or "{}")
    return output or {}
