"""Session fixtures of the keystone tier: one real Keystone 30
(tests/keystone_support.py), one simulated cloud whose Nova validates that
Keystone's tokens (instance_ha.simcloud.external_keystone), and one
embedded Mistral with ``[pecan] auth_enable = True`` and keystonemiddleware
in front of its API.  The executor has no clouds.yaml and no OS_*
variables: the pack's actions talk to Nova with the execution's own
security context.

The Keystone venv (tools/keystone-venv.sh) missing fails every test with
one line saying so; KEYSTONE_SKIP_MISSING=1 makes it a skip instead."""

import json
import os
import time

import fake_pacemaker
import keystone_support
import pytest

from instance_ha import installer
from instance_ha import mistral_client
from instance_ha import server_process
from instance_ha.simcloud import external_keystone
from instance_ha.simcloud import server as simcloud_server
from instance_ha.simcloud import testing
from instance_ha.simcloud import topology

# Keystone's [token] expiration for the whole session: short, so that a
# recovery longer than it (test_token_expiry) outlives its token.  Every
# other client re-authenticates as keystoneauth does.
TOKEN_EXPIRATION = 3600
HOSTS = 6
HA = {"HA_Enabled": "True"}


@pytest.fixture(scope="session")
def keystone(tmp_path_factory):
    """One real Keystone for the session (see keystone_support)."""
    yield from keystone_support.keystone_fixture(
        tmp_path_factory, pytest.skip, pytest.fail,
        token_expiration=TOKEN_EXPIRATION)


@pytest.fixture(scope="session")
def sim(keystone):
    """The simulated cloud, compute1..6 with no servers, its Nova (and
    placement, Glance) taking the real Keystone's tokens; in the catalog
    as compute, placement and image."""
    config = testing.small_topology(hosts=HOSTS, vms_per_host=0)
    cloud = topology.build(config)
    identity = external_keystone.ExternalKeystone(
        keystone.url, "nova", keystone.passwords["nova"], "service")
    identity.adopt(cloud, keystone.projects)
    running = simcloud_server.SimCloud(cloud).start()
    try:
        keystone.add_service("compute", "nova", running.compute_url)
        keystone.add_service("placement", "placement",
                             running.placement_url)
        keystone.add_service("image", "glance", running.url + "/image")
        yield running
    finally:
        running.stop()
    assert running.errors == [], running.errors
    assert identity.errors == [], identity.errors


class AuthMistral:
    """The session's Keystone-authenticated Mistral."""

    def __init__(self, server, keystone, sim, pacemaker, workdir):
        self.server = server
        self.keystone = keystone
        self.sim = sim
        self.pacemaker = pacemaker
        self.workdir = workdir
        self.clouds_yaml = keystone.clouds_yaml(
            workdir / "clouds.yaml", *keystone_support.USERS)

    def client(self, user="admin"):
        """A mistralclient of ``user``, Mistral found in the catalog."""
        return mistral_client.connect(cloud=f"keystone-{user}",
                                      clouds_yaml=str(self.clouds_yaml))

    def add_servers(self, host, count, project="demo", **fields):
        """``count`` HA-enabled active servers on ``host``, of Keystone's
        project ``project``."""
        return [self.sim.cloud.add_server(
            f"{host}-vm{i}", host, metadata=HA,
            project_id=self.keystone.projects[project], **fields)
            for i in range(1, count + 1)]

    def fail_host(self, host):
        """``host`` dead in Nova and fenced in Pacemaker."""
        self.sim.cloud.kill_host(host)
        self.pacemaker.show(node=host)

    def run(self, client, workflow, wf_input, timeout=240, execution=None):
        """Start a workflow as ``client``'s user (or follow ``execution``)
        to its end: (execution, decoded output)."""
        execution = execution or client.executions.create(
            workflow, workflow_input=wf_input, description="keystone test")
        deadline = time.monotonic() + timeout
        while execution.state in ("IDLE", "RUNNING", "PAUSED"):
            assert time.monotonic() < deadline, \
                f"execution {execution.id} still {execution.state}"
            time.sleep(0.5)
            execution = client.executions.get(execution.id)
        return execution, json.loads(execution.output or "{}")


@pytest.fixture(scope="session")
def auth_mistral(keystone, sim, tmp_path_factory):
    """One embedded Mistral for the session, auth on, in the catalog as
    workflowv2, the pack registered by the admin user.  Stopped by its
    PID at the end."""
    workdir = tmp_path_factory.mktemp("auth-mistral")
    home = workdir / "home"
    home.mkdir()
    conf = workdir / "mistral-auth.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("[DEFAULT]\nauth_type = keystone\n\n"
                "[pecan]\nauth_enable = true\n\n"
                + keystone.authtoken_settings("mistral"))
    pacemaker = fake_pacemaker.FakePacemaker(str(workdir / "pacemaker"))
    server = server_process.ServerProcess(
        str(workdir), extra_args=["--no-register", "--config", str(conf)])
    # Not ServerProcess's env= (it adds to os.environ): exactly this one.
    server.env = dict(keystone_support.without_credentials(home),
                      **pacemaker.env)
    try:
        server.start()
        keystone.add_service("workflowv2", "mistral", server.url)
        mistral = AuthMistral(server, keystone, sim, pacemaker, workdir)
        installer.install(mistral.client("admin"))
        yield mistral
    finally:
        server.stop(timeout=20)
        server.kill()
