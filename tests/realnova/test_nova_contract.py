"""The Nova behaviours instance-ha's actions rely on, written once and run
against real Nova 34 and against the simulated cloud.  The simulated
cloud carries the demo, the chaos suite and the benchmarks: it must pass
every case real Nova passes.  A case the simulator cannot model says so
with a skip that names why."""

import time

import pytest
from clouds import RealCloud
from clouds import SimCloud


@pytest.fixture(params=["simcloud", "real-nova"])
def cloud(request, simcloud_factory):
    if request.param == "simcloud":
        return SimCloud(simcloud_factory)
    return RealCloud(request.getfixturevalue("real_nova"))


def dead_host_with(cloud, state="active", others=1, **server):
    """A server in ``state`` on a host that died and was forced down, and
    ``others`` live hosts to evacuate to: (server id, host, others)."""
    source, *targets = cloud.fresh_hosts(1 + others)
    server_id = cloud.create_server(source, state, **server)
    cloud.crash(source)
    cloud.force_down(source)
    return server_id, source, targets


def host_of(server):
    return server["OS-EXT-SRV-ATTR:host"]


def test_evacuate_from_a_live_host_is_refused(cloud):
    source, _ = cloud.fresh_hosts(2)
    server_id = cloud.create_server(source)
    status, body = cloud.evacuate(server_id)
    assert status == 400
    assert body["badRequest"]["message"] == \
        f"Compute service of {source} is still in use."
    # Disabled, not forced down, with heartbeats: still in use.
    cloud.update_service(source, status="disabled", disabled_reason="x")
    assert cloud.evacuate(server_id)[0] == 400
    assert host_of(cloud.server(server_id)) == source


def test_evacuate_answers_200_without_a_body_and_moves_an_active_server(
        cloud):
    server_id, source, _ = dead_host_with(cloud)
    status, body = cloud.evacuate(server_id, "2.94")
    assert (status, body) == (200, None)
    migration = cloud.wait_evacuation(server_id)
    assert migration["status"] == "done"
    assert migration["source_compute"] == source
    server = cloud.wait_server(server_id, status="ACTIVE")
    assert host_of(server) == migration["dest_compute"] != source
    assert server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-STS:power_state"] == 1


def test_from_2_95_an_evacuated_active_server_comes_back_stopped(cloud):
    server_id, source, _ = dead_host_with(cloud)
    assert cloud.evacuate(server_id, "2.95")[0] == 200
    assert cloud.wait_evacuation(server_id)["status"] == "done"
    server = cloud.wait_server(server_id, status="SHUTOFF")
    assert host_of(server) != source


def test_a_server_in_error_comes_back_active_even_at_2_95(cloud):
    """Nova 34 ignores the 2.95 target state for vm_state error
    (_do_rebuild_instance: target_state and orig_vm_state != ERROR)."""
    server_id, source, _ = dead_host_with(cloud, "stopped")
    status, _ = cloud.nova("POST", f"/servers/{server_id}/action",
                           {"os-resetState": {"state": "error"}})
    assert status == 202
    assert cloud.evacuate(server_id, "2.95")[0] == 200
    assert cloud.wait_evacuation(server_id)["status"] == "done"
    server = cloud.wait_server(server_id, **{"OS-EXT-STS:task_state": None})
    assert (server["status"], server["OS-EXT-STS:power_state"]) == \
        ("ACTIVE", 1)
    assert host_of(server) != source


def test_a_stopped_server_comes_back_stopped_below_2_95(cloud):
    server_id, source, _ = dead_host_with(cloud, "stopped")
    assert cloud.evacuate(server_id, "2.94")[0] == 200
    assert cloud.wait_evacuation(server_id)["status"] == "done"
    server = cloud.wait_server(server_id, status="SHUTOFF",
                               **{"OS-EXT-STS:task_state": None})
    assert host_of(server) != source
    assert server["OS-EXT-STS:power_state"] == 4


def test_reset_state_keeps_the_power_state(cloud):
    source, = cloud.fresh_hosts(1)
    running = cloud.create_server(source)
    stopped = cloud.create_server(source, "stopped")
    for server_id, power in ((running, 1), (stopped, 4)):
        assert cloud.nova("POST", f"/servers/{server_id}/action",
                          {"os-resetState": {"state": "error"}})[0] == 202
        server = cloud.server(server_id)
        assert (server["status"], server["OS-EXT-STS:power_state"]) == \
            ("ERROR", power)


@pytest.mark.parametrize("state, vm_state, power_state", [
    ("paused", "paused", 1),
    ("suspended", "suspended", 1),
    ("rescued", "rescued", 4),
    ("resized", "resized", 1),
    ("resized_stopped", "resized", 4),
])
def test_states_nova_will_not_evacuate(cloud, state, vm_state,
                                       power_state):
    """Each answers 409 to evacuate.  The power state, on the fake driver:
    its pause and suspend leave it running (1), Nova powers a guest off
    before the driver's rescue (4), a resize keeps a stopped server off
    (4): the state table reads it for resized servers."""
    server_id, source, _ = dead_host_with(cloud, state)
    server = cloud.server(server_id)
    assert (server["OS-EXT-STS:vm_state"],
            server["OS-EXT-STS:power_state"]) == (vm_state, power_state)
    status, body = cloud.evacuate(server_id)
    assert status == 409, body
    assert f"in vm_state {vm_state}" in body["conflictingRequest"]["message"]
    assert host_of(cloud.server(server_id)) == source


def test_the_host_moves_before_the_migration_is_done(cloud):
    """What recover_servers' wait relies on (it reads the host's
    evacuations, then the server): once a read shows the evacuation
    migration done, every later read of the server shows the new host.
    A read of the server before that can show task_state None on the
    source host (not asserted: it depends on when the reads fall)."""
    server_id, source, _ = dead_host_with(cloud)
    assert cloud.evacuate(server_id)[0] == 200
    deadline = time.monotonic() + 60
    while True:
        done = [m for m in cloud.evacuations(server_id)
                if m["status"] == "done"]
        server = cloud.server(server_id)
        if done:
            break
        assert time.monotonic() < deadline
    assert host_of(server) == done[-1]["dest_compute"] != source


def test_no_valid_host_leaves_the_server_in_error_on_the_source(cloud):
    server_id, source, _ = dead_host_with(cloud, "stopped")
    enabled = [s["host"] for s in map(cloud.service, cloud.compute_hosts())
               if s["host"] != source and s["status"] == "enabled"]
    for host in enabled:
        cloud.update_service(host, status="disabled",
                             disabled_reason="contract test")
    try:
        assert cloud.evacuate(server_id) == (200, None)
        migration = cloud.wait_evacuation(server_id)
        server = cloud.wait_server(server_id, status="ERROR")
    finally:
        for host in enabled:
            cloud.update_service(host, status="enabled")
    assert migration["status"] == "error"
    assert host_of(server) == source
    assert server["OS-EXT-STS:task_state"] is None
    # Only vm_state changes: the power state still says it was stopped.
    assert server["OS-EXT-STS:power_state"] == 4
    assert "No valid host" in server["fault"]["message"]
    # Evacuating again from error is allowed.
    assert cloud.evacuate(server_id)[0] == 200
    assert cloud.wait_evacuation(server_id)["status"] == "done"
    server = cloud.wait_server(server_id, **{"OS-EXT-STS:task_state": None})
    assert (server["status"], host_of(server) != source) == ("ACTIVE", True)


def test_a_service_update_moves_updated_at(cloud):
    """host_servers dates a failed evacuation against the service's
    updated_at: forcing the service down must move it."""
    source, = cloud.fresh_hosts(1)
    deadline = time.monotonic() + 60
    while cloud.service(source)["updated_at"] is None:
        # A new service has none until its first heartbeat.
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cloud.crash(source)
    before = cloud.service(source)["updated_at"]
    time.sleep(1.1)
    cloud.force_down(source)
    after = cloud.service(source)
    assert after["forced_down"] is True
    assert after["updated_at"] > before


def test_migrations_filter_by_source_compute_and_type(cloud):
    server_id, source, _ = dead_host_with(cloud)
    assert cloud.evacuate(server_id)[0] == 200
    cloud.wait_evacuation(server_id)
    status, body = cloud.nova(
        "GET", f"/os-migrations?source_compute={source}"
               "&migration_type=evacuation", microversion="2.59")
    assert status == 200
    assert [m["instance_uuid"] for m in body["migrations"]] == [server_id]
    status, body = cloud.nova(
        "GET", f"/os-migrations?source_compute={source}"
               "&migration_type=live-migration", microversion="2.59")
    assert (status, body["migrations"]) == (200, [])


def test_force_up_waits_for_the_restart_of_the_compute(cloud):
    server_id, source, _ = dead_host_with(cloud)
    assert cloud.evacuate(server_id)[0] == 200
    assert cloud.wait_evacuation(server_id)["status"] == "done"
    status, body = cloud.update_service(source, forced_down=False)
    assert status == 400
    assert "`done` evacuation migration records remain" in \
        body["badRequest"]["message"]
    cloud.restart(source)
    deadline = time.monotonic() + 60
    while cloud.evacuations(server_id)[-1]["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert cloud.update_service(source, forced_down=False)[0] == 200


def test_a_member_host_filter_is_ignored(cloud):
    """Nova answers a non-admin's host= with every server of the
    project: host_servers lists as admin and checks each host itself."""
    first, second = cloud.fresh_hosts(2)
    mine = {cloud.create_server(first), cloud.create_server(second)}
    status, body = cloud.nova("GET", f"/servers/detail?host={first}",
                              admin=False)
    assert status == 200
    assert mine <= {s["id"] for s in body["servers"]}
    status, body = cloud.nova(
        "GET", f"/servers/detail?host={first}&all_tenants=1")
    assert status == 200
    assert {s["id"] for s in body["servers"]} & mine == \
        {s for s in mine if host_of(cloud.server(s)) == first}


def test_an_admin_evacuates_a_server_its_owner_locked(cloud):
    server_id, source, _ = dead_host_with(cloud,
                                          lock_reason="owner's hold")
    server = cloud.server(server_id, "2.73")
    assert (server["locked"], server["locked_reason"]) == \
        (True, "owner's hold")
    assert cloud.evacuate(server_id)[0] == 200
    assert cloud.wait_evacuation(server_id)["status"] == "done"
    server = cloud.wait_server(server_id, status="ACTIVE")
    assert host_of(server) != source
    assert server["locked"] is True


# Nova's default policy: what only an admin may do, asked by a member
# (reader, member) of the server's own project.
ADMIN_ONLY = [
    ("os_compute_api:os-aggregates:index", "GET", "/os-aggregates", None,
     None),
    ("os_compute_api:os-services:list", "GET", "/os-services", None, None),
    ("os_compute_api:os-services:update", "PUT", "/os-services/{service}",
     {"forced_down": True}, "2.53"),
    ("os_compute_api:servers:detail:get_all_tenants", "GET",
     "/servers/detail?all_tenants=1", None, None),
    ("os_compute_api:os-migrations:index", "GET", "/os-migrations", None,
     "2.59"),
    ("os_compute_api:os-hypervisors:list-detail", "GET",
     "/os-hypervisors/detail", None, "2.53"),
    ("os_compute_api:os-evacuate", "POST", "/servers/{server}/action",
     {"evacuate": {}}, "2.95"),
    ("os_compute_api:os-admin-actions:reset_state", "POST",
     "/servers/{server}/action", {"os-resetState": {"state": "active"}},
     None),
]


@pytest.mark.parametrize("policy,method,path,body,microversion",
                         ADMIN_ONLY, ids=[p[0] for p in ADMIN_ONLY])
def test_a_member_is_refused_what_only_an_admin_may_do(
        cloud, policy, method, path, body, microversion):
    source, = cloud.fresh_hosts(1)
    server_id = cloud.create_server(source)
    target = path.format(server=server_id,
                         service=cloud.service(source)["id"])
    status, answer = cloud.nova(method, target, body,
                                microversion=microversion, admin=False)
    assert (status, answer) == (403, {"forbidden": {
        "code": 403,
        "message": f"Policy doesn't allow {policy} to be performed."}})
    server = cloud.server(server_id)
    assert (host_of(server), server["status"]) == (source, "ACTIVE")
    assert cloud.service(source)["forced_down"] is False
