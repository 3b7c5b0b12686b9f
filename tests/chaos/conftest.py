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
        self.failed_starts = []     # why each failed start failed
        self._client = None

    def _new_server(self):
        return server_process.ServerProcess(
            self.workdir, env={"OS_CLOUD": "simcloud",
                               "OS_CLIENT_CONFIG_FILE": self.clouds_yaml,
                               **chaos_harness.pacemaker(self.workdir).env})

    def start(self):
        # Ready means our child logged its ready line (ServerProcess): an
        # API answering on a port another test run took meanwhile is not.
        # A server that exits at start-up is started again, as its
        # supervisor would (systemd's Restart=on-failure), at most twice;
        # each such exit is kept for the report.
        for attempt in range(3):
            try:
                self.server = self._new_server().start(timeout=240)
                break
            except RuntimeError as exc:
                self.failed_starts.append(str(exc)[:2000])
                print(f"\nchaos: the embedded server failed to start: "
                      f"{str(exc)[:2000]}")
                if attempt == 2:
                    raise
        self._client = mistral_client.connect(mistral_url=self.server.url)
        return self

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
