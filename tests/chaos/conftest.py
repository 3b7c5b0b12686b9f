"""Fixtures of the chaos tier: deployments of Mistral that a test may
kill -9, each process stopped by its PID at teardown, whatever
happened."""

import os
import shutil
import signal
import tempfile
import time

import chaos_harness
import distributed as dist
import pytest

from instance_ha import embedded as embedded_server
from instance_ha import mistral_client
from instance_ha import server_process


def pytest_configure(config):
    """One seed for the whole run, chosen before any worker process
    starts (pytest-xdist workers inherit it and collect the same
    points)."""
    if chaos_harness.runs_requested(0):
        chaos_harness.seed()


def pytest_report_header(config):
    if chaos_harness.runs_requested(0):
        return [f"chaos: CHAOS_RUNS={chaos_harness.runs_requested(0)} "
                f"CHAOS_SEED={chaos_harness.seed()} (replay with it)"]
    return ["chaos: the fixed sample of kill points"]


class EmbeddedDeployment:
    """``instance-ha server`` in a child process; after a kill, a new one
    on the same SQLite database (the previous process is gone: one engine
    per database, as in production's embedded shape)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.clouds_yaml = os.path.join(workdir, "clouds.yaml")
        with open(self.clouds_yaml, "w", encoding="utf-8") as f:
            f.write("clouds: {}\n")
        os.chmod(self.clouds_yaml, 0o600)
        self.server = None
        self.restarts = []          # seconds each restart took
        self._client = None

    def _new_server(self):
        return server_process.ServerProcess(
            self.workdir, env={"OS_CLOUD": "simcloud",
                               "OS_CLIENT_CONFIG_FILE": self.clouds_yaml})

    def start(self):
        for _attempt in range(3):
            self.server = self._new_server().start(timeout=240)
            # A free port can be taken by another test run between its
            # choice and the bind: then our child fails to bind while the
            # other run's server answered wait_ready (seen: "no API on the
            # restarted server's port" once that other server stopped).
            # Ready means: our child, by its PID, logged its ready line
            # for our URL.
            if self._logged_ready(timeout=60):
                break
            self.server.stop(timeout=10)
            self.server.kill()
        else:
            raise RuntimeError(f"no embedded server of ours became ready: "
                               f"{self.server.tail()}")
        self._client = mistral_client.connect(mistral_url=self.server.url)
        return self

    def _logged_ready(self, timeout):
        line = f"{embedded_server.READY_MESSAGE} {self.server.url} "
        pid = f" {self.server.pid} "
        deadline = time.monotonic() + timeout
        while self.server.process.poll() is None:
            try:
                with open(self.server.log_file, encoding="utf-8",
                          errors="replace") as f:
                    if any(line in text and pid in text[:40]
                           for text in f):
                        return True
            except FileNotFoundError:
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return False

    def client(self):
        return self._client

    def kill_victim(self):
        pid = self.server.pid
        os.kill(pid, signal.SIGKILL)
        return pid

    def after_kill(self):
        self.server.process.wait(30)
        started = time.monotonic()
        self.start()
        self.restarts.append(time.monotonic() - started)

    def stop(self):
        if self.server is not None:
            self.server.stop(timeout=20)
            self.server.kill()


@pytest.fixture(scope="module")
def embedded():
    workdir = tempfile.mkdtemp(prefix="instance-ha-chaos-")
    deployment = EmbeddedDeployment(workdir)
    try:
        yield deployment.start()
    finally:
        deployment.stop()
        if os.environ.get("CHAOS_KEEP"):
            print(f"\nchaos workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def cloud_factory():
    started = []

    def start(deployment, vms):
        sim = chaos_harness.start_cloud(vms, deployment.clouds_yaml)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture(scope="module")
def distributed():
    """Stock Mistral on MariaDB + RabbitMQ; skipped (failed under
    CI=true) when those cannot be had."""
    try:
        dist.ensure_services()
    except dist.Unavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"distributed chaos needs MariaDB and RabbitMQ: "
                        f"{exc}")
        pytest.skip(f"distributed chaos needs MariaDB and RabbitMQ: {exc}")
    deployment = dist.DistributedDeployment()
    try:
        yield deployment.start()
    finally:
        deployment.stop()
