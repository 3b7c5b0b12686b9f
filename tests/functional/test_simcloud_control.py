"""Steering and observing the simulated cloud: topology from a file,
injected failures, latency, kill/revive, and the call log."""

import time

import pytest
from keystoneauth1 import exceptions as ks_exc
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from instance_ha.simcloud import scale
from instance_ha.simcloud import testing
from instance_ha.simcloud import topology

TOPOLOGY = """
settings: {evacuation_time: 0.1, power_time: 0.05}
flavors:
  - {name: m1.large, id: "42", vcpus: 4, ram: 8192, disk: 80,
     extra_specs: {"hw:cpu_policy": dedicated}}
images:
  - {name: plain, properties: {}}
hosts:
  - name: alpha
    servers:
      - {name: web, vm_state: stopped, metadata: {HA_Enabled: "True"}}
      - {name: db, locked: true, locked_reason: maintenance,
         project: admin}
  - {name: beta, disabled: true, disabled_reason: spare}
  - {name: gamma, alive: false}
aggregates:
  - {name: reserved, hosts: [beta], metadata: {reserved: "True"}}
faults:
  - {operation: os-start, server: web, status: 503, times: 1}
"""


def by_name(nova):
    return {s.name: s for s in nova.servers.list(
        search_opts={"all_tenants": True})}


def test_topology_from_a_file(simcloud_factory, tmp_path):
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY)
    sim = simcloud_factory(topology.load(path))
    nova = testing.nova(sim, "2.73")
    servers = by_name(nova)
    assert servers["web"].status == "SHUTOFF"
    assert servers["web"].flavor["original_name"] == "m1.large"
    assert servers["db"].tenant_id == sim.cloud.identity.admin_project.id
    assert (servers["db"].locked, servers["db"].locked_reason) == (
        True, "maintenance")
    services = {s.host: s for s in nova.services.list(
        binary="nova-compute")}
    assert (services["beta"].status, services["beta"].disabled_reason) == (
        "disabled", "spare")
    assert services["gamma"].state == "down"
    assert nova.aggregates.list()[0].hosts == ["beta"]
    with pytest.raises(nova_exc.ClientException) as error:
        nova.servers.start(servers["web"])
    assert error.value.code == 503
    nova.servers.start(servers["web"])   # times: 1
    testing.wait_for(lambda: nova.servers.get(servers["web"].id).status
                     == "ACTIVE")


def test_unknown_config_keys_are_errors():
    with pytest.raises(ValueError, match="unknown host keys"):
        topology.build({"hosts": [{"name": "a", "cpus": 4}]})
    with pytest.raises(ValueError, match="unknown config keys"):
        topology.build({"host": []})
    with pytest.raises(ValueError, match="unknown vm_state"):
        topology.build({"hosts": [{"name": "a", "servers": [
            {"name": "x", "vm_state": "running"}]}]})


def test_injected_500_for_one_server_once(simcloud):
    nova = testing.nova(simcloud)
    simcloud.cloud.faults.add("evacuate", server="compute1-vm1",
                              status=500, times=1)
    nova.services.force_down(
        nova.services.list(host="compute1", binary="nova-compute")[0].id,
        True)
    servers = by_name(nova)
    with pytest.raises(nova_exc.ClientException) as error:
        nova.servers.evacuate(servers["compute1-vm1"])
    assert error.value.code == 500
    assert error.value.message.startswith("Unexpected API Error.")
    nova.servers.evacuate(servers["compute1-vm2"])
    nova.servers.evacuate(servers["compute1-vm1"])
    calls = simcloud.cloud.calls
    assert [c.status for c in calls.calls(
        operation="evacuate", server_id=servers["compute1-vm1"].id)] == \
        [500, 200]
    assert simcloud.cloud.migrations[0].instance_uuid == \
        servers["compute1-vm2"].id


def test_injected_409_and_503_on_lists(simcloud):
    nova = testing.nova(simcloud)
    simcloud.cloud.faults.add("servers.detail", status=503, times=1)
    simcloud.cloud.faults.add("os-stop", status=409,
                              message="Injected conflict.")
    with pytest.raises(nova_exc.ClientException) as error:
        by_name(nova)
    assert error.value.code == 503
    server = by_name(nova)["compute2-vm1"]
    with pytest.raises(nova_exc.Conflict) as error:
        nova.servers.stop(server)
    assert error.value.message == "Injected conflict."
    assert nova.servers.get(server.id).status == "ACTIVE"


def test_injected_500_on_keystone(simcloud):
    simcloud.cloud.faults.add("keystone.token", status=500, times=1)
    with pytest.raises(ks_exc.InternalServerError):
        testing.session(simcloud).get_token()
    assert testing.session(simcloud).get_token()


def test_timeout_after_applying_the_request(simcloud):
    nova = testing.nova(simcloud)
    nova.services.force_down(
        nova.services.list(host="compute1", binary="nova-compute")[0].id,
        True)
    server = by_name(nova)["compute1-vm1"]
    simcloud.cloud.faults.add("evacuate", server=server.id, timeout=5,
                              apply=True, times=1)
    impatient = nova_client.Client(
        "2.53", session=testing.session(simcloud, timeout=0.5))
    with pytest.raises(ks_exc.ConnectTimeout):
        impatient.servers.evacuate(server)
    # The client never heard back, yet Nova accepted the evacuation.
    (call,) = simcloud.cloud.calls.calls(operation="evacuate")
    assert (call.status, call.answered) == (200, False)
    migrations = nova.migrations.list(instance_uuid=server.id)
    assert len(migrations) == 1


def test_timeout_without_applying(simcloud):
    nova = testing.nova(simcloud)
    server = by_name(nova)["compute1-vm1"]
    simcloud.cloud.faults.add("os-stop", server=server.id, timeout=5)
    impatient = nova_client.Client(
        "2.53", session=testing.session(simcloud, timeout=0.3))
    with pytest.raises(ks_exc.ConnectTimeout):
        impatient.servers.stop(server)
    assert nova.servers.get(server.id).status == "ACTIVE"


def test_fault_rule_needs_one_effect():
    from instance_ha.simcloud.faults import FaultRule
    with pytest.raises(ValueError):
        FaultRule("evacuate")
    with pytest.raises(ValueError):
        FaultRule("evacuate", status=500, timeout=1)
    with pytest.raises(ValueError):
        FaultRule("os-stop", outcome="error")


def test_per_operation_latency(simcloud_factory):
    config = testing.small_topology(hosts=1, vms_per_host=1)
    config["latency"] = {"servers.show": 0.3}
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    server = by_name(nova)["compute1-vm1"]
    nova.servers.get(server.id)
    (show,) = sim.cloud.calls.calls(operation="servers.show")
    (listing,) = sim.cloud.calls.calls(operation="servers.detail")
    assert show.duration >= 0.29
    assert listing.duration < show.duration


def test_call_log_counts_calls_per_server(simcloud):
    nova = testing.nova(simcloud, "2.60")
    servers = by_name(nova)
    target = servers["compute3-vm2"]
    started = time.time()
    for _ in range(3):
        nova.servers.get(target.id)
    nova.servers.lock(target)
    calls = simcloud.cloud.calls
    assert calls.count(server_id=target.id) == 4
    assert calls.count(server_id=target.id, operation="servers.show") == 3
    (lock,) = calls.calls(operation="lock")
    assert (lock.method, lock.path, lock.microversion, lock.status) == (
        "POST", f"/v2.1/servers/{target.id}/action", "2.60", 202)
    assert lock.time >= started
    assert lock.project_id == simcloud.cloud.identity.admin_project.id
    assert calls.count(operation="keystone.token") >= 1
    assert calls.accepted_evacuations() == {}


def test_kill_and_revive(simcloud):
    nova = testing.nova(simcloud)

    def state():
        service = nova.services.list(host="compute2",
                                     binary="nova-compute")[0]
        return service.state

    simcloud.cloud.kill_host("compute2")
    assert state() == "down"
    assert by_name(nova)["compute2-vm1"].host_status == "UNKNOWN"
    simcloud.cloud.revive_host("compute2")
    assert state() == "up"


def test_scale_measurement_runs_small():
    result = scale.measure(hosts=3, vms_per_host=4, repeats=3)
    assert result["servers"] == 12
    assert result["first_page_servers"] == 12
