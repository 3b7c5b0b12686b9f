"""``instance-ha instancemonitor`` and ``instance-ha processmonitor``: the
daemons of a compute host (systemd units in computemonitor/systemd/).

Only click and the standard library at module level: ``instance-ha
--help`` must stay fast.
"""

import logging
import signal
import socket
import threading

import click

from instance_ha import cli_common

DEFAULT_STATE_DIR = "/var/lib/instance-ha"


def _daemon_options(command):
    command = click.option(
        "--log-level", default="INFO", show_default=True,
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
        help="What to log (to standard error: the journal under systemd).",
    )(command)
    command = click.option(
        "--host", default=socket.gethostname, show_default="this machine's "
        "host name", envvar="INSTANCE_HA_HOST",
        help="This compute's name in Nova (nova.conf [DEFAULT] host). "
             "[env: INSTANCE_HA_HOST]",
    )(command)
    return cli_common.mistral_options(command)


def _stop_on_signals():
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _logging(level):
    logging.basicConfig(level=level,
                        format="%(asctime)s %(levelname)s %(name)s: "
                               "%(message)s")


def _reporter(mistral_url, os_cloud, clouds_yaml):
    from instance_ha import mistral_client
    from instance_ha.computemonitor import reporter

    return reporter.Reporter(lambda: mistral_client.connect(
        mistral_url=mistral_url, cloud=os_cloud, clouds_yaml=clouds_yaml))


@click.command()
@click.option("--libvirt-uri", default="qemu:///system", show_default=True,
              help="libvirt connection to watch (read-only).")
@click.option("--state-file", type=click.Path(dir_okay=False),
              default=f"{DEFAULT_STATE_DIR}/instancemonitor.json",
              show_default=True,
              help="The record of the crashes seen and their runs.")
@click.option("--reconcile-every", type=click.FloatRange(min=1),
              default=60.0, show_default=True, metavar="SECONDS",
              help="Compare with libvirt's current states this often (and "
                   "at every start and reconnect).")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3,
              show_default=True,
              help="Runs of instance_restart for one crash, when one ends "
                   "in error while the VM is still crashed.")
@click.option("--retry-after", type=click.FloatRange(min=0), default=30.0,
              show_default=True, metavar="SECONDS",
              help="Wait before such another attempt.")
@_daemon_options
def instancemonitor(libvirt_uri, state_file, reconcile_every, max_attempts,
                    retry_after, host, log_level, mistral_url, os_cloud,
                    clouds_yaml):
    """Restart this compute's VMs that crash.

    Watches libvirt's domain lifecycle events: a Nova instance whose qemu
    process died or whose guest crashed gets one run of
    instance_ha.instance_restart.  A stop Nova or a user asked for starts
    nothing.  Runs until SIGTERM.
    """
    try:
        import libvirt  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "libvirt-python is not installed: pip install "
            "'instance-ha[compute]'") from None
    from instance_ha.computemonitor import crashes
    from instance_ha.computemonitor import domains
    from instance_ha.computemonitor import instances
    from instance_ha.computemonitor import jsonfile

    _logging(log_level)
    try:
        record = crashes.Record(state_file)
    except (jsonfile.RecordError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    monitor = instances.InstanceMonitor(
        host, record, _reporter(mistral_url, os_cloud, clouds_yaml),
        max_attempts=max_attempts, retry_after=retry_after)
    source = domains.LibvirtDomains(libvirt_uri)
    stop = _stop_on_signals()
    logging.getLogger(__name__).info(
        "instance monitor of %s: libvirt %s, record %s", host, libvirt_uri,
        state_file)
    try:
        instances.run(monitor, source, stop,
                      reconcile_every=reconcile_every)
    finally:
        source.close()


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              default="/etc/instance-ha/processmonitor.yaml",
              show_default=True,
              help="The process table (computemonitor/processmonitor.yaml "
                   "is an example).")
@click.option("--state-file", type=click.Path(dir_okay=False),
              default=f"{DEFAULT_STATE_DIR}/processmonitor.json",
              show_default=True, help="The record of the outages reported.")
@_daemon_options
def processmonitor(config_file, state_file, host, log_level, mistral_url,
                   os_cloud, clouds_yaml):
    """Keep nova-compute (and libvirtd) running on this compute.

    A process of the table that is gone is restarted; one that cannot be
    (its restart fails, or it needs more than max_restarts restarts within
    window seconds) starts instance_ha.process_down for this host, once
    per outage: Nova schedules nothing more here.  Runs until SIGTERM.
    """
    from instance_ha.computemonitor import jsonfile
    from instance_ha.computemonitor import outages
    from instance_ha.computemonitor import processes

    try:
        config = processes.load(config_file)
    except processes.ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    _logging(log_level)
    by_name = {process.name: process for process in config.processes}
    try:
        down = outages.ProcessDown(
            host, state_file, _reporter(mistral_url, os_cloud, clouds_yaml),
            lambda name: bool(processes.matching_pids(by_name[name].match)))
    except (jsonfile.RecordError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    stop = _stop_on_signals()
    logging.getLogger(__name__).info("process monitor of %s: %s, record %s",
                                     host, config_file, state_file)
    processes.ProcessMonitor(config, down, running=down.running) \
        .run_forever(stop)
