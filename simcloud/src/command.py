"""``instance-ha simcloud``: run the simulated cloud until SIGTERM.

Only click and the standard library are imported here, so that
``instance-ha --help`` stays fast."""

import os
import signal
import threading

import click


@click.command()
@click.option("--hosts", default=3, show_default=True,
              type=click.IntRange(1), help="Compute hosts compute1..N.")
@click.option("--vms-per-host", default=2, show_default=True,
              type=click.IntRange(0), help="Active servers on each host.")
@click.option("--latency", default=1.0, show_default=True,
              type=click.FloatRange(0),
              help="Seconds from an accepted evacuation to its migration "
                   "being done.")
@click.option("--port", default=0, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1 [default: any free port].")
@click.option("--config", "config_file",
              type=click.Path(exists=True, dir_okay=False),
              help="Topology and faults (YAML or JSON); replaces --hosts "
                   "and --vms-per-host.")
@click.option("--clouds-yaml", type=click.Path(dir_okay=False),
              help="Also write the clouds.yaml here (mode 0600).")
def simcloud(hosts, vms_per_host, latency, port, config_file, clouds_yaml):
    """Serve a simulated Keystone + Nova on 127.0.0.1 until SIGTERM.

    Prints a clouds.yaml with two clouds: "simcloud" (admin) and
    "simcloud-user" (a member of project demo).  Hosts are compute1..N.
    """
    import yaml

    from instance_ha.simcloud import server
    from instance_ha.simcloud import topology

    if config_file:
        config = topology.load(config_file)
    else:
        config = topology.generate(hosts, vms_per_host, latency)
    try:
        cloud = topology.build(config)
    except (TypeError, ValueError) as exc:
        raise click.ClickException(f"bad topology: {exc}") from exc
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sim = server.SimCloud(cloud, port=port).start()
    try:
        text = yaml.safe_dump(sim.clouds(), sort_keys=False)
        if clouds_yaml:
            _write_private(clouds_yaml, text)
        click.echo(text, nl=False)
        click.echo(f"simcloud: {sim.url} with {len(cloud.hosts)} hosts and "
                   f"{len(cloud.servers)} servers; SIGTERM stops it",
                   err=True)
        while not stop.wait(1.0):
            pass
    finally:
        sim.stop()


def _write_private(path, text):
    """Write mode 0600, atomically: whoever waits for the file never reads
    it half written."""
    partial = f"{path}.{os.getpid()}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(partial, path)
