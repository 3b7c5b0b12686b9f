"""Shared by the action tests: a simulated cloud the actions reach through
a clouds.yaml (as an executor would), a stand-in Mistral context,
counting the Nova calls an action made from the simulator's call log, and
a failed host whose VMs recover_servers recovers (with the executor's
Pacemaker showing that host fenced)."""

import os
import threading

import fake_pacemaker
import pytest
import yaml
from mistral_lib import actions as mistral_actions
from mistral_lib.actions import context as mistral_context

from instance_ha import cloud_session
from instance_ha import nova_client
from instance_ha.actions.host_servers import HostServers
from instance_ha.actions.recover_servers import RecoverServers
from instance_ha.simcloud import testing


def context(**security):
    return mistral_context.ActionContext(
        mistral_context.SecurityContext(**security),
        mistral_context.ExecutionContext(workflow_name="test",
                                         action_execution_id="a-1"))


def run(action, ctx=None):
    """What the action returned: its data dict, or the Result on error."""
    result = action.run(ctx or context())
    if isinstance(result, mistral_actions.Result):
        assert result.is_error(), result
        return result
    return result


def error_of(result):
    assert isinstance(result, mistral_actions.Result), result
    assert set(result.error) == {"server", "host", "reason", "code"}, \
        result.error
    return result.error


def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("OS_") or name.startswith("INSTANCE_HA_CLOUD"):
            monkeypatch.delenv(name)
    cloud_session.clear_cache()
    nova_client.clear_negotiated()
    monkeypatch.setattr(nova_client, "RETRY_INITIAL_DELAY", 0.01)
    monkeypatch.setattr(nova_client, "RETRY_BUDGET", 2.0)


def write_clouds(tmp_path, clouds):
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump(clouds))
    path.chmod(0o600)
    return str(path)


class Cloud:
    """A started simulated cloud the actions reach through cloud
    ``simcloud`` (admin) of a clouds.yaml."""

    def __init__(self, sim, clouds_yaml):
        self.sim = sim
        self.model = sim.cloud
        self.clouds_yaml = clouds_yaml

    def server(self, name):
        return next(s for s in self.model.servers.values()
                    if s.name == name)

    def mark(self):
        """A position in the call log, for nova_calls(since=...)."""
        return len(self.model.calls)

    def nova_calls(self, since=0, **match):
        """Compute API calls (not Keystone's, Glance's or placement's)
        answered after ``since``."""
        return [c for c in self.model.calls.calls()[since:]
                if not c.operation.startswith(("keystone.", "glance.",
                                               "placement."))
                and all(getattr(c, k) == v for k, v in match.items())]

    def operations(self, since=0):
        return [c.operation for c in self.nova_calls(since)]

    def force_down(self, host):
        with self.model.lock:
            self.model.hosts[host].service.forced_down = True

    def gate_evacuations(self, *steps, server=None):
        """Hold every evacuation (of the server named ``server`` only,
        if given) before the named steps (model.EVACUATION_STEPS names)
        until the returned events are set."""
        return gate_evacuations(self.model, *steps, server=server)


def gate_evacuations(model, *steps, server=None):
    """Cloud.gate_evacuations on a simulated cloud's model."""
    from instance_ha.simcloud import model as model_module

    names = [name for _, name in model_module.EVACUATION_STEPS]
    gates = {names.index(step): threading.Event() for step in steps}
    original = model._evacuation_step

    def step(evacuation, index):
        gate = gates.get(index)
        if gate is None or (server or evacuation.server.name) != \
                evacuation.server.name:
            return original(evacuation, index)
        if server is None:
            gate.wait(30)
            return original(evacuation, index)
        # One server held: the others' steps run on the same timeline.
        if gate.is_set():
            return original(evacuation, index)
        model.timeline.call_later(0.05, step, evacuation, index)

    model._evacuation_step = step
    return [gates[names.index(s)] for s in steps]


def start_cloud(simcloud_factory, monkeypatch, tmp_path, config=None,
                cloud="simcloud", **entry):
    clean_environment(monkeypatch)
    sim = simcloud_factory(config)
    clouds = sim.clouds()
    for item in clouds["clouds"].values():
        item.update(entry)
    path = write_clouds(tmp_path, clouds)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", path)
    monkeypatch.setenv("OS_CLOUD", cloud)
    return Cloud(sim, path)


@pytest.fixture
def cloud(simcloud_factory, monkeypatch, tmp_path):
    """The default simulated cloud (compute1..3, two active servers each),
    reached through clouds.yaml cloud ``simcloud``."""
    return start_cloud(simcloud_factory, monkeypatch, tmp_path)


@pytest.fixture
def make_cloud(simcloud_factory, monkeypatch, tmp_path):
    def make(config=None, **entry):
        return start_cloud(simcloud_factory, monkeypatch, tmp_path, config,
                           **entry)
    return make


def topology(hosts, **settings):
    """A config: hosts is {name: [server dicts]}."""
    config = testing.small_topology(hosts=0)
    config["settings"].update(settings)
    config["hosts"] = [{"name": name, "servers": servers}
                       for name, servers in hosts.items()]
    return config


@pytest.fixture
def pacemaker(tmp_path, monkeypatch):
    """The executor's Pacemaker (tests/fake_pacemaker.py): captured live
    crm_mon output showing compute1 offline and fenced, unless the test
    shows something else.  A module whose tests run recover_servers uses
    it for every test (an autouse fixture that requests it)."""
    fake = fake_pacemaker.FakePacemaker(str(tmp_path / "pacemaker"))
    for name, value in fake.env.items():
        monkeypatch.setenv(name, value)
    fake.show(fake_pacemaker.FENCED, node="compute1")
    return fake


def failed_host(make_cloud, servers, others=("compute2", "compute3"),
                entry=None, **settings):
    """A cloud whose compute1 holds ``servers``, dead and forced down;
    ``others``: empty hosts; ``entry``: more of the clouds.yaml entry
    (api_timeout, ...); ``settings``: the simulator's."""
    cloud = make_cloud(topology(
        {"compute1": servers, **{name: [] for name in others}},
        **dict({"evacuation_time": 0.3, "power_time": 0.05}, **settings)),
        **(entry or {}))
    cloud.model.kill_host("compute1")
    cloud.force_down("compute1")
    return cloud


def plans(cloud):
    """compute1's host_servers entries planned for evacuation."""
    listing = run(HostServers({"host": "compute1"}))
    return [p for p in listing["servers"] if p["plan"] == "evacuate"]


def recover(cloud, batch, **kwargs):
    """recover_servers of ``batch`` from compute1: {name: record}."""
    result = run(RecoverServers(batch, "compute1",
                                **dict({"interval": 0.5}, **kwargs)))
    assert not hasattr(result, "error"), result.error
    assert result["refused"] is None, result
    return {r["name"]: r for r in result["servers"]}
