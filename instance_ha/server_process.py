"""Run ``instance-ha server`` as a child process, for the demo and tests."""

import os
import random
import signal
import socket
import subprocess
import sys
import time

from instance_ha import embedded


class PortInUse(RuntimeError):
    """The child could not listen on its port."""


class Child:
    """A child process (``self.process``, a Popen, its output in
    ``self.output_file``) stopped by its PID."""

    process = None

    def stop(self, timeout=30.0):
        """SIGTERM, then SIGKILL after ``timeout``; return the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def tail(self, lines=15):
        """The last lines of the child's output (``self.output_file``)."""
        try:
            with open(self.output_file, encoding="utf-8",
                      errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


class ServerProcess(Child):
    """An embedded Mistral server child, stopped by its PID."""

    def __init__(self, workdir, port=None, host="127.0.0.1", extra_args=(),
                 env=None):
        self.workdir = workdir
        self.host = host
        self.chosen_port = port is None
        self.port = port or free_port(host)
        self.db = os.path.join(workdir, "mistral.sqlite")
        self.log_file = os.path.join(workdir, "server.log")
        self.output_file = os.path.join(workdir, "server.out")
        self.extra_args = list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.process = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/v2"

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def start(self, timeout=90.0, attempts=3):
        """Start the server and wait until it is ready (its start-up steps
        done, its pack registered unless --no-register).  A port we chose
        that another process took before our child bound it: a new port,
        up to ``attempts`` times."""
        for attempt in range(1, attempts + 1):
            self.launch()
            try:
                self.wait_ready(timeout)
                return self
            except PortInUse:
                if not self.chosen_port or attempt == attempts:
                    raise
                self.port = free_port(self.host)

    def launch(self):
        """Start the server process without waiting for it."""
        command = [*instance_ha_command(), "server",
                   "--db", self.db, "--host", self.host,
                   "--port", str(self.port), "--log-file", self.log_file,
                   *self.extra_args]
        with open(self.output_file, "ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env)
        return self

    def wait_ready(self, timeout):
        """Until this child, by its PID, logged that it is ready at our URL.
        Not an API answering on our port: that can be another process's,
        which took the port between its choice and our child's bind."""
        deadline = time.monotonic() + timeout
        while not self.logged_ready():
            if self.process.poll() is not None:
                tail = self.tail()
                error = PortInUse if "is already in use" in tail \
                    else RuntimeError
                raise error(f"server exited with {self.process.returncode}"
                            f"; its errors: {self.logged_errors()}; the end "
                            f"of its output: {tail}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server not ready after {timeout} s: "
                                   f"{self.tail()}")
            time.sleep(0.2)

    def logged_errors(self, limit=5):
        """The first ERROR and CRITICAL lines this child logged."""
        found = [text.strip()[:400] for text in self._own_log_lines()
                 if " ERROR " in text[:60] or " CRITICAL " in text[:60]]
        return found[:limit]

    def logged_ready(self):
        """This child logged its ready line for our URL."""
        line = f"{embedded.READY_MESSAGE} {self.url} "
        return any(line in text for text in self._own_log_lines())

    def _own_log_lines(self):
        """The lines this child logged (earlier servers of the same work
        directory share the file)."""
        pid = f" {self.pid} "
        try:
            with open(self.log_file, encoding="utf-8",
                      errors="replace") as f:
                yield from (text for text in f if pid in text[:40])
        except FileNotFoundError:
            return



def write_clouds_yaml(path, clouds):
    """Write a clouds.yaml readable by its owner only: it holds passwords."""
    import yaml

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(clouds, f)
    return path


def cloud_env(clouds_yaml, cloud="simcloud"):
    """The environment that points the server's actions at ``cloud``."""
    return {"OS_CLOUD": cloud, "OS_CLIENT_CONFIG_FILE": clouds_yaml}


def instance_ha_command():
    """The installed ``instance-ha`` script of this Python environment.

    Not ``python -m instance_ha``: run from a source checkout, that puts
    the checkout's ``instance_ha/`` first on sys.path, and it lacks the
    sub-packages pyproject.toml maps in from workflows/, actions/ and the rest.
    """
    script = os.path.join(os.path.dirname(sys.executable), "instance-ha")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "instance_ha"]


# Below it: the well-known and registered ports of the services tests
# talk to (MariaDB 3306, RabbitMQ 5672, Mistral 8989, ...).
PORT_FLOOR = 10000


def free_port(host="127.0.0.1"):
    """A port nothing listens on now, below the kernel's ephemeral range.
    Not a port-0 bind: that hands out an ephemeral port, which any
    outgoing connection (to RabbitMQ, MariaDB, an API) may take as its
    local port before our server binds it (seen: a test's Mistral API
    that could not listen)."""
    low = ephemeral_range()[0]
    candidates = range(PORT_FLOOR, low) if low > PORT_FLOOR + 1000 else ()
    for port in random.sample(candidates, min(len(candidates), 100)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def ephemeral_range():
    """(first, last) local port the kernel gives outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range",
                  encoding="ascii") as f:
            first, last = f.read().split()
        return int(first), int(last)
    except (OSError, ValueError):
        return 32768, 60999   # Linux's default
