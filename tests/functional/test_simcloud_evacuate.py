"""Evacuation on the simulated cloud, row by row against what Nova 34
does (doc/simulated-cloud.rst), through python-novaclient over HTTP."""

import pytest
from novaclient import exceptions as nova_exc

from instance_ha.simcloud import testing


def on_host(nova, host):
    return sorted(nova.servers.list(search_opts={"all_tenants": True,
                                                 "host": host}),
                  key=lambda s: s.name)


def attr(server, name):
    return getattr(server, name)


def force_down(sim, host):
    """The 2.53 form, whatever microversion the test uses for the rest."""
    nova = testing.nova(sim, "2.53")
    service = nova.services.list(host=host, binary="nova-compute")[0]
    nova.services.force_down(service.id, True)
    return service


def evacuation_migrations(nova, server_id):
    return nova.migrations.list(instance_uuid=server_id,
                                migration_type="evacuation")


def wait_finished(nova, server_id, count=1):
    """As the reference says: wait for the evacuation migration to reach
    done/failed/error, then re-read the server."""
    def finished():
        migrations = evacuation_migrations(nova, server_id)
        ended = [m for m in migrations
                 if m.status in ("done", "failed", "error")]
        return ended if len(ended) >= count else None

    migrations = testing.wait_for(finished)
    return nova.servers.get(server_id), migrations


def test_source_compute_up_is_refused(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    with pytest.raises(nova_exc.BadRequest) as error:
        nova.servers.evacuate(server)
    assert error.value.code == 400
    assert error.value.message == \
        "Compute service of compute1 is still in use."


def test_source_only_disabled_is_refused(simcloud):
    nova = testing.nova(simcloud)
    service = nova.services.list(host="compute1", binary="nova-compute")[0]
    nova.services.disable_log_reason(service.id, "maintenance")
    server = on_host(nova, "compute1")[0]
    with pytest.raises(nova_exc.BadRequest) as error:
        nova.servers.evacuate(server)
    assert error.value.message == \
        "Compute service of compute1 is still in use."


def test_accepted_evacuation_moves_the_server(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    response, body = nova.servers.evacuate(server)
    assert response.status_code == 200
    assert body is None
    server, migrations = wait_finished(nova, server.id)
    assert [m.status for m in migrations] == ["done"]
    assert migrations[0].source_compute == "compute1"
    assert migrations[0].dest_compute == server.to_dict()[
        "OS-EXT-SRV-ATTR:host"]
    assert attr(server, "OS-EXT-SRV-ATTR:host") in ("compute2", "compute3")
    assert attr(server, "OS-EXT-SRV-ATTR:hypervisor_hostname") == \
        attr(server, "OS-EXT-SRV-ATTR:host")
    assert server.status == "ACTIVE"
    assert attr(server, "OS-EXT-STS:task_state") is None
    assert attr(server, "OS-EXT-STS:power_state") == 1


def test_re_evacuating_a_server_on_a_running_host_is_refused(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    nova.servers.evacuate(server, host="compute3")
    server, _ = wait_finished(nova, server.id)
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute3"
    with pytest.raises(nova_exc.BadRequest) as error:
        nova.servers.evacuate(server)
    assert error.value.message == \
        "Compute service of compute3 is still in use."


def test_target_host_same_as_source(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    with pytest.raises(nova_exc.BadRequest) as error:
        nova.servers.evacuate(server, host="compute1")
    assert error.value.message == "The target host can't be the same one."


def test_unknown_target_host(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    with pytest.raises(nova_exc.NotFound) as error:
        nova.servers.evacuate(server, host="nohost")
    assert error.value.code == 404
    assert error.value.message == "Compute host nohost not found."


def test_force_without_host_at_2_29(simcloud):
    nova = testing.nova(simcloud, "2.29")
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    with pytest.raises(nova_exc.BadRequest) as error:
        nova.servers.evacuate(server, force=True)
    assert error.value.message == "Can't force to a non-provided destination"


def test_unknown_server(simcloud):
    nova = testing.nova(simcloud)
    missing = "9d2e8c9a-0000-4000-8000-000000000000"
    with pytest.raises(nova_exc.NotFound) as error:
        nova.servers.evacuate(missing)
    assert error.value.message == f"Instance {missing} could not be found."


def test_non_admin_evacuate_is_forbidden(simcloud):
    admin = testing.nova(simcloud)
    force_down(simcloud, "compute1")
    user = testing.nova(simcloud, admin=False)
    server = on_host(admin, "compute1")[0]
    with pytest.raises(nova_exc.Forbidden) as error:
        user.servers.evacuate(server.id)
    assert error.value.code == 403
    assert error.value.message == \
        "Policy doesn't allow os_compute_api:os-evacuate to be performed."


def test_resized_server_is_refused_with_conflict(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    with simcloud.cloud.lock:
        simcloud.cloud.servers[server.id].vm_state = "resized"
    force_down(simcloud, "compute1")
    with pytest.raises(nova_exc.Conflict) as error:
        nova.servers.evacuate(server)
    assert error.value.code == 409
    assert error.value.message == (
        f"Cannot 'evacuate' instance {server.id} while it is in vm_state "
        "resized")
    # The state table's way out: reset to error, then evacuate.
    nova.servers.reset_state(server, "error")
    nova.servers.evacuate(server)
    server, _ = wait_finished(nova, server.id)
    assert server.status == "ACTIVE"


def test_body_before_2_14_carries_admin_pass(simcloud):
    nova = testing.nova(simcloud, "2.11")
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    response = testing.request(
        simcloud, "POST", f"/servers/{server.id}/action", version="2.11",
        json={"evacuate": {"onSharedStorage": False}})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["adminPass"] and body["adminPass"]


def test_on_shared_storage_only_below_2_14(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    response = testing.request(
        simcloud, "POST", f"/servers/{server.id}/action", version="2.14",
        json={"evacuate": {"onSharedStorage": False}})
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": (
        "Invalid input for field/attribute evacuate. Value: "
        "{'onSharedStorage': False}. Additional properties are not allowed "
        "('onSharedStorage' was unexpected)")}}
    response = testing.request(
        simcloud, "POST", f"/servers/{server.id}/action", version="2.13",
        json={"evacuate": {"onSharedStorage": True, "adminPass": "x"}})
    assert response.json()["badRequest"]["message"] == \
        "admin password can't be changed on existing disk"
    response = testing.request(
        simcloud, "POST", f"/servers/{server.id}/action", version="2.13",
        json={"evacuate": {}})
    assert response.status_code == 400
    assert "'onSharedStorage' is a required property" in \
        response.json()["badRequest"]["message"]


def test_force_exists_from_2_29_to_2_67(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    for version in ("2.28", "2.68"):
        response = testing.request(
            simcloud, "POST", f"/servers/{server.id}/action",
            version=version,
            json={"evacuate": {"host": "compute2", "force": True}})
        assert response.status_code == 400, version
        assert "('force' was unexpected)" in \
            response.json()["badRequest"]["message"]
    # Forced, the disabled host is taken as given (no scheduler).
    service = nova.services.list(host="compute2", binary="nova-compute")[0]
    nova.services.disable(service.id)
    nova_229 = testing.nova(simcloud, "2.29")
    nova_229.servers.evacuate(server, host="compute2", force=True)
    server, _ = wait_finished(nova, server.id)
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute2"


def test_requested_host_goes_through_the_scheduler(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    service = nova.services.list(host="compute2", binary="nova-compute")[0]
    nova.services.disable(service.id)
    nova.servers.evacuate(server, host="compute2")
    server, migrations = wait_finished(nova, server.id)
    assert server.status == "ERROR"
    assert migrations[0].status == "error"
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute1"


@pytest.mark.parametrize("version, vm_state, expected", [
    ("2.94", "active", "ACTIVE"),
    ("2.94", "stopped", "SHUTOFF"),
    ("2.95", "active", "SHUTOFF"),
    ("2.96", "active", "SHUTOFF"),
    ("2.96", "stopped", "SHUTOFF"),
])
def test_final_state_by_microversion(simcloud_factory, version, vm_state,
                                     expected):
    config = testing.small_topology(hosts=2, vms_per_host=1)
    config["hosts"][0]["servers"][0]["vm_state"] = vm_state
    sim = simcloud_factory(config)
    nova = testing.nova(sim, version)
    server = on_host(nova, "compute1")[0]
    force_down(sim, "compute1")
    nova.servers.evacuate(server)
    server, _ = wait_finished(nova, server.id)
    assert server.status == expected
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute2"
    power = {"ACTIVE": 1, "SHUTOFF": 4}[expected]
    assert attr(server, "OS-EXT-STS:power_state") == power


def test_task_state_clears_before_host_then_migration(simcloud_factory):
    # 2 s: each step is at least 0.2 s apart, ample for polling.
    config = testing.small_topology(hosts=2, vms_per_host=1,
                                    evacuation_time=2.0)
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    server = on_host(nova, "compute1")[0]
    force_down(sim, "compute1")
    nova.servers.evacuate(server)
    seen = []

    def observe():
        # The migration first: read after the server, a done migration
        # can stand beside the old host (Nova moves the host, then marks
        # the migration done).
        migration = evacuation_migrations(nova, server.id)[0]
        current = nova.servers.get(server.id)
        state = (current.status, attr(current, "OS-EXT-STS:task_state"),
                 attr(current, "OS-EXT-SRV-ATTR:host"), migration.status)
        if not seen or seen[-1] != state:
            seen.append(state)
        return migration.status == "done"

    testing.wait_for(observe, interval=0.005)
    assert seen[0] == ("REBUILD", "rebuilding", "compute1", "accepted")
    assert ("REBUILD", "rebuild_spawning", "compute1", "pre-migrating") \
        in seen
    # Nova 34: vm_state active and no task while the host is the source;
    # then the host moves and the migration is marked done right after.
    cleared = seen.index(("ACTIVE", None, "compute1", "pre-migrating"))
    assert cleared < seen.index(("ACTIVE", None, "compute2", "done"))
    assert ("ACTIVE", None, "compute1", "done") not in seen


@pytest.mark.parametrize("race_outcome", ["error", "active"])
def test_second_evacuate_while_rebuilding_is_accepted_and_races(
        simcloud_factory, race_outcome):
    config = testing.small_topology(hosts=3, vms_per_host=1,
                                    evacuation_time=1.0)
    config["settings"]["race_outcome"] = race_outcome
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    server = on_host(nova, "compute1")[0]
    force_down(sim, "compute1")
    nova.servers.evacuate(server)
    assert attr(nova.servers.get(server.id),
                "OS-EXT-STS:task_state") == "rebuilding"
    response, _ = nova.servers.evacuate(server)
    assert response.status_code == 200
    testing.wait_for(lambda: any(
        m.status == "done" for m in evacuation_migrations(nova, server.id)))
    statuses = sorted(m.status
                      for m in evacuation_migrations(nova, server.id))
    assert statuses == ["accepted", "done"]
    server = nova.servers.get(server.id)
    if race_outcome == "error":
        assert server.status == "ERROR"
        assert server.fault["message"] == (
            f"Instance {attr(server, 'OS-EXT-SRV-ATTR:instance_name')} "
            "already exists.")
    else:
        assert server.status == "ACTIVE"
    assert sim.cloud.calls.accepted_evacuations() == {server.id: 2}


def test_no_valid_host_ends_in_error_and_can_be_retried(simcloud_factory):
    config = testing.small_topology(hosts=2, vms_per_host=1)
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    server = on_host(nova, "compute1")[0]
    force_down(sim, "compute1")
    other = nova.services.list(host="compute2", binary="nova-compute")[0]
    nova.services.disable(other.id)
    response, _ = nova.servers.evacuate(server)
    assert response.status_code == 200
    server, migrations = wait_finished(nova, server.id)
    assert [m.status for m in migrations] == ["error"]
    assert server.status == "ERROR"
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute1"
    assert server.fault["message"].startswith("No valid host was found.")
    # Evacuating again from ERROR is allowed.
    nova.services.enable(other.id)
    nova.servers.evacuate(server)
    server, migrations = wait_finished(nova, server.id, count=2)
    assert server.status == "ACTIVE"
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute2"
    assert "fault" not in server.to_dict()


def test_no_room_means_no_valid_host(simcloud_factory):
    config = testing.small_topology(hosts=2, vms_per_host=1)
    config["hosts"][1]["memory_mb"] = 4096
    config["hosts"][1]["servers"] = [{"name": "big", "metadata": {}}]
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    first = on_host(nova, "compute1")[0]
    force_down(sim, "compute1")
    nova.servers.evacuate(first)
    server, _ = wait_finished(nova, first.id)
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute2"
    # compute2 (4096 MB) now holds two 2048 MB servers: full.
    sim.cloud.add_server("late", "compute1")
    late = on_host(nova, "compute1")[0]
    nova.servers.evacuate(late)
    late, migrations = wait_finished(nova, late.id)
    assert late.status == "ERROR"
    assert migrations[0].status == "error"


def test_killed_host_is_down_without_force_down(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    simcloud.cloud.kill_host("compute1")
    service = nova.services.list(host="compute1", binary="nova-compute")[0]
    assert (service.state, service.forced_down) == ("down", False)
    nova.servers.evacuate(server)
    server, _ = wait_finished(nova, server.id)
    assert server.status == "ACTIVE"
    assert attr(server, "OS-EXT-SRV-ATTR:host") != "compute1"


def test_heartbeat_grace_of_service_down_time(simcloud_factory):
    config = testing.small_topology(hosts=2, vms_per_host=1)
    config["settings"]["service_down_time"] = 1.0
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    server = on_host(nova, "compute1")[0]
    sim.cloud.kill_host("compute1")
    with pytest.raises(nova_exc.BadRequest):
        nova.servers.evacuate(server)
    testing.wait_for(lambda: nova.services.list(
        host="compute1", binary="nova-compute")[0].state == "down")
    nova.servers.evacuate(server)
    server, _ = wait_finished(nova, server.id)
    assert server.status == "ACTIVE"


def test_stopped_and_error_servers(simcloud_factory):
    config = testing.small_topology(hosts=2, vms_per_host=2)
    config["hosts"][0]["servers"][0]["vm_state"] = "stopped"
    config["hosts"][0]["servers"][1]["vm_state"] = "error"
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    stopped, error = on_host(nova, "compute1")
    assert (stopped.status, error.status) == ("SHUTOFF", "ERROR")
    force_down(sim, "compute1")
    for server in (stopped, error):
        nova.servers.evacuate(server)
    assert wait_finished(nova, stopped.id)[0].status == "SHUTOFF"
    assert wait_finished(nova, error.id)[0].status == "ACTIVE"


def test_injected_rebuild_failure(simcloud):
    nova = testing.nova(simcloud)
    server = on_host(nova, "compute1")[0]
    simcloud.cloud.faults.add("evacuate", server=server.name,
                              outcome="error")
    force_down(simcloud, "compute1")
    response, _ = nova.servers.evacuate(server)
    assert response.status_code == 200
    server, migrations = wait_finished(nova, server.id)
    assert [m.status for m in migrations] == ["failed"]
    assert server.status == "ERROR"
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute1"


def test_forced_onto_a_dead_host_waits_for_it(simcloud):
    nova = testing.nova(simcloud, "2.29")
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    simcloud.cloud.kill_host("compute2")
    nova.servers.evacuate(server, host="compute2", force=True)
    testing.wait_for(lambda: simcloud.cloud.timeline.pending() == 0)
    server = nova.servers.get(server.id)
    assert attr(server, "OS-EXT-STS:task_state") == "rebuilding"
    simcloud.cloud.revive_host("compute2")
    server, _ = wait_finished(nova, server.id)
    assert attr(server, "OS-EXT-SRV-ATTR:host") == "compute2"


def test_instance_actions_record_the_evacuation(simcloud):
    nova = testing.nova(simcloud, "2.62")
    server = on_host(nova, "compute1")[0]
    force_down(simcloud, "compute1")
    nova.servers.evacuate(server)
    wait_finished(nova, server.id)
    actions = nova.instance_action.list(server.id)
    assert [a.action for a in actions] == ["evacuate"]
    detail = nova.instance_action.get(server.id, actions[0].request_id)
    assert detail.events[0]["event"] == "compute_rebuild_instance"
    assert detail.events[0]["result"] == "Success"
