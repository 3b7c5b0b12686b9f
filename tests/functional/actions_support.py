"""Shared by the action tests: a simulated cloud the actions reach through
a clouds.yaml (as an executor would), a stand-in Mistral context, and
counting the Nova calls an action made from the simulator's call log."""

import os
import threading

import pytest
import yaml
from mistral_lib import actions as mistral_actions
from mistral_lib.actions import context as mistral_context

from instance_ha import cloud_session
from instance_ha import nova_client
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
        """Compute API calls (not Keystone's or Glance's) answered after
        ``since``."""
        return [c for c in self.model.calls.calls()[since:]
                if not c.operation.startswith(("keystone.", "glance."))
                and all(getattr(c, k) == v for k, v in match.items())]

    def operations(self, since=0):
        return [c.operation for c in self.nova_calls(since)]

    def force_down(self, host):
        with self.model.lock:
            self.model.hosts[host].service.forced_down = True

    def gate_evacuations(self, *steps):
        """Hold every evacuation before the named steps (model.
        EVACUATION_STEPS names) until the returned events are set."""
        from instance_ha.simcloud import model

        names = [name for _, name in model.EVACUATION_STEPS]
        gates = {names.index(step): threading.Event() for step in steps}
        original = self.model._evacuation_step

        def step(evacuation, index):
            gate = gates.get(index)
            if gate is not None:
                gate.wait(30)
            original(evacuation, index)

        self.model._evacuation_step = step
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
