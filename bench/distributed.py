"""Stock Mistral, distributed: MariaDB, RabbitMQ, two engine+executor
processes and one API, each its own ``mistral-server`` (which forks a
worker per component).  The instance-ha pack is installed in the same
Python environment (its actions are ``mistral.actions`` entry points).

Shared by the chaos tier (tests/chaos/distributed.py adds the kills and
the fake Pacemaker its executors read) and the bench (``python -m bench
--distributed``, bench/lab.py's DistributedLab).  It imports nothing of
the bench; the bench imports it only once it chose the code to measure
(bench/source.py), as every module of it that imports instance-ha.

Each deployment creates its own MariaDB database and RabbitMQ vhost and
removes them at the end; every process is started in a new session and
stopped (then killed) by its PID, children included, whatever happens.
No password appears in argv or logs: MariaDB's root has none on this
machine, and RabbitMQ's guest password is only in the 0600 config file.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pymysql

from instance_ha import embedded
from instance_ha import installer
from instance_ha import mistral_client
from instance_ha import server_process

DB_HOST = "127.0.0.1"
DB_PORT = 3306
RABBIT_PORT = 5672

# The settings of every Mistral that runs the pack are the embedded
# server's own text (instance_ha.embedded.PACK_SETTINGS: scheduler,
# heartbeats, integrity check, pickup, action provider, YAQL); only this
# topology's transport, API, database and queues are added here.
TOPOLOGY_SETTINGS = """
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:{rabbit_port}/{vhost}
use_stderr = false

[api]
host = 127.0.0.1
port = {api_port}

[pecan]
auth_enable = false

[database]
connection = mysql+pymysql://root@{db_host}:{db_port}/{db}

[oslo_messaging_rabbit]
rabbit_quorum_queue = true
"""


def mistral_conf(**topology):
    """mistral.conf of every node: the durability settings, then this
    topology's own."""
    return embedded.PACK_SETTINGS + TOPOLOGY_SETTINGS.format(
        **topology)


class Unavailable(Exception):
    """MariaDB or RabbitMQ cannot be had on this machine."""


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _wait_port(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(port):
            return True
        time.sleep(1)
    return False


def ensure_services():
    """Start MariaDB / RabbitMQ when they are down (their own daemons,
    not ours to stop).  Raises Unavailable with the reason."""
    if not _port_open(DB_PORT):
        if not os.path.exists("/usr/sbin/mariadbd"):
            raise Unavailable("MariaDB is not installed (/usr/sbin/mariadbd)")
        subprocess.run(["start-stop-daemon", "--start", "--oknodo",
                        "--background", "--exec", "/usr/sbin/mariadbd"],
                       check=False, timeout=60)
        if not _wait_port(DB_PORT, 60):
            raise Unavailable("MariaDB did not start on 127.0.0.1:3306")
    if not _port_open(RABBIT_PORT):
        if not shutil.which("rabbitmq-server"):
            raise Unavailable("RabbitMQ is not installed")
        subprocess.run(["rabbitmq-server", "-detached"], check=False,
                       timeout=60)
        if not _wait_port(RABBIT_PORT, 90):
            raise Unavailable("RabbitMQ did not start on 127.0.0.1:5672")
    try:
        _sql("SELECT 1")
    except pymysql.MySQLError as exc:
        raise Unavailable(f"MariaDB refuses root on 127.0.0.1: {exc}") \
            from None


def _sql(statement, db=None):
    conn = pymysql.connect(host=DB_HOST, port=DB_PORT, user="root",
                           database=db, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall()
    finally:
        conn.close()


def _rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", *args], check=True, timeout=60,
                   capture_output=True)


class MistralProcess:
    """One ``mistral-server --server X`` and the workers it forks."""

    def __init__(self, name, server, config_files, workdir, env):
        self.name = name
        self.server = server
        self.config_files = list(config_files)
        self.env = env
        self.output = os.path.join(workdir, f"{name}.out")
        self.log_file = os.path.join(workdir, f"{name}.log")
        self.process = None

    def start(self):
        command = [os.path.join(os.path.dirname(sys.executable),
                                "mistral-server")]
        for path in self.config_files:
            command += ["--config-file", path]
        command += ["--log-file", self.log_file,
                    "--server", self.server]
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True, preexec_fn=_die_with_parent)
        return self

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def pids(self):
        """This server's PID and its descendants' (its forked workers)."""
        found = [self.pid]
        index = 0
        while index < len(found):
            children = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(found[index])],
                capture_output=True, text=True).stdout.split()
            found += [int(c) for c in children]
            index += 1
        return found

    def signal_all(self, sig):
        pids = self.pids() if self.process else []
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def kill(self):
        """SIGKILL to the server and every worker: a controller lost."""
        pids = self.signal_all(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(30)
        return pids

    def stop(self, timeout=20):
        if self.process is None:
            return
        pids = self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
                os.path.exists(f"/proc/{p}") and not _zombie(p)
                for p in pids):
            if self.process.poll() is not None and not any(
                    os.path.exists(f"/proc/{p}") and not _zombie(p)
                    for p in pids[1:]):
                break
            time.sleep(0.5)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass


# Resolved once here: the child between fork and exec (other threads
# of the test process may hold locks) only makes the call.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child, before exec: SIGKILL when the test process dies
    without its teardown (an interrupted pytest-xdist worker is ended
    without running fixtures); its own forked workers follow it (oslo
    service workers exit when their parent goes)."""
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ")[-1].startswith("Z")
    except OSError:
        return True


class DistributedDeployment:
    """engine+executor A and B, API; the pack's workflows installed.

    ``name`` tags the work directory, the database and the vhost;
    ``extra_config_files``: operator Mistral files read by every process
    after the deployment's own mistral.conf; ``keep``: leave the work
    directory (logs, config) behind.  ``_env()`` is every process's
    environment: the actions read the simulated cloud from
    ``clouds_yaml`` (``OS_CLOUD=simcloud``)."""

    ENGINES = ("a", "b")

    def __init__(self, name="chaos", extra_config_files=(), keep=False):
        self.workdir = tempfile.mkdtemp(prefix=f"instance-ha-{name}-dist-")
        tag = f"{os.getpid()}_{int(time.time())}"
        self.db = f"instance_ha_{name}_{tag}"
        self.vhost = f"instance_ha_{name}_{tag}"
        self.keep = keep
        self.api_port = server_process.free_port()
        self.clouds_yaml = os.path.join(self.workdir, "clouds.yaml")
        self.config_file = os.path.join(self.workdir, "mistral.conf")
        self.config_files = [self.config_file,
                             *(os.path.abspath(p) for p in
                               extra_config_files)]
        self.engines = []
        self.api = None
        self._client = None
        self._db_created = self._vhost_created = False

    @property
    def url(self):
        return f"http://127.0.0.1:{self.api_port}/v2"

    def _env(self):
        return {**os.environ, "OS_CLOUD": "simcloud",
                "OS_CLIENT_CONFIG_FILE": self.clouds_yaml}

    def start(self):
        _sql(f"CREATE DATABASE `{self.db}` CHARACTER SET utf8mb4")
        self._db_created = True
        _rabbitmqctl("add_vhost", self.vhost)
        self._vhost_created = True
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest",
                     ".*", ".*", ".*")
        for path, text in (
                (self.clouds_yaml, "clouds: {}\n"),
                (self.config_file, mistral_conf(
                    rabbit_port=RABBIT_PORT, vhost=self.vhost,
                    api_port=self.api_port, db_host=DB_HOST,
                    db_port=DB_PORT, db=self.db))):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        subprocess.run(
            [os.path.join(os.path.dirname(sys.executable),
                          "mistral-db-manage"),
             "--config-file", self.config_file, "upgrade", "head"],
            check=True, timeout=600, capture_output=True)
        self.api = MistralProcess("api", "api", self.config_files,
                                  self.workdir, self._env()).start()
        self.engines = [self._engine(name) for name in self.ENGINES]
        self._client = mistral_client.connect(mistral_url=self.url,
                                              timeout=60)
        self._wait_api(300)
        list(installer.install(self._client))
        self.wait_engines(300)
        return self

    def _engine(self, name):
        return MistralProcess(f"engine-executor-{name}", "engine,executor",
                              self.config_files, self.workdir,
                              self._env()).start()

    def _wait_api(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._client.workflows.list()
                return
            except mistral_client.TRANSPORT_ERRORS:
                if time.monotonic() > deadline or not self.api.alive():
                    raise RuntimeError(
                        "the Mistral API never answered") from None
                time.sleep(1)

    def wait_engines(self, timeout):
        """Both engine+executor sets process work: the smoke workflow runs
        (through any of them; each one's readiness is its log line)."""
        deadline = time.monotonic() + timeout
        while True:
            ready = 0
            for engine in self.engines:
                try:
                    with open(engine.log_file, encoding="utf-8",
                              errors="replace") as f:
                        text = f.read()
                except FileNotFoundError:
                    text = ""
                ready += ("Engine server started" in text
                          and "Executor server started" in text)
            if ready == len(self.engines):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("engines not ready")
            time.sleep(1)
        execution = installer.verify_executors(self._client)
        if execution.state != "SUCCESS":
            raise RuntimeError(f"smoke test {execution.state}")

    def client(self):
        return self._client

    def processes(self):
        """Every ``mistral-server`` of the deployment (API first)."""
        return [p for p in [self.api, *self.engines] if p is not None]

    def db_bytes(self):
        """Data + index bytes of the deployment's database, as InnoDB's
        statistics give them (approximate: pages, updated lazily)."""
        rows = _sql("SELECT COALESCE(SUM(data_length + index_length), 0) "
                    "FROM information_schema.tables "
                    f"WHERE table_schema = '{self.db}'")
        return int(rows[0][0])

    def stop(self):
        for process in [*self.engines, self.api]:
            if process is not None:
                process.stop()
        if self._vhost_created:
            try:
                _rabbitmqctl("delete_vhost", self.vhost)
            except Exception:  # noqa: BLE001 - keep cleaning
                pass
        if self._db_created:
            try:
                _sql(f"DROP DATABASE `{self.db}`")
            except pymysql.MySQLError:
                pass
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def versions():
    """MariaDB's and RabbitMQ's versions, for the bench's JSON."""
    found = {}
    try:
        found["mariadb"] = _sql("SELECT VERSION()")[0][0]
    except pymysql.MySQLError as exc:
        found["mariadb"] = f"unknown: {exc}"
    try:
        out = subprocess.run(["rabbitmqctl", "version"], check=True,
                             timeout=60, capture_output=True,
                             text=True).stdout.strip()
        found["rabbitmq"] = out.splitlines()[-1] if out else "unknown"
    except (OSError, subprocess.SubprocessError) as exc:
        found["rabbitmq"] = f"unknown: {exc}"
    return found
