"""Capacity on real Nova 34 and placement 16 (nova_server.py serves the
cloud's placement under /placement): host_servers' resources are the
allocations Nova made, estimate_capacity's estimate is what the
scheduler then does, check_failure_limit reads real aggregates; and the
simulated cloud's placement answers have real placement's shape.

Each test uses fresh hosts (MediumFakeDriver: 10 vCPU, 8192 MB of which
placement reserves 512) and names its targets, so that the hosts other
tests of the session leave behind do not count."""

import clouds
import pytest
from realnova import last_seq
from realnova import mutations

from instance_ha import cloud_session
from instance_ha import nova_client
from instance_ha.actions.check_failure_limit import CheckFailureLimit
from instance_ha.actions.estimate_capacity import EstimateCapacity
from instance_ha.actions.host_servers import HostServers
from instance_ha.simcloud import testing

SWAP_FLAVOR = {"name": "cap.swap", "id": "cap-swap", "vcpus": 1,
               "ram": 512, "disk": 1, "OS-FLV-EXT-DATA:ephemeral": 1,
               "swap": 1536}


@pytest.fixture
def actions_cloud(real_nova, tmp_path, monkeypatch):
    """The actions reach the session's Nova (and its placement, through
    placement_endpoint_override) from a clouds.yaml."""
    clouds = real_nova.write_clouds_yaml(str(tmp_path / "clouds.yaml"))
    for key, value in real_nova.cloud_env(clouds).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(cloud_session.CLOUD_VARIABLE, raising=False)
    cloud_session.clear_cache()
    nova_client.clear_negotiated()
    yield real_nova
    cloud_session.clear_cache()
    nova_client.clear_negotiated()


def run(action):
    result = action.run(None)
    assert not hasattr(result, "error"), result.error
    return result


def flavor(nova, spec):
    status, body = nova.nova("GET", f"/flavors/{spec['id']}")
    if status == 200:
        return body["flavor"]
    status, body = nova.nova("POST", "/flavors", {"flavor": spec})
    assert status == 200, body
    return body["flavor"]


def allocation(nova, server_id):
    """What placement holds for the server: {resource class: amount}."""
    status, body = nova.placement("GET", f"/allocations/{server_id}")
    assert status == 200, body
    (provider,) = body["allocations"].values()
    return provider["resources"]


def crash(nova, host):
    nova.crash(host)
    nova.wait_service_state(host, "down")


def test_resources_are_nova_s_allocations_and_the_estimate_its_choice(
        actions_cloud):
    nova = actions_cloud
    flavor(nova, SWAP_FLAVOR)
    source, target = nova.fresh_host("cap"), nova.fresh_host("cap")
    # The target keeps 7680 - 4096 = 3584 MB free.
    nova.create_server(target, flavor="m1.medium")
    made = {}
    for name, flavor_name, priority in (
            ("medium", "m1.medium", "9"), ("small", "m1.small", "8"),
            ("swap", "cap.swap", "7"), ("tiny", "m1.tiny", "6")):
        made[name] = nova.create_server(
            source, flavor=flavor_name, name=name,
            metadata={"instance_ha:priority": priority})["id"]
    crash(nova, source)
    status, _ = nova.nova(
        "PUT", f"/os-services/{nova.service(source)['id']}",
        {"forced_down": True}, microversion="2.53")
    assert status == 200
    entries = run(HostServers({"host": source}))["servers"]
    assert [e["name"] for e in entries] == ["medium", "small", "swap",
                                            "tiny"]
    for entry in entries:
        assert entry["resources"] == allocation(nova, entry["id"]), entry
    by_name = {e["name"]: e for e in entries}
    # swap 1536 MB: 2 GB, beside the 1 GB root and 1 GB ephemeral disks.
    assert by_name["swap"]["resources"] == {
        "VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 4}

    seq = last_seq(nova)
    result = run(EstimateCapacity(entries, source, [target]))
    assert mutations(nova, seq) == []
    assert result["checked"] is True
    assert result["fit"] == [made["small"], made["swap"], made["tiny"]]
    assert [r["id"] for r in result["no_room"]] == [made["medium"]]
    assert "MEMORY_MB 4096 > free 3584" in result["no_room"][0]["reason"]
    (host,) = result["hosts"]
    assert host["host"] == target
    assert host["free"]["MEMORY_MB"] == 3584
    assert host["left"]["MEMORY_MB"] == 3584 - 2048 - 512 - 512
    # Nova, asked for the target in the same order, agrees.
    cloud = clouds.RealCloud(nova)
    no_room = {r["id"] for r in result["no_room"]}
    for entry in entries:
        status, body = cloud.evacuate(entry["id"], host=target)
        assert status == 200, body
        # Nova 34 clears task_state before it moves the host: the server
        # is read once its evacuation is over.
        migration = cloud.wait_evacuation(entry["id"])
        server = cloud.wait_server(entry["id"],
                                   **{"OS-EXT-STS:task_state": None})
        if entry["id"] in no_room:
            assert (migration["status"], server["status"]) == (
                "error", "ERROR")
            assert "No valid host" in server["fault"]["message"]
        else:
            assert (migration["status"], server["status"]) == (
                "done", "ACTIVE")
            assert server["OS-EXT-SRV-ATTR:host"] == target


def test_null_targets_are_the_up_enabled_hosts(actions_cloud):
    nova = actions_cloud
    source, disabled = nova.fresh_host("cap"), nova.fresh_host("cap")
    nova.create_server(source, flavor="m1.tiny")
    status, _ = nova.nova(
        "PUT", f"/os-services/{nova.service(disabled)['id']}",
        {"status": "disabled", "disabled_reason": "capacity test"},
        microversion="2.53")
    assert status == 200
    crash(nova, source)
    entries = run(HostServers({"host": source}))["servers"]
    result = run(EstimateCapacity(entries, source, [None]))
    names = [h["host"] for h in result["hosts"]]
    up = {h["host"] for h in nova.hosts()
          if h["state"] == "up" and h["status"] == "enabled"}
    assert set(names) == up
    assert source not in names and disabled not in names
    assert result["fit"] == [entries[0]["id"]]


def test_the_failure_limit_on_real_aggregates(actions_cloud):
    nova = actions_cloud
    first, second, third = (nova.fresh_host("cap") for _ in range(3))
    status, body = nova.nova("POST", "/os-aggregates",
                             {"aggregate": {"name": f"rack-{first}"}})
    assert status == 200, body
    aggregate_id = body["aggregate"]["id"]

    def action(body):
        status, answer = nova.nova(
            "POST", f"/os-aggregates/{aggregate_id}/action", body)
        assert status == 200, answer

    for host in (first, second, third):
        action({"add_host": {"host": host}})
    action({"set_metadata": {"metadata": {
        "instance_ha:max_failures": "1"}}})
    crash(nova, first)
    seq = last_seq(nova)
    assert run(CheckFailureLimit(first)) == {
        "refused": None,
        "aggregates": [{"name": f"rack-{first}", "max_failures": 1,
                        "failed": [first]}]}
    assert mutations(nova, seq) == []
    crash(nova, second)
    result = run(CheckFailureLimit(first))
    assert result["refused"] == (
        f"recovery of {first} refused: aggregate rack-{first} allows "
        f"instance_ha:max_failures=1 failed hosts and has 2: {first}, "
        f"{second}")
    action({"set_metadata": {"metadata": {
        "instance_ha:max_failures": "many"}}})
    seq = last_seq(nova)
    assert "instance_ha:max_failures='many' is not an integer >= 1" in \
        run(CheckFailureLimit(third))["refused"]
    assert mutations(nova, seq) == []


# -- the simulated cloud's placement has real placement's shape ------------

def shape(value):
    """The JSON's structure: keys and value types, not the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    if isinstance(value, bool) or value is None:
        return value
    return type(value).__name__


def sim_placement(sim, path, version=None, admin=True):
    headers = {"OpenStack-API-Version": f"placement {version}"} \
        if version else {}
    response = testing.session(sim, admin).get(
        sim.placement_url + path, headers=headers, raise_exc=False,
        authenticated=path != "/")
    return response.status_code, response.json(), response.headers


@pytest.mark.parametrize("version", [None, "1.14", "1.39"])
def test_simcloud_placement_has_real_placement_s_shape(
        real_nova, simcloud_factory, version):
    host = real_nova.computes[0]
    sim = simcloud_factory()
    sim_host = "compute1"
    status, real_list = real_nova.placement(
        "GET", f"/resource_providers?name={host}", microversion=version)
    assert status == 200
    sim_status, sim_list, headers = sim_placement(
        sim, f"/resource_providers?name={sim_host}", version)
    assert sim_status == 200
    assert shape(sim_list) == shape(real_list)
    assert headers["openstack-api-version"] == \
        f"placement {version or '1.0'}"
    real_uuid = real_list["resource_providers"][0]["uuid"]
    sim_uuid = sim_list["resource_providers"][0]["uuid"]
    for what in ("inventories", "usages"):
        _, real = real_nova.placement(
            "GET", f"/resource_providers/{real_uuid}/{what}",
            microversion=version)
        _, simulated, _ = sim_placement(
            sim, f"/resource_providers/{sim_uuid}/{what}", version)
        assert shape(simulated) == shape(real), what
    # The unknown provider, the member, the versions document.
    status, real = real_nova.placement(
        "GET", "/resource_providers/nope/usages", microversion=version)
    sim_status, simulated, _ = sim_placement(
        sim, "/resource_providers/nope/usages", version)
    assert (sim_status, shape(simulated)) == (status, shape(real))
    assert simulated["errors"][0]["detail"] == real["errors"][0]["detail"]
    status, real = real_nova.placement(
        "GET", "/resource_providers", token="member:demo",
        microversion=version)
    sim_status, simulated, _ = sim_placement(
        sim, "/resource_providers", version, admin=False)
    assert (sim_status, shape(simulated)) == (status, shape(real)) == \
        (403, shape(real))
    assert simulated["errors"][0]["detail"] == real["errors"][0]["detail"]
    status, real = real_nova.placement("GET", "/", token=None)
    _, simulated, _ = sim_placement(sim, "/")
    assert (status, simulated) == (200, real)


def test_simcloud_aggregate_create_has_nova_s_shape(real_nova,
                                                    simcloud_factory):
    sim = simcloud_factory()
    name = f"shape-{real_nova.fresh_host('cap')}"
    status, real = real_nova.nova("POST", "/os-aggregates",
                                  {"aggregate": {"name": name}},
                                  microversion="2.41")
    assert status == 200
    response = testing.request(sim, "POST", "/os-aggregates",
                               version="2.41",
                               json={"aggregate": {"name": name}})
    assert response.status_code == 200
    assert shape(response.json()) == shape(real)
