"""The actions of ocf:openstack:instance-ha (``python -m
instance_ha.agent.ocf ACTION``; the shell front answers meta-data and
usage itself).

=============  ==============================================================
start          validate, then create the state file (already there: fine)
stop           remove the state file; always 0 (a failed stop gets the
               controller fenced)
monitor        7 without the state file (also as a probe); otherwise one
               monitor pass (instance_ha.agent.monitor) within 80 % of
               OCF_RESKEY_CRM_meta_timeout, and 0, whatever Pacemaker,
               Mistral or Nova answered or how long they took (logged)
validate-all   parameters (6), then this host (2: the clouds.yaml file)
anything else  3 (OCF_ERR_UNIMPLEMENTED)
=============  ==============================================================

validate-all and start also refuse (6) what only the first real failure
would show: a ``cloud`` not in clouds.yaml, a ``workflow`` that is not one
of the pack's or does not take a host's input, and a ``request_timeout``
that does not fit into a pass of the monitor (agent.budget: 80 % of the
monitor operation's timeout, read from the CIB; Pacemaker passes an
operation only its own timeout).  A monitor works within that budget.

Logs go to HA_LOGFILE when Pacemaker sets it (its detail log), else to
stderr (which Pacemaker's executor also logs), and to syslog with
HA_LOGFACILITY.  Exit reasons go to stderr, prefixed by
OCF_EXIT_REASON_PREFIX (default ``ocf-exit-reason:``).  SIGTERM is not
trapped.
"""

import logging
import logging.handlers
import os
import re
import sys
import time

from instance_ha.agent import budget as budget_module
from instance_ha.agent import config as config_module
from instance_ha.agent import statefile
from instance_ha.agent.returncodes import OCF_ERR_GENERIC
from instance_ha.agent.returncodes import OCF_ERR_UNIMPLEMENTED
from instance_ha.agent.returncodes import OCF_NOT_RUNNING
from instance_ha.agent.returncodes import OCF_SUCCESS

# The monitor's budget counts from here (the process has just started).
STARTED = time.monotonic()

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
            config_module.check_workflow(config)
            seconds, source = monitor_timeout_in_cib(environ, config)
            if seconds is not None:
                config_module.check_request_timeout(config, seconds, source)
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


# Pacemaker's own default operation timeout.
PACEMAKER_DEFAULT_TIMEOUT = 20.0
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*"
                       r"(ms|msec|us|usec|s|sec|m|min|h|hr)?$", re.IGNORECASE)
_ISO_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$",
                           re.IGNORECASE)
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "ms": 1e-3, "msec": 1e-3,
                 "us": 1e-6, "usec": 1e-6, "m": 60, "min": 60, "h": 3600,
                 "hr": 3600}


def duration(text):
    """Seconds of a Pacemaker duration ("60s", "2min", "90", "PT1M"), or
    None when it is not one."""
    text = (text or "").strip()
    match = _DURATION.match(text)
    if match:
        return float(match.group(1)) * _UNIT_SECONDS[
            (match.group(2) or "").lower() or None]
    match = _ISO_DURATION.match(text)
    if match and text.upper() != "PT":
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return float(hours * 3600 + minutes * 60 + seconds)
    return None


def monitor_timeout_in_cib(environ, config):
    """(seconds, where they come from) of this resource's recurring
    monitor: its operation's timeout in the CIB, else op_defaults', else
    Pacemaker's default.  The agent's advertised default when the CIB
    cannot be read or has no such resource yet; (None, why) when the
    resource has no recurring monitor (nothing to fit)."""
    from instance_ha.hostmonitor import pcmk

    instance = re.sub(r":\d+$", "", environ.get("OCF_RESOURCE_INSTANCE", ""))
    default = budget_module.DEFAULT_MONITOR_TIMEOUT
    try:
        result = pcmk.run(["cibadmin", "--query", "--scope",
                           "configuration"], timeout=config.request_timeout)
        root = pcmk.parse_xml(result.stdout, "cibadmin --query")
    except pcmk.ClusterReadError:
        return default, "the agent's default; the CIB could not be read"
    primitive = next((p for p in root.iter("primitive")
                      if p.get("id") == instance), None)
    if primitive is None:
        return default, (f"the agent's default; the CIB has no resource "
                         f"{instance or '(unnamed)'}")
    timeouts = [_timeout_of(op) for op in primitive.iterfind(
        "operations/op") if op.get("name") == "monitor"
        and (duration(op.get("interval")) or 0) > 0]
    if not timeouts:
        return None, f"{instance} has no recurring monitor"
    configured = [t for t in timeouts if t is not None]
    if configured:
        return min(configured), f"the monitor operation of {instance}"
    for nvpair in root.iterfind("op_defaults/meta_attributes/nvpair"):
        seconds = duration(nvpair.get("value"))
        if nvpair.get("name") == "timeout" and seconds:
            return seconds, "op_defaults"
    return PACEMAKER_DEFAULT_TIMEOUT, ("Pacemaker's default: the monitor "
                                       f"operation of {instance} sets none")


def _timeout_of(op):
    text = op.get("timeout")
    if text is None:
        for nvpair in op.iterfind("meta_attributes/nvpair"):
            if nvpair.get("name") == "timeout":
                text = nvpair.get("value")
    seconds = duration(text)
    return seconds if seconds else None


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


def monitor(environ, log, stream=None, deps_factory=None, started=None):
    """``started``: when the budget starts (time.monotonic; default
    now)."""
    path = statefile.path(environ)
    state = statefile.load(path)
    if state is None:
        return OCF_NOT_RUNNING
    config, code = _config(environ, log, stream, local=False)
    if config is None:
        return code
    from instance_ha.agent import monitor as monitor_module

    seconds, why = budget_module.monitor_timeout(environ)
    if why:
        log.warning("%s", why)
    _warn_timeout(state, config, seconds, log)
    work = budget_module.Budget(budget_module.pass_seconds(seconds),
                                start=started)
    deps = (deps_factory or monitor_module.Dependencies)(config, log,
                                                         budget=work)
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


def _warn_timeout(state, config, seconds, log):
    """Once per monitor timeout: say when request_timeout does not fit
    (start checks it against the CIB; the operation may change since).
    The pass goes on, every call cut to the time left."""
    try:
        config_module.check_request_timeout(config, seconds,
                                            "OCF_RESKEY_CRM_meta_timeout")
        problem = None
    except config_module.ConfigError as exc:
        problem = str(exc)
    if problem and state.get("timeout_warning") != problem:
        log.error("%s; every call is cut to what is left of the pass", problem)
    state["timeout_warning"] = problem


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
    if handler is monitor:
        return monitor(environ, log, started=STARTED)
    return handler(environ, log)


if __name__ == "__main__":
    sys.exit(main())
