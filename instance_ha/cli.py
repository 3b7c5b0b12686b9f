"""The ``instance-ha`` command: one sub-command per operator intent."""

import click

from instance_ha import __version__
from instance_ha import cli_common
from instance_ha import installer


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="instance-ha")
def main():
    """Instance high availability for OpenStack: Pacemaker fences a lost
    compute host, Mistral workflows evacuate its VMs through Nova."""


@main.command()
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="SQLite database file; created on first start.  "
                   "[default: $XDG_STATE_HOME/instance-ha/mistral.sqlite]")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the API listens on.  The API has NO "
                   "authentication: keep it on loopback.")
@click.option("--port", default=8989, show_default=True,
              type=click.IntRange(1, 65535))
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Extra Mistral (oslo.config) file, read after ours.")
@click.option("--log-file", type=click.Path(dir_okay=False),
              help="[default: instance-ha-server.log beside the database]")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Register the pack's workflows at start (as "
                   "'instance-ha install' does); the server exits with an "
                   "error when it cannot.")
def server(db, host, port, config_file, log_file, register):
    """Run an embedded Mistral (api, engine, executor, notifier, periodic)
    in this one process, with the pack registered.

    \b
    WARNING: the embedded API has NO authentication.  It listens on
    127.0.0.1 by default; anything that can reach it can run workflows
    that act on your cloud.  Production uses stock Mistral with Keystone
    (README.rst, "Distributed deployment").

    Stops cleanly on SIGTERM or SIGINT; a restart on the same database
    carries on with unfinished executions.
    """
    from instance_ha import embedded

    options = embedded.ServerOptions(
        db=db or embedded.default_db_path(), host=host, port=port,
        config_file=config_file, log_file=log_file, register=register)
    try:
        embedded.preflight(options)
    except embedded.ServerError as exc:
        raise click.ClickException(str(exc)) from exc
    embedded.exit_process(embedded.serve(options))


@main.command()
@cli_common.mistral_options
@click.option("--verify/--no-verify", default=False, show_default=True,
              help="Then run the smoke workflow, proving that an executor "
                   "runs this version of the pack.")
def install(mistral_url, os_cloud, clouds_yaml, verify):
    """Create or update the pack's workflows on a Mistral.

    Checks first that Mistral knows every action the workflows use (the
    package must be installed where its engines and executors run) and
    uploads nothing when it does not.  Running it twice changes nothing.
    """
    client = cli_common.connect(mistral_url, os_cloud, clouds_yaml)
    try:
        for outcome in installer.install(client):
            click.echo(f"{outcome.workflow}: {outcome.change}")
        if verify:
            execution = installer.verify_executors(client)
            click.echo(f"{installer.SMOKE_WORKFLOW}: SUCCESS "
                       f"(execution {execution.id})")
    except installer.InstallError as exc:
        raise click.ClickException(
            f"{exc} [Mistral at {installer.mistral_url(client)}]") from exc


@main.command()
@click.option("--keep", is_flag=True,
              help="Keep the demo's working directory (database, logs).")
@click.option("--evacuation-time", type=click.FloatRange(0.1, 60),
              default=1.0, show_default=True,
              help="Seconds one simulated evacuation takes.")
def demo(keep, evacuation_time):
    """Watch one host failure recovered, end to end, on this machine.

    Starts a simulated cloud (Keystone + Nova on 127.0.0.1) and the
    embedded Mistral, kills compute1 (10 VMs in mixed states), runs the
    real instance_ha.host_evacuate workflow, shows its live progress and
    the per-VM result, and cleans up.  Needs the server extra and
    instance-ha-simcloud (the simulated cloud, not in a production install).
    """
    from instance_ha import embedded

    try:
        embedded.require_mistral()
    except embedded.ServerError as exc:
        raise click.ClickException(str(exc)) from exc
    cli_common.require_simcloud()
    from instance_ha import demo as demo_run

    try:
        recovery = demo_run.run(keep=keep, evacuation_time=evacuation_time)
    except (RuntimeError, installer.InstallError) as exc:
        raise click.ClickException(str(exc)) from exc
    if recovery.state != "SUCCESS":
        raise click.exceptions.Exit(1)


@click.command("simcloud", add_help_option=False, context_settings={
    "ignore_unknown_options": True, "allow_extra_args": True})
def simcloud_missing():
    """Serve a simulated Keystone + Nova (needs instance-ha-simcloud)."""
    raise click.ClickException(cli_common.SIMCLOUD_MISSING)


# Commands that live with their concern (each module imports only click at
# the top, so ``instance-ha --help`` stays fast).  One line each.
# simcloud comes with instance-ha-simcloud; without it, a line saying so.
main.add_command(cli_common.simcloud_command() or simcloud_missing)
from instance_ha import recovery_commands  # noqa: E402,I001
main.add_command(recovery_commands.evacuate)
main.add_command(recovery_commands.restart_instance)
main.add_command(recovery_commands.process_down)
main.add_command(recovery_commands.host_return)
main.add_command(recovery_commands.status)
main.add_command(recovery_commands.abort)
from instance_ha.hostmonitor import command as hostmonitor_command  # noqa: E402,I001
main.add_command(hostmonitor_command.hosts)
main.add_command(hostmonitor_command.hostmonitor)
from instance_ha.computemonitor import command as compute_command  # noqa: E402,I001
main.add_command(compute_command.instancemonitor)
main.add_command(compute_command.processmonitor)
from instance_ha.agent import command as agent_command  # noqa: E402,I001
main.add_command(agent_command.install_agent)


if __name__ == "__main__":
    main()
