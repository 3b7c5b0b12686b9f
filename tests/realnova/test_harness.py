"""The real-Nova harness: what its control API sets up is what real Nova
34 then says, over HTTP, to novaclient and to instance_ha's own client."""

import time

import pytest
import realnova

from instance_ha import cloud_session
from instance_ha import nova_client

HA = {"HA_Enabled": "True"}

# state -> (status, vm_state, power_state) Nova reports once it is reached.
# power_state: 1 running, 4 shutdown.  The fake virt driver leaves a
# paused or suspended VM running (libvirt would not); it shuts a rescued
# VM down.
STATES = {
    "active": ("ACTIVE", "active", 1),
    "stopped": ("SHUTOFF", "stopped", 4),
    "paused": ("PAUSED", "paused", 1),
    "suspended": ("SUSPENDED", "suspended", 1),
    "rescued": ("RESCUE", "rescued", 4),
    "shelved_offloaded": ("SHELVED_OFFLOADED", "shelved_offloaded", 4),
    "error": ("ERROR", "error", 1),
    "resized": ("VERIFY_RESIZE", "resized", 1),
    "resized_stopped": ("VERIFY_RESIZE", "resized", 4),
    "locked": ("ACTIVE", "active", 1),
}


def view(server):
    return (server["status"], server["OS-EXT-STS:vm_state"],
            server["OS-EXT-STS:power_state"])


@pytest.fixture
def admin_nova(nova_cloud, tmp_path, monkeypatch):
    """instance_ha.nova_client.Nova on the realnova cloud, as an action
    builds it: clouds.yaml named by OS_CLOUD / OS_CLIENT_CONFIG_FILE."""
    clouds = nova_cloud.write_clouds_yaml(str(tmp_path / "clouds.yaml"))
    for key, value in nova_cloud.cloud_env(clouds).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(cloud_session.CLOUD_VARIABLE, raising=False)
    cloud_session.clear_cache()
    nova_client.clear_negotiated()
    yield nova_client.Nova(cloud_session.get(None))
    cloud_session.clear_cache()
    nova_client.clear_negotiated()


def test_active_server_on_named_host(nova_cloud):
    created = nova_cloud.create_server("compute1", metadata=HA,
                                       project="tenant-a", name="vm1")
    server = nova_cloud.server(created["id"])
    assert view(server) == ("ACTIVE", "active", 1)
    assert server["OS-EXT-SRV-ATTR:host"] == "compute1"
    assert server["OS-EXT-STS:task_state"] is None
    assert server["metadata"] == HA
    assert server["tenant_id"] == "tenant-a"
    assert server["name"] == "vm1"
    assert created["server"]["id"] == created["id"]


@pytest.mark.parametrize("state", sorted(STATES))
def test_each_state_is_what_nova_reports(nova_cloud, state):
    created = nova_cloud.create_server("compute2", state=state, metadata=HA)
    server = nova_cloud.server(created["id"])
    assert view(server) == STATES[state]
    assert server["OS-EXT-STS:task_state"] is None
    # Shelved and offloaded: on no host any more.
    expected_host = None if state == "shelved_offloaded" else "compute2"
    assert server["OS-EXT-SRV-ATTR:host"] == expected_host
    if state == "locked":
        assert server["locked"] is True
    if state.startswith("resized"):
        status, body = nova_cloud.nova(
            "GET", f"/os-migrations?instance_uuid={created['id']}",
            microversion="2.59")
        assert status == 200
        (migration,) = body["migrations"]
        assert migration["migration_type"] == "resize"
        assert migration["status"] == "finished"
        assert migration["source_compute"] == "compute2"
        assert migration["dest_compute"] == "compute2"
        # Every host enabled again after the resize in place.
        assert {h["status"] for h in nova_cloud.hosts()} == {"enabled"}


def test_locked_by_another_user_with_reason(nova_cloud):
    created = nova_cloud.create_server(
        "compute3", state="stopped", project="tenant-b",
        lock={"reason": "maintenance window", "by": "owner"})
    server = nova_cloud.server(created["id"])
    assert server["locked"] is True
    assert server["locked_reason"] == "maintenance window"
    assert server["user_id"] == "admin"
    # Another project's member does not even see it.
    status, _ = nova_cloud.nova("GET", f"/servers/{created['id']}",
                                token="member:tenant-c")
    assert status == 404


def test_unknown_state_and_host_are_refused(nova_cloud):
    with pytest.raises(realnova.ControlError) as bad_state:
        nova_cloud.create_server("compute1", state="hibernated")
    assert bad_state.value.status == 400
    with pytest.raises(realnova.ControlError) as bad_host:
        nova_cloud.create_server("nohost")
    assert bad_host.value.status == 400


def test_tokens_and_roles(nova_cloud):
    assert nova_cloud.nova("GET", "/servers", token=None)[0] == 401
    assert nova_cloud.nova("GET", "/servers", token="root:x")[0] == 401
    assert nova_cloud.nova("GET", "/servers", token="admin:")[0] == 401
    # Version documents need no token.
    status, body = nova_cloud.nova("GET", "", token=None)
    assert status == 200 and body["version"]["id"] == "v2.1"
    assert body["version"]["version"] == "2.104"
    # Nova's real policy: a member may not list services or force down.
    status, body = nova_cloud.nova("GET", "/os-services",
                                   token="member:demo")
    assert status == 403, body
    status, _ = nova_cloud.nova("GET", "/os-services")
    assert status == 200


def test_non_admin_host_filter_is_ignored(nova_cloud):
    """Nova ignores a member's host= filter, silently."""
    on1 = nova_cloud.create_server("compute1", project="tenant-d")
    on2 = nova_cloud.create_server("compute2", project="tenant-d")
    status, body = nova_cloud.nova("GET", "/servers/detail?host=compute1",
                                   token="member:tenant-d")
    assert status == 200
    assert {s["id"] for s in body["servers"]} == {on1["id"], on2["id"]}
    status, body = nova_cloud.nova(
        "GET", "/servers/detail?host=compute1&all_tenants=1")
    assert {s["id"] for s in body["servers"]} == {on1["id"]}


def test_request_log(nova_cloud):
    nova_cloud.clear_requests()
    nova_cloud.nova("GET", "/servers/detail?all_tenants=1",
                    microversion="2.94")
    nova_cloud.nova("GET", "/os-services", token="member:demo")
    nova_cloud.nova("GET", "/flavors", token=None)
    first, second, third = nova_cloud.requests()
    assert (first["method"], first["path"], first["status"],
            first["microversion"], first["project"]) == (
        "GET", "/v2.1/servers/detail?all_tenants=1", 200, "2.94", "admin")
    assert (second["status"], second["project"], second["user"]) == (
        403, "demo", "member")
    assert (third["status"], third["project"]) == (401, None)
    assert nova_cloud.requests(since=second["seq"]) == [third]
    nova_cloud.clear_requests()
    assert nova_cloud.requests() == []


def test_crash_then_restart(nova_cloud):
    host = nova_cloud.fresh_host("crash")
    created = nova_cloud.create_server(host, metadata=HA)
    assert nova_cloud.service(host)["state"] == "up"
    crashed = nova_cloud.crash(host)
    assert crashed["running"] is False
    waited = nova_cloud.wait_service_state(host, "down")
    # Seen down within service_down_time of its last heartbeat.
    assert waited <= (nova_cloud.service_down_time
                      + 2 * nova_cloud.report_interval + 2)
    service = nova_cloud.service(host)
    assert service["status"] == "enabled"
    assert service["forced_down"] is False
    # A dead host's VM: still defined there, and Nova still says ACTIVE.
    assert nova_cloud.host(host)["driver_instances"] == 1
    server = nova_cloud.server(created["id"])
    assert view(server) == ("ACTIVE", "active", 1)
    assert server["OS-EXT-SRV-ATTR:host"] == host
    # Nothing can be created on a crashed host.
    with pytest.raises(realnova.ControlError):
        nova_cloud.create_server(host)
    restarted = nova_cloud.restart(host)
    assert restarted["running"] is True
    assert restarted["state"] == "up"
    assert nova_cloud.service(host)["state"] == "up"
    assert view(nova_cloud.server(created["id"])) == ("ACTIVE", "active", 1)


def test_instance_ha_client_reads_clouds_yaml(nova_cloud, admin_nova):
    created = nova_cloud.create_server("compute1", metadata=HA)
    nova_cloud.create_server("compute2", state="stopped")
    # min(Nova 34's 2.104, python-novaclient's maximum)
    assert admin_nova.version() >= nova_client.V("2.95")
    client = admin_nova.client()
    on1 = client.servers.list(search_opts={"all_tenants": 1,
                                           "host": "compute1"})
    assert [s.id for s in on1] == [created["id"]]
    assert admin_nova.server(created["id"])["metadata"] == HA
    service = admin_nova.compute_service("compute1")
    assert (service["state"], service["status"]) == ("up", "enabled")
    paths = [r["path"] for r in nova_cloud.requests()]
    assert "/v2.1/servers/detail?all_tenants=1&host=compute1" in paths


def test_delete_servers_and_reset(nova_cloud):
    nova_cloud.create_server("compute1")
    nova_cloud.create_server("compute3", state="locked")
    assert len(nova_cloud.servers()) == 2
    assert len(nova_cloud.delete_servers()) == 2
    assert nova_cloud.servers() == []
    assert all(h["driver_instances"] == 0 for h in nova_cloud.hosts())


def test_mistral_actions_act_on_real_nova(nova_cloud, realnova_mistral):
    """The session's Mistral runs the pack's actions against this Nova:
    instance_ha.host_servers lists a crashed host's servers as Nova
    reports them."""
    host = nova_cloud.fresh_host("listed")
    active = nova_cloud.create_server(host, metadata=HA)
    stopped = nova_cloud.create_server(host, state="stopped")
    nova_cloud.create_server("compute1")
    nova_cloud.crash(host)
    nova_cloud.clear_requests()
    execution, output = realnova_mistral.run_action(
        "instance_ha.host_servers", {"search_opts": {"host": host}})
    assert execution.state == "SUCCESS", output
    listed = {s["id"]: s for s in output["result"]["servers"]}
    assert set(listed) == {active["id"], stopped["id"]}
    seen = [(r["method"], r["project"], r["status"])
            for r in nova_cloud.requests()]
    assert ("GET", "admin", 200) in seen
    assert all(method == "GET" for method, _, _ in seen)


def test_restart_after_an_evacuation_and_reset(nova_cloud):
    """A host that died and was evacuated: Nova refuses to force it up
    until its compute restarted; the restart (init_host) removes the
    evacuated VM from the host's hypervisor; reset brings it all back."""
    source = nova_cloud.fresh_host("evacuated")
    created = nova_cloud.create_server(source, metadata=HA)
    nova_cloud.crash(source)
    service = nova_cloud.service(source)
    status, _ = nova_cloud.nova("PUT", f"/os-services/{service['id']}",
                                {"forced_down": True}, microversion="2.53")
    assert status == 200
    status, body = nova_cloud.nova(
        "POST", f"/servers/{created['id']}/action", {"evacuate": {}},
        microversion="2.94")
    assert (status, body) == (200, None)
    server = nova_cloud.wait_server(created["id"], status="ACTIVE",
                                    **{"OS-EXT-STS:task_state": None})
    deadline = time.monotonic() + 30
    while True:
        _, body = nova_cloud.nova(
            "GET", f"/os-migrations?instance_uuid={created['id']}",
            microversion="2.59")
        if body["migrations"][0]["status"] == "done":
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    server = nova_cloud.server(created["id"])
    assert server["OS-EXT-SRV-ATTR:host"] != source
    assert nova_cloud.host(source)["driver_instances"] == 1
    status, body = nova_cloud.nova("PUT", f"/os-services/{service['id']}",
                                   {"forced_down": False},
                                   microversion="2.53")
    assert status == 400, body
    assert "Ensure the compute service has been restarted" in \
        body["badRequest"]["message"]
    nova_cloud.reset()
    host = nova_cloud.host(source)
    assert (host["running"], host["state"], host["forced_down"],
            host["status"]) == (True, "up", False, "enabled")
    assert host["driver_instances"] == 0
    assert nova_cloud.servers() == []
    assert all(h["state"] == "up" for h in nova_cloud.hosts())
