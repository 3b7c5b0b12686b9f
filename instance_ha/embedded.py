"""The embedded Mistral server: api, engine, executor, notifier and periodic
services of stock Mistral in ONE process, on SQLite, over the in-memory
(``fake:/``) oslo.messaging transport.

Why not ``mistral-server --server all``: since Mistral 21 it forks one process
per component, so the in-memory transport cannot connect them, and
``oslo_service.ServiceLauncher`` on the threading backend forks a worker per
service too (measured on Mistral 23.0.0 / oslo.service 4.8).  So the service
objects are started here directly, in threads of this process, exactly as
Mistral's own engine tests do, and stopped in reverse order on SIGTERM/SIGINT.

The API has NO authentication in this mode.  It binds to loopback by default;
never expose it.
"""

import dataclasses
import errno
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time

from instance_ha import installer
from instance_ha import mistral_client

LOG = logging.getLogger(__name__)

READY_MESSAGE = "instance-ha embedded Mistral ready at"
INSTALL_RETRY_SECONDS = 60
INSTALL_RETRY_INTERVAL = 2

# The settings a recovery's durability rests on, for every Mistral that
# runs the pack (embedded here; every node's mistral.conf in a distributed
# deployment, whose chaos tests use this same text).  Why each one:
# doc/durability.rst.
DURABILITY_SETTINGS = """\
[DEFAULT]
scheduler_type = default

[action_heartbeat]
check_interval = 5
max_missed_heartbeats = 6
first_heartbeat_timeout = 60

[engine]
execution_integrity_check_delay = 20

[scheduler]
pickup_job_after = 10

[legacy_action_provider]
load_action_generators = false
"""

# What a recovery costs Mistral, for every Mistral that runs the pack (as
# DURABILITY_SETTINGS).  A with-items task evaluates its expressions again
# at every completion of an item, and YAQL by default copies the whole
# context into immutable structures at every evaluation, and its result
# back: most of the engine's CPU for a host of 200 VMs.  Mistral's own CI
# runs its large workflows so (doc/benchmarks.rst).
PERFORMANCE_SETTINGS = """
[yaql]
convert_input_data = false
convert_output_data = false
"""

# Every Mistral that runs the pack: the embedded server, every node of a
# distributed deployment.
PACK_SETTINGS = DURABILITY_SETTINGS + PERFORMANCE_SETTINGS

# Mistral settings of the embedded server, on top of PACK_SETTINGS.
# An operator's --config file is read after these and wins.  Why each one
# is set: doc/architecture.rst, "Embedded Mistral".
MISTRAL_SETTINGS = PACK_SETTINGS + """
[DEFAULT]
transport_url = fake:/
use_stderr = true
log_file = {log_file}

[api]
host = {host}
port = {port}

[pecan]
auth_enable = false

[database]
connection = sqlite:///{db}

[executor]
type = remote
"""


class ServerError(Exception):
    """The server cannot start; nothing was started."""


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    db: str
    host: str = "127.0.0.1"
    port: int = 8989
    config_file: str = None
    log_file: str = None
    register: bool = True

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/v2"

    @property
    def resolved_log_file(self):
        return self.log_file or os.path.join(
            os.path.dirname(os.path.abspath(self.db)),
            "instance-ha-server.log")


def default_db_path():
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser(
        "~/.local/state")
    return os.path.join(state, "instance-ha", "mistral.sqlite")


SERVER_EXTRA_MISSING = (
    "the embedded Mistral is not installed here: pip install "
    "'instance-ha[server]' (a stock Mistral's executors need only "
    "'instance-ha')")


def mistral_installed():
    import importlib.util

    return importlib.util.find_spec("mistral") is not None


def require_mistral():
    """ServerError unless the ``server`` extra (Mistral) is installed."""
    if not mistral_installed():
        raise ServerError(SERVER_EXTRA_MISSING)


def preflight(options):
    """Refuse, with a reason, what would make Mistral fail half-started."""
    require_mistral()
    _check_port_free(options.host, options.port)
    _check_writable_file(options.db, "database")
    _check_writable_file(options.resolved_log_file, "log file")
    if options.config_file and not os.path.isfile(options.config_file):
        raise ServerError(f"config file {options.config_file} not found")


def serve(options):
    """Run the server until SIGTERM or SIGINT; return the exit status."""
    preflight(options)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: stop_requested.set())

    _configure_mistral(options)
    if stop_requested.is_set():
        LOG.info("stopping on signal, during start-up")
        return 0
    started_at = _utcnow().replace(microsecond=0)
    services = _start_services(stop_requested)
    status = 0
    try:
        # A signal during start-up is honoured between its steps.
        steps = [lambda: fail_lost_actions(before=started_at),
                 lambda: resume_orphaned_tasks(before=started_at)]
        if options.register:
            steps.append(lambda: _install_pack(options, stop_requested))
        for step in steps:
            if stop_requested.is_set():
                break
            step()
        if not stop_requested.is_set():
            LOG.info("%s %s (database %s, log %s)", READY_MESSAGE,
                     options.url, os.path.abspath(options.db),
                     options.resolved_log_file)
        stop_requested.wait()
        LOG.info("stopping on signal")
    except installer.InstallError as exc:
        LOG.error("cannot register the pack on the embedded Mistral: %s", exc)
        status = 1
    finally:
        _stop_services(services)
    return status


def exit_process(status):
    """Leave the process once every service has stopped.

    oslo.service's threading looping calls (periodic tasks, heartbeats) each
    leave an idle, non-daemon futurist worker thread that nothing shuts down,
    so a normal interpreter exit would hang.  All state is committed by now.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _check_port_free(host, port):
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(f"port {port} on {host} is already in use") \
                from exc
        raise ServerError(f"cannot listen on {host}:{port}: "
                          f"{exc.strerror}") from exc
    finally:
        probe.close()


def _check_writable_file(path, what):
    """Create the file's directory and prove the file and directory writable.

    A real write, not os.access: root passes every access() check, yet
    cannot write to a read-only file system or through a regular file.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
        # SQLite also writes a journal next to the database.
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ServerError(f"{what} path {path} is not writable: "
                          f"{exc.strerror or exc}") from exc


def _configure_mistral(options):
    # Mistral selects oslo.service's threading backend in mistral.cmd; it
    # must happen before anything imports oslo_service's backend-dependent
    # modules.
    import mistral.cmd  # noqa: F401
    from mistral import config as mistral_config
    from oslo_config import cfg
    from oslo_log import log as oslo_log

    settings = MISTRAL_SETTINGS.format(
        host=options.host, port=options.port,
        db=os.path.abspath(options.db), log_file=options.resolved_log_file)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(settings)
    args = ["--config-file", f.name]
    if options.config_file:
        args += ["--config-file", options.config_file]
    try:
        mistral_config.parse_args(args)
    finally:
        os.unlink(f.name)
    oslo_log.setup(cfg.CONF, "instance-ha-server")

    from mistral.db.v2 import api as db_api
    from mistral.rpc import base as rpc

    db_api.setup_db()  # creates the schema on first start; SQLite has no
    rpc.get_transport()  # alembic migrations in Mistral
    make_yaql_thread_safe()
    check_each_dsl_schema_once()


class LockedYaqlEngine:
    """Mistral's one YAQL engine, parsing under a lock.  yaql parses with
    one shared PLY lexer and parser, which are not thread-safe, and
    Mistral 23 runs the API, the engine's RPC handlers and its scheduler
    on native threads of one process here: two expressions parsed at once
    fail with "Parse error: unexpected end of statement" or "Lexical
    error: illegal character" (seen in the chaos runs: the pack's
    validation at a restart; reproduced with six threads and one yaql
    engine).  Only the parse is locked; evaluating a parsed expression
    does not touch the parser."""

    def __init__(self, engine):
        self._engine = engine
        self._lock = threading.Lock()

    def __call__(self, expression, options=None):
        with self._lock:
            return self._engine(expression, options)

    def __getattr__(self, name):
        return getattr(self._engine, name)


def check_each_dsl_schema_once():
    """Mistral 23 validates each part of a workflow definition (the
    workflow, each task, its policies, its publish) with
    ``jsonschema.validate``, which checks Mistral's own schema of that part
    against the JSON Schema meta-schema again each time before it
    validates the definition: that check was half of the time of
    registering the pack (8 s of a 15 s start, py-spy).  Mistral builds
    each class's schema once (``BaseSpec.get_schema``: ``_full_schema``),
    so checking each schema object once and keeping its validator gives
    the same verdicts and messages."""
    import jsonschema
    from mistral import exceptions as mistral_exc
    from mistral.lang import base as lang_base

    if getattr(lang_base.BaseSpec.validate_schema, "checks_once", False):
        return
    validators = {}     # id(schema) -> (schema, its validator)
    lock = threading.Lock()

    def validate_schema(spec):
        schema = spec.get_schema()
        with lock:
            known = validators.get(id(schema))
        if known is None or known[0] is not schema:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            known = (schema, cls(schema))
            with lock:
                if len(validators) > 1024:  # a bound, never reached
                    validators.clear()
                validators[id(schema)] = known
        error = jsonschema.exceptions.best_match(
            known[1].iter_errors(spec._data))
        if error is not None:
            raise mistral_exc.InvalidModelException(f"Invalid DSL: {error}")

    validate_schema.checks_once = True
    lang_base.BaseSpec.validate_schema = validate_schema


def make_yaql_thread_safe():
    from mistral.expressions import yaql_expression

    engine = yaql_expression.get_yaql_engine_class()
    if not isinstance(engine, LockedYaqlEngine):
        yaql_expression.YAQL_ENGINE = LockedYaqlEngine(engine)
    return yaql_expression.YAQL_ENGINE


def _api_service():
    from mistral.api import service as api_service

    set_up_policy_enforcer()
    return api_service.WSGIService("mistral_api")


def set_up_policy_enforcer():
    """Mistral sets up its policy enforcer at the first API request,
    without a lock: a request that comes while another sets it up finds
    no policies and answers 500 "Policy workflows:get has not been
    registered" (seen in CI: the pack's registration, at the same moment
    as a client's poll, got it and the server exited).  Set it up before
    the API serves."""
    from mistral.api import access_control

    access_control._ensure_enforcer_initialization()
    return access_control._ENFORCER


def _start_services(stop_requested):
    from mistral.engine import engine_server
    from mistral.executors import executor_server
    from mistral.notifiers import notification_server
    from mistral.services import periodic_server

    builders = [
        engine_server.get_oslo_service,
        executor_server.get_oslo_service,
        notification_server.get_oslo_service,
        periodic_server.get_oslo_service,
        _api_service,
    ]
    started = []
    try:
        for build in builders:
            if stop_requested.is_set():
                break
            service = build()
            service.start()
            started.append(service)
    except Exception:
        _stop_services(started)
        raise
    return started


def _stop_services(services):
    for service in reversed(services):
        try:
            # graceful: the RPC servers drain their thread pools.
            service.stop(graceful=True)
        except TypeError:
            service.stop()
        except Exception:  # keep stopping the others
            LOG.exception("stopping %s failed", type(service).__name__)
    for service in reversed(services):
        service.wait()


def _utcnow():
    from oslo_utils import timeutils

    return timeutils.utcnow()


def _admin_context():
    from mistral import context as auth_ctx

    auth_ctx.set_ctx(auth_ctx.MistralContext(
        user_id=None, project_id=None, auth_token=None, is_admin=True))


def fail_lost_actions(before):
    """Fail at once every action the dead process was running.

    Mistral's heartbeat checker fails such an action ("Heartbeat wasn't
    received.") only ``first_heartbeat_timeout`` after this start, so a
    restarted server would sit a minute on work nobody runs.  This server
    is the only executor on its database: an action still RUNNING that
    was created before this process started (``before``: its start,
    whole seconds, as Mistral stores ``created_at``) ran in the dead one.
    It is completed with an error exactly as the heartbeat checker does
    (``action_handler.on_action_complete``), so its task follows its own
    ``retry`` / ``on-error``; the pack's actions look before they act, so
    running one again is safe.  Returns the action execution ids.
    """
    from mistral.db import utils as db_utils
    from mistral.engine import post_tx_queue

    @db_utils.retry_on_db_error
    @post_tx_queue.run
    def fail_all():
        from mistral.db.v2 import api as db_api
        from mistral.engine import action_handler
        from mistral.workflow import states
        from mistral_lib import actions as ml_actions

        failed = []
        with db_api.transaction():
            lost = [a for a in db_api.get_action_executions(
                        state=states.RUNNING)
                    if a.created_at is not None and a.created_at < before]
            for action_ex in lost:
                LOG.warning("failing action %s (%s): it was running in the "
                            "previous process", action_ex.name, action_ex.id)
                action_handler.on_action_complete(
                    action_ex, ml_actions.Result(
                        error="instance-ha: lost with the previous server "
                              "process"))
                failed.append(action_ex.id)
        return failed

    _admin_context()
    try:
        failed = fail_all()
    finally:
        _clear_context()
    if failed:
        LOG.warning("failed %d action(s) lost with the previous process",
                    len(failed))
    return failed


def _clear_context():
    from mistral import context as auth_ctx

    auth_ctx.set_ctx(None)


def resume_orphaned_tasks(before):
    """Start again every task a dead process created but never started.

    Since Mistral 17 a task is created IDLE in one transaction and started
    by a ``start_task`` message sent after the commit; when the process
    dies in between, the message is lost and the task stays IDLE, its
    execution RUNNING, for good (nothing in Mistral looks at IDLE tasks).
    This server is the only engine on its database, so an IDLE task of a
    RUNNING execution created before this process started was orphaned by
    the dead one: it is sent the same ``start_task`` Mistral's dispatcher
    sends (``mistral/engine/dispatcher.py``).  Starting it is safe: the
    engine moves it IDLE -> RUNNING with a conditional update, so a task
    already started is not started twice.  Tasks created by this process
    (``before``: its start time) are left to it.  Returns the task ids.
    """
    from mistral.db.v2 import api as db_api
    from mistral.rpc import clients as rpc_clients
    from mistral.workflow import states

    _admin_context()
    try:
        with db_api.transaction():
            orphans = [
                (task.id, task.name, task.workflow_execution_id,
                 (task.runtime_context or {}).get("triggered_by"))
                for wf_ex in db_api.get_workflow_executions(
                    state=states.RUNNING)
                for task in db_api.get_task_executions(
                    workflow_execution_id=wf_ex.id, state=states.IDLE)
                if task.created_at is not None
                and task.created_at < before]
        engine = rpc_clients.get_engine_client()
        for task_id, name, wf_ex_id, triggered_by in orphans:
            LOG.warning("resuming task %s (%s) of execution %s: created "
                        "but never started by the previous process",
                        name, task_id, wf_ex_id)
            engine.start_task(task_ex_id=task_id, first_run=True,
                              waiting=False, triggered_by=triggered_by,
                              rerun=False, reset=False)
        if orphans:
            LOG.warning("resumed %d orphaned task(s)", len(orphans))
        return [task_id for task_id, *_ in orphans]
    finally:
        _clear_context()


def _install_pack(options, stop_requested):
    """Register the pack.  A transient refusal (no answer, a 5xx such as
    SQLite's "database is locked" while the engine resumes a busy
    database) is tried again for INSTALL_RETRY_SECONDS before the server
    gives up.  (The restarts seen exiting under load were the YAQL race,
    a rejection, not this: see LockedYaqlEngine.)"""
    client = mistral_client.connect(mistral_url=options.url)
    deadline = time.monotonic() + INSTALL_RETRY_SECONDS
    while True:
        try:
            outcomes = installer.install(client)
            break
        except installer.InstallError as exc:
            if not exc.transient or time.monotonic() > deadline:
                raise
            LOG.warning("registering the pack failed (%s); trying again in "
                        "%s s", exc, INSTALL_RETRY_INTERVAL)
            if stop_requested.wait(INSTALL_RETRY_INTERVAL):
                return
    for outcome in outcomes:
        LOG.info("workflow %s: %s", outcome.workflow, outcome.change)
