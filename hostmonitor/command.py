"""The ``instance-ha hosts`` and ``instance-ha hostmonitor`` commands.

Only click and the standard library at module level: ``instance-ha --help``
must stay fast.
"""

import json

import click

_PATTERNS_HELP = ("Shell pattern of node names; may be repeated or "
                  "comma-separated.")


def _patterns(values):
    return tuple(p.strip() for value in values for p in value.split(",")
                 if p.strip())


def policy_options(command):
    """Which nodes are computes, and the mass-failure threshold."""
    command = click.option(
        "--timeout", type=click.FloatRange(min=0.1), default=15.0,
        show_default=True,
        help="Seconds each Pacemaker command (and, for hostmonitor, each "
             "Mistral request) may take.",
    )(command)
    command = click.option(
        "--stonith-admin", "stonith_admin", default="stonith_admin",
        show_default=True, metavar="PATH",
        help="stonith_admin to run (fence history when crm_mon lacks it).",
    )(command)
    command = click.option(
        "--crm-mon", "crm_mon", default="crm_mon", show_default=True,
        metavar="PATH", help="crm_mon to run.",
    )(command)
    command = click.option(
        "--threshold", type=click.FloatRange(0, 100), default=50.0,
        show_default=True, metavar="PERCENT",
        envvar="INSTANCE_HA_THRESHOLD",
        help="Trigger nothing when more than this share of the compute "
             "hosts is down at once (a partition looks like a mass "
             "failure). [env: INSTANCE_HA_THRESHOLD]",
    )(command)
    command = click.option(
        "--controllers", multiple=True, metavar="PATTERN",
        envvar="INSTANCE_HA_CONTROLLERS",
        help=f"Nodes that are never computes. {_PATTERNS_HELP} "
             "[env: INSTANCE_HA_CONTROLLERS]",
    )(command)
    command = click.option(
        "--computes", multiple=True, metavar="PATTERN",
        envvar="INSTANCE_HA_COMPUTES",
        help=f"Compute hosts we manage. {_PATTERNS_HELP} "
             "[default: every Pacemaker Remote node] "
             "[env: INSTANCE_HA_COMPUTES]",
    )(command)
    return command


def _policy(computes, controllers, threshold, debounce=None):
    from instance_ha.hostmonitor import decision

    try:
        return decision.Policy(
            computes=_patterns(computes), controllers=_patterns(controllers),
            threshold_percent=threshold,
            debounce=debounce or decision.DEFAULT_DEBOUNCE)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command()
@click.option("--xml", "xml_file", type=click.Path(dir_okay=False),
              metavar="FILE",
              help="Saved crm_mon XML (--output-as=xml or --as-xml) "
                   "instead of the live cluster.")
@click.option("--fence-history", "fence_file",
              type=click.Path(dir_okay=False), metavar="FILE",
              help="Saved fence history (stonith_admin --history NODE "
                   "--verbose --output-as=xml, or crm_mon XML with "
                   "<fence_history>).  Without it, the history inside "
                   "--xml, if any.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"quorum": ..., "nodes": [{"name", "type", '
                   '"decision", "reason"}]}.')
@policy_options
def hosts(xml_file, fence_file, as_json, computes, controllers, threshold,
          crm_mon, stonith_admin, timeout):
    """Show each node's state and what instance-ha decides for it.

    \b
    Decisions: online; failed_fenced (down and fenced after it went down:
    safe to evacuate); failed_unfenced (down, fencing not confirmed: not
    safe); standby; maintenance; ignored (not a compute host we manage).
    Exit status 0 when it could decide, 1 when the cluster could not be
    read.
    """
    from instance_ha.hostmonitor import crm_mon as crm_mon_module
    from instance_ha.hostmonitor import decision
    from instance_ha.hostmonitor import fencing
    from instance_ha.hostmonitor import pcmk

    policy = _policy(computes, controllers, threshold)
    try:
        if xml_file:
            status = crm_mon_module.read_file(xml_file)
        else:
            status = crm_mon_module.read_cluster(
                crm_mon=crm_mon, stonith_admin=stonith_admin,
                timeout=timeout)
        if fence_file:
            try:
                with open(fence_file, "rb") as f:
                    text = f.read()
            except OSError as exc:
                raise pcmk.ClusterReadError(
                    f"{fence_file}: {exc.strerror}") from exc
            status = status.with_fence_events(
                fencing.parse_history(text, fence_file))
    except pcmk.ClusterReadError as exc:
        raise click.ClickException(f"cannot read the cluster: {exc}") \
            from exc
    assessment = decision.assess(status, policy)
    if as_json:
        click.echo(json.dumps(assessment.as_dict(), indent=2))
        return
    _print_table(assessment, status)


def _print_table(assessment, status):
    quorum = "yes" if assessment.quorum else "NO"
    click.echo(f"quorum: {quorum}; DC: {assessment.dc or 'none'}")
    rows = [(v.name, v.type, status.node(v.name).state(), v.decision,
             v.reason) for v in assessment.verdicts]
    header = ("NODE", "TYPE", "STATE", "DECISION", "REASON")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        cells = zip(row[:4], widths, strict=True)
        click.echo("  ".join(c.ljust(w) for c, w in cells) + "  " + row[4])
    if assessment.held:
        click.echo(f"HELD: {assessment.held}", err=True)


@click.command()
@click.option("--interval", type=click.FloatRange(min=0.5), default=10.0,
              show_default=True, metavar="S",
              help="Seconds between two passes (as the agent's monitor "
                   "interval).")
@click.option("--pass-timeout", type=click.FloatRange(min=1), default=60.0,
              show_default=True, metavar="S",
              help="Seconds one pass may take, as the agent's monitor "
                   "timeout: its commands and requests end by 80 % of it; "
                   "what is left is done first at the next pass.")
@click.option("--debounce", type=click.IntRange(min=1), default=2,
              show_default=True, metavar="N",
              help="Act on a failure only after N consecutive reads agree.")
@click.option("--on-shared-storage/--no-shared-storage", default=True,
              show_default=True,
              help="Instances' disks are on shared storage (the workflow "
                   "input on_shared_storage).")
@click.option("--store/--no-store", default=True, show_default=True,
              help="Record each hand-over in the CIB (crm_attribute, "
                   "lifetime forever), as the agent does, so a restart or "
                   "another controller follows the same run.")
@click.option("--state-file", type=click.Path(dir_okay=False),
              metavar="FILE",
              help="Keep the pass's state (decisions, watched runs) in this "
                   "file, the agent's format, to resume from it after a "
                   "restart.  Without it, a restart finds its runs from the "
                   "CIB record.")
@click.option("--watchdog-timeout", type=click.IntRange(min=10),
              default=900, show_default=True, metavar="S",
              help="Seconds without progress after which a run is failed "
                   "and the workflow started again (as the agent's "
                   "watchdog_timeout).")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3,
              show_default=True, metavar="N",
              help="Runs per failure, the first included; then an operator "
                   "must act.")
@click.option("--evacuation-delay", type=click.IntRange(0, 86400),
              default=0, show_default=True, metavar="S",
              help="Seconds after the fencing before the evacuation "
                   "starts.")
@click.option("--once", is_flag=True,
              help="One pass, then exit.")
@click.option("--verbose", "-v", is_flag=True,
              help="Also log unchanged decisions at every pass.")
@click.option("--mistral-url", envvar="INSTANCE_HA_MISTRAL_URL",
              metavar="URL",
              help="Mistral API URL; alone it means no authentication (the "
                   "embedded server). [env: INSTANCE_HA_MISTRAL_URL]")
@click.option("--os-cloud", envvar="OS_CLOUD", metavar="NAME",
              help="Cloud in clouds.yaml whose Keystone finds Mistral "
                   "[env: OS_CLOUD; without it, OS_* variables].")
@click.option("--clouds-yaml", type=click.Path(dir_okay=False),
              help="clouds.yaml file to read instead of the standard "
                   "locations.")
@policy_options
def hostmonitor(interval, pass_timeout, debounce, on_shared_storage, store,
                state_file, watchdog_timeout, max_attempts, evacuation_delay,
                once, verbose, mistral_url, os_cloud, clouds_yaml, computes,
                controllers, threshold, crm_mon, stonith_admin, timeout):
    """Watch Pacemaker, start the host evacuation workflow for each
    compute host that failed and was fenced, and watch that run: the
    resource agent's monitor, as a daemon.

    Every pass is the agent's: the same safety gate (quorum, mass
    failure, fencing confirmed now) before any run starts, the same
    execution ids, the same watchdog (a stalled or failed run is failed
    and started again, at most --max-attempts times).  --timeout applies
    to each Pacemaker command and each Mistral request.  Logs every
    decision change in one line; a mass failure is logged as an error and
    triggers nothing.  Stops on SIGTERM or SIGINT.
    """
    import logging
    import signal
    import threading

    from instance_ha import mistral_client
    from instance_ha.agent import config as config_module
    from instance_ha.hostmonitor import daemon

    config = daemon.agent_config(
        _policy(computes, controllers, threshold, debounce),
        mistral_url=mistral_url or "", cloud=os_cloud or "",
        clouds_yaml=clouds_yaml or "", on_shared_storage=on_shared_storage,
        watchdog_timeout=watchdog_timeout, max_attempts=max_attempts,
        evacuation_delay=evacuation_delay, request_timeout=timeout)
    try:
        config_module.check_request_timeout(config, pass_timeout,
                                            "--pass-timeout")
    except config_module.ConfigError as exc:
        raise click.BadParameter(f"--timeout: {exc}") from exc
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # Refused now rather than at every pass: a bad URL, a cloud that
        # is not in clouds.yaml.
        mistral_client.connect(mistral_url=mistral_url, cloud=os_cloud,
                               clouds_yaml=clouds_yaml, timeout=timeout)
    except mistral_client.MistralError as exc:
        raise click.ClickException(str(exc)) from exc

    monitor = daemon.HostMonitor(
        config, cib=store, state_path=state_file, pass_timeout=pass_timeout,
        crm_mon=crm_mon, stonith_admin=stonith_admin)
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.run(monitor, interval, stop=stop,
                   iterations=1 if once else None)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
