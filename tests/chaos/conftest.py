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
            # choice and the bind: then our child exits at once (port in
            # use) while the other run's server answered wait_ready.
            time.sleep(2)
            if self.server.process.poll() is None:
                break
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
