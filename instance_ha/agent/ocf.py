"""The actions of ocf:openstack:instance-ha (``python -m
instance_ha.agent.ocf ACTION``; the shell front answers meta-data and
usage itself).

=============  ==============================================================
start          validate, then create the state file (already there: fine)
stop           remove the state file; always 0 (a failed stop gets the
               controller fenced)
monitor        7 without the state file (also as a probe); otherwise one
               monitor pass (instance_ha.agent.monitor) and 0, whatever
               Pacemaker, Mistral or Nova answered (logged)
validate-all   parameters (6), then this host (2: the clouds.yaml file)
anything else  3 (OCF_ERR_UNIMPLEMENTED)
=============  ==============================================================

Logs go to HA_LOGFILE when Pacemaker sets it (its detail log), else to
stderr (which Pacemaker's executor also logs), and to syslog with
HA_LOGFACILITY.  Exit reasons go to stderr, prefixed by
OCF_EXIT_REASON_PREFIX (default ``ocf-exit-reason:``).  SIGTERM is not
trapped.
"""

import logging
import logging.handlers
import os
import sys
import time

from instance_ha.agent import config as config_module
from instance_ha.agent import statefile

OCF_SUCCESS = 0
OCF_ERR_GENERIC = 1
OCF_ERR_UNIMPLEMENTED = 3
OCF_NOT_RUNNING = 7

LOG_NAME = "instance_ha.agent"


class _Formatter(logging.Formatter):
    def __init__(self, instance, with_time):
        super().__init__()
        self.instance = instance
        self.with_time = with_time

    def format(self, record):
        text = (f"instance-ha({self.instance})[{os.getpid()}]: "
                f"{record.levelname}: {record.getMessage()}")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.with_time:
            stamp = time.strftime("%b %d %H:%M:%S", time.localtime(
                record.created))
            text = f"{stamp} {text}"
        return text


def setup_logging(environ, stream=None):
    log = logging.getLogger(LOG_NAME)
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.DEBUG if environ.get("HA_debug") == "1"
                 else logging.INFO)
    instance = environ.get("OCF_RESOURCE_INSTANCE", "instance-ha")
    logfile = environ.get("HA_LOGFILE")
    file_handler = None
    if logfile:
        try:
            file_handler = logging.FileHandler(logfile)
        except OSError:
            file_handler = None
    if file_handler is not None:
        # Pacemaker's detail log; stderr would repeat every line there
        # ("... error output [ ... ]").
        file_handler.setFormatter(_Formatter(instance, with_time=True))
        log.addHandler(file_handler)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(_Formatter(instance, with_time=False))
        log.addHandler(handler)
    facility = environ.get("HA_LOGFACILITY", "")
    if facility in logging.handlers.SysLogHandler.facility_names and \
            os.path.exists("/dev/log"):
        try:
            syslog = logging.handlers.SysLogHandler(
                "/dev/log", facility=facility)
        except (OSError, KeyError, ValueError):
            syslog = None
        if syslog is not None:
            syslog.setFormatter(_Formatter(instance, with_time=False))
            log.addHandler(syslog)
    return log


def exit_reason(message, environ, stream=None):
    prefix = environ.get("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:")
    stream = stream or sys.stderr
    stream.write(f"{prefix}{message}\n")
    stream.flush()


def _config(environ, log, stream, local=True):
    """(config, None) or (None, exit code) with the exit reason written."""
    try:
        config = config_module.from_environ(environ)
        warnings = config_module.check_local(config) if local else []
        if local:
            _check_cloud(config)
    except config_module.ConfigError as exc:
        log.error("%s", exc)
        exit_reason(str(exc), environ, stream)
        return None, exc.code
    for warning in warnings:
        log.warning("%s", warning)
    return config, None


def _check_cloud(config):
    """The named cloud is in clouds.yaml (read, nothing sent): found now,
    not at the first real failure."""
    if not config.cloud:
        return
    from instance_ha import mistral_client

    try:
        mistral_client.keystone_session(config.cloud,
                                        config.clouds_yaml or None)
    except mistral_client.MistralError as exc:
        raise config_module.ConfigError(str(exc).splitlines()[0]) from None


def start(environ, log, stream=None):
    config, code = _config(environ, log, stream)
    if config is None:
        return code
    path = statefile.path(environ)
    if statefile.load(path) is None:
        try:
            statefile.save(path, statefile.empty())
        except OSError as exc:
            message = f"cannot write the state file {path}: {exc.strerror}"
            log.error("%s", message)
            exit_reason(message, environ, stream)
            return OCF_ERR_GENERIC
        log.info("started (state file %s)", path)
    return OCF_SUCCESS


def stop(environ, log, stream=None):
    path = statefile.path(environ)
    try:
        statefile.remove(path)
    except OSError as exc:
        # Not a reason to fail a stop (that fences this controller).
        log.error("cannot remove the state file %s: %s", path, exc.strerror)
    return OCF_SUCCESS


def monitor(environ, log, stream=None, deps_factory=None):
    path = statefile.path(environ)
    state = statefile.load(path)
    if state is None:
        return OCF_NOT_RUNNING
    config, code = _config(environ, log, stream, local=False)
    if config is None:
        return code
    from instance_ha.agent import monitor as monitor_module

    deps = (deps_factory or monitor_module.Dependencies)(config, log)
    try:
        monitor_module.run(state, deps)
    except Exception:  # noqa: BLE001 - a bug must not fail the resource
        log.exception("monitor pass failed; the next monitor tries again")
    try:
        if statefile.exists(path):
            statefile.save(path, state)
    except OSError as exc:
        log.error("cannot save the state file %s: %s", path, exc.strerror)
    return OCF_SUCCESS


def validate_all(environ, log, stream=None):
    config, code = _config(environ, log, stream)
    return OCF_SUCCESS if config is not None else code


ACTIONS = {"start": start, "stop": stop, "monitor": monitor,
           "validate-all": validate_all}


def main(argv=None, environ=None):
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    action = argv[1] if len(argv) > 1 else environ.get("__OCF_ACTION", "")
    handler = ACTIONS.get(action)
    if handler is None:
        sys.stderr.write(f"instance-ha: unsupported action {action!r}\n")
        return OCF_ERR_UNIMPLEMENTED
    log = setup_logging(environ)
    return handler(environ, log)


if __name__ == "__main__":
    sys.exit(main())
