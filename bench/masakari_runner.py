"""Run Masakari's real host-failure recovery once, in this process.

This script runs with the Python of the bench's own Masakari virtualenv
(``bench/.venv-masakari``), never with the project's: it imports
``masakari`` (22.0.0 from PyPI, unmodified) and nothing of instance-ha or
of the bench.  It runs Masakari's engine in-process: the taskflow
driver's ``execute_host_failure`` in ``auto`` mode, as masakari-engine
calls it for a COMPUTE_HOST STOPPED notification, against the simulated
cloud's Keystone v3 (password auth, catalog) and Nova.

Input: one JSON object on stdin::

    {"workdir": DIR, "auth_url": ".../identity/v3", "username": "admin",
     "password": "...", "project": "service", "host": "compute1",
     "settings": {"wait_period_after_service_update": 0, ...}}

``settings`` are [DEFAULT] overrides (omitted keys keep Masakari's
defaults).  Output: one JSON line on stdout: wall-clock start and end of
the recovery call, the outcome, the vmove counts, the effective settings.
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402

warnings.simplefilter("ignore")

# Masakari's defaults that matter for a host failure, reported as used.
REPORTED = ("wait_period_after_service_update",
            "wait_period_after_evacuation", "verify_interval",
            "host_failure_recovery_threads")


def write_conf(workdir, spec):
    conf = os.path.join(workdir, "masakari.conf")
    with open(conf, "w") as f:
        f.write(
            "[DEFAULT]\n"
            f"os_privileged_user_auth_url = {spec['auth_url']}\n"
            f"os_privileged_user_name = {spec['username']}\n"
            f"os_privileged_user_password = {spec['password']}\n"
            f"os_privileged_user_tenant = {spec['project']}\n"
            "[keystone_authtoken]\n"
            "auth_type = v3password\n"
            "[database]\n"
            f"connection = sqlite:///{workdir}/masakari.db\n"
            "[taskflow]\n"
            f"connection = sqlite:///{workdir}/taskflow.db\n")
    return conf


def main():
    spec = json.load(sys.stdin)
    workdir = spec["workdir"]
    conf = write_conf(workdir, spec)
    manage = os.path.join(os.path.dirname(sys.executable), "masakari-manage")
    subprocess.run([manage, "--config-file", conf, "db", "sync"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)

    # masakari.compute.nova registers [keystone_authtoken].
    import masakari.compute.nova  # noqa: F401
    import masakari.conf
    import oslo_messaging
    from masakari import config
    from masakari import context
    from masakari import objects
    from masakari import rpc
    from masakari.db.sqlalchemy import api as sqlalchemy_api

    CONF = masakari.conf.CONF
    config.parse_args([sys.argv[0], "--config-file", conf],
                      default_config_files=[], configure_db=False,
                      init_rpc=False)
    for name, value in (spec.get("settings") or {}).items():
        CONF.set_override(name, value)
    CONF.register_opts(oslo_messaging.transport._transport_opts)
    CONF.set_override("transport_url", "fake://")
    sqlalchemy_api.configure(CONF)
    objects.register_all()
    rpc.init(CONF)
    # Imported after the overrides: base.py reads [taskflow] at import.
    from masakari.engine.drivers.taskflow import driver

    ctx = context.get_admin_context()
    notification_uuid = str(uuid.uuid4())
    engine = driver.TaskFlowDriver()
    error = None
    started = time.time()
    try:
        engine.execute_host_failure(
            ctx, spec["host"], "auto", notification_uuid,
            update_host_method=lambda *args, **kwargs: None,
            reserved_host_list=None)
    except Exception as exc:  # reported, the bench decides
        error = f"{type(exc).__name__}: {exc}"
    finished = time.time()
    vmoves = {}
    try:
        for vmove in objects.VMoveList.get_all_vmoves(
                ctx, notification_uuid):
            vmoves[vmove.status] = vmoves.get(vmove.status, 0) + 1
    except Exception as exc:
        vmoves = {"unreadable": str(exc)}
    from importlib import metadata

    import masakari
    print(json.dumps({
        "started": started, "finished": finished, "error": error,
        "vmoves": vmoves, "notification_uuid": notification_uuid,
        "masakari_version": metadata.version("masakari"),
        "masakari_path": os.path.dirname(masakari.__file__),
        "settings": {
            **{name: getattr(CONF, name) for name in REPORTED},
            "host_failure.evacuate_all_instances":
                CONF.host_failure.evacuate_all_instances}}),
        flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
