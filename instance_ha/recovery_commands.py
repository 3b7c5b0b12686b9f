"""Operator commands that start and follow recoveries: evacuate,
restart-instance, status."""

import time

import click

from instance_ha import cli_common

TERMINAL = ("SUCCESS", "ERROR", "CANCELLED")


@click.command()
@click.argument("host")
@click.option("--shared-storage/--no-shared-storage", default=None,
              help="Tell Nova the instances' disks are on shared storage "
                   "(used only below compute API 2.14; newer Nova "
                   "decides itself).  [default: let Nova decide]")
@click.option("--concurrency", type=click.IntRange(1, 200), default=10,
              show_default=True, help="VMs evacuated at once.")
@click.option("--wait", is_flag=True,
              help="Follow the recovery until it ends; exit 1 unless every "
                   "VM was moved or skipped.")
@click.option("--fence-check/--no-fence-check", default=True,
              show_default=True,
              help="Ask Pacemaker (crm_mon) first and refuse unless HOST is "
                   "offline and fenced.  --no-fence-check only for a host "
                   "Pacemaker does not manage that you have powered off "
                   "yourself.")
@cli_common.mistral_options
def evacuate(host, shared_storage, concurrency, wait, fence_check,
             mistral_url, os_cloud, clouds_yaml):
    """Recover the VMs of HOST, a compute host that is down and FENCED.

    Starts instance_ha.host_evacuate and prints its execution id.  The
    workflow forces HOST's nova-compute service down: never run this for
    a host that may still be running its VMs.  A recovery already running
    for HOST is shown instead of starting a second one.
    """
    from instance_ha import recovery_status

    if fence_check:
        _require_fenced(host)
    client = cli_common.connect(mistral_url, os_cloud, clouds_yaml)
    with cli_common.mistral_errors():
        running = [e for e in client.executions.list(
            workflow_name=recovery_status.HOST_WORKFLOW, state="RUNNING")
            if _host_of(e) == host]
        if running:
            execution = running[0]
            click.echo(f"a recovery of {host} is already running: "
                       f"{execution.id}")
        else:
            execution = client.executions.create(
                recovery_status.HOST_WORKFLOW,
                workflow_input={"search_opts": {"host": host},
                                "on_shared_storage": shared_storage,
                                "concurrency": concurrency},
                description=f"evacuate {host} (manual: instance-ha "
                            "evacuate)")
            click.echo(execution.id)
    if wait:
        recovery = follow(client, execution.id)
        print_table(recovery)
        if recovery.state != "SUCCESS":
            raise click.exceptions.Exit(1)


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
            finished = counts["moved"] + counts["failed"] + counts["skipped"]
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
    rows = [("SERVER", "NAME", "OUTCOME", "HOST", "VM STATE", "REASON")]
    rows += [(vm.id, vm.name or "", vm.outcome or "", vm.host or "",
              vm.vm_state or "", vm.reason or "") for vm in recovery.vms]
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    for row in rows:
        cells = [str(cell).ljust(w)
                 for cell, w in zip(row[:5], widths, strict=True)]
        click.echo("  ".join(cells) + "  " + row[5])
    click.echo(", ".join(f"{n} {k}" for k, n in counts.items()))


def _require_fenced(host):
    from instance_ha import fence_gate
    from instance_ha import hostmonitor

    try:
        status = hostmonitor.read_cluster()
    except hostmonitor.ClusterReadError as exc:
        raise click.ClickException(
            f"cannot confirm with Pacemaker that {host} is fenced: {exc}; "
            "nothing was started") from exc
    reason = fence_gate.refusal(host, status)
    if reason:
        raise click.ClickException(
            f"refusing to evacuate {host}: {reason}; nothing was started")


def _host_of(execution):
    import json

    wf_input = execution.input
    if isinstance(wf_input, str):
        wf_input = json.loads(wf_input or "{}")
    return ((wf_input or {}).get("search_opts") or {}).get("host")
