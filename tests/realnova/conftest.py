"""Session fixtures: one real Nova (tests/realnova/nova_server.py) and one
embedded Mistral whose actions act on it.

The real-Nova venv (tools/realnova-venv.sh) missing fails every test with
one line saying so; REALNOVA_SKIP_MISSING=1 makes it a skip instead."""

import json
import time

import fake_pacemaker
import pytest
import realnova

from instance_ha import mistral_client
from instance_ha import server_process


@pytest.fixture(scope="session")
def real_nova(tmp_path_factory):
    """One real Nova 34 for the session: compute1..3 on the fake driver,
    service_down_time 6 s.  Stopped (SIGTERM, then SIGKILL) by its PID at
    the end.  Tests share it: start from ``nova_cloud`` (a reset cloud) or
    use fresh hosts (``real_nova.fresh_host()``)."""
    realnova.require_venv(pytest.skip, pytest.fail)
    nova = realnova.RealNova(tmp_path_factory.mktemp("realnova"))
    try:
        nova.start()
        yield nova
    finally:
        nova.stop(timeout=20)
        nova.kill()


@pytest.fixture
def nova_cloud(real_nova):
    """The session's Nova, reset: no server, every host running, up and
    enabled, the request log empty."""
    real_nova.reset()
    return real_nova


class MistralOnNova:
    """The session's embedded Mistral and the Nova its actions act on."""

    def __init__(self, client, server, nova, clouds_yaml, pacemaker):
        self.client = client
        self.server = server
        self.nova = nova
        self.clouds_yaml = clouds_yaml
        # What host_evacuate's confirm_fencing reads (tests/fake_pacemaker).
        self.pacemaker = pacemaker

    def run(self, workflow, wf_input, timeout=180):
        """Run a workflow to its end: (execution, decoded output)."""
        execution = self.client.executions.create(
            workflow, workflow_input=wf_input, description="realnova test")
        deadline = time.monotonic() + timeout
        while execution.state in ("IDLE", "RUNNING", "PAUSED"):
            assert time.monotonic() < deadline, \
                f"execution {execution.id} still {execution.state}"
            time.sleep(0.2)
            execution = self.client.executions.get(execution.id)
        return execution, json.loads(execution.output or "{}")

    def run_action(self, action, action_input, timeout=120):
        """Run one of the pack's actions on Mistral's executor: its
        decoded output (Mistral's {"result": ...} or the error)."""
        execution = self.client.action_executions.create(
            action, action_input, run_sync=True,
            save_result=True, timeout=timeout)
        return execution, json.loads(execution.output or "{}")


@pytest.fixture(scope="session")
def realnova_mistral(real_nova, tmp_path_factory):
    """One embedded Mistral for the session; its actions read a clouds.yaml
    whose ``realnova`` cloud is the session's Nova (admin).  Stopped by its
    PID at the end."""
    workdir = tmp_path_factory.mktemp("realnova-mistral")
    clouds = real_nova.write_clouds_yaml(str(workdir / "clouds.yaml"))
    pacemaker = fake_pacemaker.FakePacemaker(str(workdir / "pacemaker"))
    server = server_process.ServerProcess(
        str(workdir), env=dict(real_nova.cloud_env(clouds),
                               **pacemaker.env))
    try:
        server.start()
        yield MistralOnNova(mistral_client.connect(mistral_url=server.url),
                            server, real_nova, clouds, pacemaker)
    finally:
        server.stop(timeout=20)
        server.kill()
