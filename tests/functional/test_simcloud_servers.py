"""Servers on the simulated cloud: listing and its dangerous filters, the
server view per microversion, stop/start/reset-state/lock and their state
checks, migrations, aggregates, flavors and images."""

import pytest
from novaclient import exceptions as nova_exc

from instance_ha.simcloud import testing


def admin_list(nova, **opts):
    return nova.servers.list(search_opts={"all_tenants": True, **opts})


def one_on(nova, host):
    return sorted(admin_list(nova, host=host), key=lambda s: s.name)[0]


def test_non_admin_host_filter_is_silently_ignored(simcloud):
    user = testing.nova(simcloud, admin=False)
    servers = user.servers.list(search_opts={"host": "compute1"})
    assert len(servers) == 6
    assert {s.name for s in servers} == {s.name for s in
                                         simcloud.cloud.servers.values()}
    assert simcloud.cloud.calls.calls(operation="servers.detail")[
        -1].query == "host=compute1"


def test_non_admin_all_tenants_is_forbidden(simcloud):
    user = testing.nova(simcloud, admin=False)
    with pytest.raises(nova_exc.Forbidden) as error:
        user.servers.list(search_opts={"all_tenants": True})
    assert error.value.message == (
        "Policy doesn't allow os_compute_api:servers:detail:get_all_tenants"
        " to be performed.")
    with pytest.raises(nova_exc.Forbidden) as error:
        user.servers.list(detailed=False, search_opts={"all_tenants": 1})
    assert "servers:index:get_all_tenants" in error.value.message


def test_admin_sees_other_projects_only_with_all_tenants(simcloud):
    nova = testing.nova(simcloud)
    assert nova.servers.list(search_opts={"host": "compute1"}) == []
    on_host = admin_list(nova, host="compute1")
    assert sorted(s.name for s in on_host) == ["compute1-vm1",
                                               "compute1-vm2"]
    assert {getattr(s, "OS-EXT-SRV-ATTR:host") for s in on_host} == \
        {"compute1"}


def test_status_and_name_filters(simcloud):
    nova = testing.nova(simcloud)
    server = one_on(nova, "compute2")
    nova.servers.stop(server)
    testing.wait_for(lambda: nova.servers.get(server.id).status ==
                     "SHUTOFF")
    assert [s.id for s in admin_list(nova, status="SHUTOFF")] == \
        [server.id]
    assert len(admin_list(nova, status="ACTIVE")) == 5
    assert sorted(s.name for s in admin_list(nova, name="compute3-")) == \
        ["compute3-vm1", "compute3-vm2"]
    assert [s.id for s in admin_list(nova, vm_state="stopped",
                                     flavor="1")] == [server.id]
    assert admin_list(nova, flavor="2") == []
    assert len(admin_list(nova, image=server.image["id"])) == 6
    with pytest.raises(nova_exc.BadRequest) as error:
        admin_list(nova, status="BOGUS")
    assert error.value.message == "Invalid status value"
    old = testing.nova(simcloud, "2.37")
    assert admin_list(old, status="BOGUS") == []


def test_max_limit_and_paging(simcloud_factory):
    config = testing.small_topology(hosts=2, vms_per_host=3)
    config["settings"]["max_limit"] = 4
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    assert len(admin_list(nova)) == 4
    assert len(nova.servers.list(search_opts={"all_tenants": True},
                                 limit=-1)) == 6
    response = testing.request(sim, "GET", "/servers?all_tenants=1&limit=2")
    body = response.json()
    assert len(body["servers"]) == 2
    assert body["servers_links"][0]["rel"] == "next"


def test_next_link_keeps_the_filters_and_follows_a_full_page(
        simcloud_factory):
    """Nova's next link repeats every request parameter (host filter
    included) with a new marker, and is given whenever a page is full."""
    from urllib import parse

    config = testing.small_topology(hosts=2, vms_per_host=3)
    sim = simcloud_factory(config)
    response = testing.request(
        sim, "GET", "/servers/detail?all_tenants=1&host=compute1&limit=2")
    body = response.json()
    link = body["servers_links"][0]["href"]
    url = parse.urlsplit(link)
    assert url.path.endswith("/v2.1/servers/detail")
    params = parse.parse_qs(url.query)
    assert params["host"] == ["compute1"]
    assert params["all_tenants"] == ["1"]
    assert params["marker"] == [body["servers"][-1]["id"]]
    rest = testing.request(sim, "GET", link.split("/v2.1", 1)[1]).json()
    assert [s["OS-EXT-SRV-ATTR:host"] for s in rest["servers"]] \
        == ["compute1"]
    full = testing.request(
        sim, "GET", "/servers?all_tenants=1&host=compute1&limit=3").json()
    assert len(full["servers"]) == 3
    assert full["servers_links"][0]["rel"] == "next"


def test_server_view_for_admin_and_member(simcloud):
    nova = testing.nova(simcloud, "2.73")
    server = one_on(nova, "compute1")
    assert getattr(server, "OS-EXT-SRV-ATTR:hypervisor_hostname") == \
        "compute1"
    assert server.metadata == {"HA_Enabled": "True"}
    assert (server.locked, server.locked_reason) == (False, None)
    assert server.host_status == "UP"
    user = testing.nova(simcloud, "2.73", admin=False)
    seen = user.servers.get(server.id).to_dict()
    assert not any(key.startswith("OS-EXT-SRV-ATTR") for key in seen)
    assert "host_status" not in seen
    assert seen["OS-EXT-STS:vm_state"] == "active"
    assert seen["OS-EXT-STS:power_state"] == 1


def test_flavor_embedded_from_2_47(simcloud_factory):
    config = testing.small_topology(hosts=1, vms_per_host=1)
    config["flavors"][0]["extra_specs"] = {"hw:cpu_policy": "dedicated"}
    sim = simcloud_factory(config)
    old = admin_list(testing.nova(sim, "2.46"))[0]
    assert set(old.flavor) == {"id", "links"}
    assert old.flavor["id"] == "1"
    new = admin_list(testing.nova(sim, "2.47"))[0]
    assert new.flavor == {"vcpus": 1, "ram": 2048, "disk": 20,
                          "ephemeral": 0, "swap": 0,
                          "original_name": "m1.small",
                          "extra_specs": {"hw:cpu_policy": "dedicated"}}
    assert testing.nova(sim, "2.46").flavors.get("1").get_keys() == \
        {"hw:cpu_policy": "dedicated"}


def test_image_properties_by_image_id(simcloud):
    nova = testing.nova(simcloud, "2.35")
    server = one_on(nova, "compute1")
    image_id = server.image["id"]
    proxy = testing.request(simcloud, "GET", f"/images/{image_id}",
                            version="2.35")
    assert proxy.json()["image"]["metadata"] == {"evacuable": "true"}
    gone = testing.request(simcloud, "GET", f"/images/{image_id}",
                           version="2.36")
    assert gone.status_code == 404
    session = testing.session(simcloud)
    glance = session.get(f"/v2/images/{image_id}",
                         endpoint_filter={"service_type": "image"})
    assert glance.json()["evacuable"] == "true"
    # Beyond novaclient's 2.96: raw request.
    response = testing.request(simcloud, "GET", f"/servers/{server.id}",
                               version="2.98")
    assert response.json()["server"]["image"]["properties"] == \
        {"evacuable": "true"}


def test_metadata_api(simcloud):
    nova = testing.nova(simcloud)
    server = one_on(nova, "compute1")
    response = testing.request(simcloud, "GET",
                               f"/servers/{server.id}/metadata")
    assert response.json() == {"metadata": {"HA_Enabled": "True"}}
    response = testing.request(simcloud, "GET",
                               f"/servers/{server.id}/metadata/HA_Enabled")
    assert response.json() == {"meta": {"HA_Enabled": "True"}}


def test_stop_and_start_follow_the_state_checks(simcloud):
    nova = testing.nova(simcloud)
    server = one_on(nova, "compute1")
    with pytest.raises(nova_exc.Conflict) as error:
        nova.servers.start(server)
    assert error.value.message == (
        f"Cannot 'start' instance {server.id} while it is in vm_state "
        "active")
    response = nova.servers.stop(server)
    assert response.request_ids
    assert nova.servers.get(server.id).to_dict()[
        "OS-EXT-STS:task_state"] == "powering-off"
    with pytest.raises(nova_exc.Conflict) as error:
        nova.servers.stop(server)
    assert error.value.message == (
        f"Cannot 'stop' instance {server.id} while it is in task_state "
        "powering-off")
    testing.wait_for(lambda: nova.servers.get(server.id).status ==
                     "SHUTOFF")
    assert nova.servers.get(server.id).to_dict()[
        "OS-EXT-STS:power_state"] == 4
    with pytest.raises(nova_exc.Conflict) as error:
        nova.servers.stop(server)
    assert error.value.message == (
        f"Cannot 'stop' instance {server.id} while it is in vm_state "
        "stopped")
    nova.servers.start(server)
    testing.wait_for(lambda: nova.servers.get(server.id).status == "ACTIVE")
    actions = [a.action for a in nova.instance_action.list(server.id)]
    assert actions == ["start", "stop"]


def test_stop_on_a_dead_host_waits_for_the_compute(simcloud):
    nova = testing.nova(simcloud)
    server = one_on(nova, "compute1")
    simcloud.cloud.kill_host("compute1")
    nova.servers.stop(server)
    testing.wait_for(lambda: simcloud.cloud.timeline.pending() == 0)
    assert nova.servers.get(server.id).to_dict()[
        "OS-EXT-STS:task_state"] == "powering-off"
    simcloud.cloud.revive_host("compute1")
    testing.wait_for(lambda: nova.servers.get(server.id).status ==
                     "SHUTOFF")


def test_locked_server(simcloud):
    nova = testing.nova(simcloud, "2.73")
    user = testing.nova(simcloud, "2.73", admin=False)
    server = one_on(nova, "compute1")
    nova.servers.lock(server, reason="instance-ha")
    shown = nova.servers.get(server.id)
    assert (shown.locked, shown.locked_reason) == (True, "instance-ha")
    with pytest.raises(nova_exc.Conflict) as error:
        user.servers.stop(server.id)
    assert error.value.message == f"Instance {server.id} is locked"
    with pytest.raises(nova_exc.Forbidden) as error:
        user.servers.unlock(server.id)
    assert error.value.message == (
        "Policy doesn't allow os_compute_api:os-lock-server:unlock:"
        "unlock_override to be performed.")
    nova.servers.stop(server)   # the admin is not held by the lock
    nova.servers.unlock(server)
    assert nova.servers.get(server.id).locked is False
    old = testing.nova(simcloud, "2.72").servers.get(server.id).to_dict()
    assert "locked_reason" not in old and old["locked"] is False


def test_reset_state(simcloud):
    nova = testing.nova(simcloud)
    server = one_on(nova, "compute1")
    nova.servers.reset_state(server, "error")
    assert nova.servers.get(server.id).status == "ERROR"
    nova.servers.reset_state(server, "active")
    assert nova.servers.get(server.id).status == "ACTIVE"
    response = testing.request(
        simcloud, "POST", f"/servers/{server.id}/action",
        json={"os-resetState": {"state": "stopped"}})
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == (
        "Invalid input for field/attribute state. Value: stopped. "
        "'stopped' is not one of ['active', 'error']")
    user = testing.nova(simcloud, admin=False)
    with pytest.raises(nova_exc.Forbidden) as error:
        user.servers.reset_state(server.id, "error")
    assert error.value.message == (
        "Policy doesn't allow os_compute_api:os-admin-actions:reset_state "
        "to be performed.")


def test_other_projects_servers_are_not_found(simcloud):
    admin_server = simcloud.cloud.add_server(
        "admin-vm", "compute1", project_id=simcloud.cloud.identity
        .admin_project.id)
    user = testing.nova(simcloud, admin=False)
    with pytest.raises(nova_exc.NotFound) as error:
        user.servers.get(admin_server.id)
    assert error.value.message == \
        f"Instance {admin_server.id} could not be found."


def test_error_bodies_are_shaped_like_nova(simcloud):
    response = testing.request(simcloud, "GET", "/servers/nope")
    assert response.json() == {"itemNotFound": {
        "code": 404, "message": "Instance nope could not be found."}}
    response = testing.request(simcloud, "GET", "/no-such-api")
    assert response.json() == {"itemNotFound": {
        "code": 404, "message": "The resource could not be found."}}
    server = one_on(testing.nova(simcloud), "compute1")
    response = testing.request(simcloud, "POST",
                               f"/servers/{server.id}/action",
                               json={"os-start": None})
    assert response.json() == {"conflictingRequest": {
        "code": 409, "message": f"Cannot 'start' instance {server.id} "
                                "while it is in vm_state active"}}
    response = testing.request(simcloud, "POST",
                               f"/servers/{server.id}/action",
                               json={"fly": None})
    assert response.json()["itemNotFound"]["message"] == \
        "There is no such action: fly"


def test_migrations_filters(simcloud):
    nova = testing.nova(simcloud)
    nova.services.force_down(
        nova.services.list(host="compute1", binary="nova-compute")[0].id,
        True)
    first, second = sorted(admin_list(nova, host="compute1"),
                           key=lambda s: s.name)
    for server in (first, second):
        nova.servers.evacuate(server)
    testing.wait_for(lambda: all(
        m.status == "done" for m in nova.migrations.list()))
    assert len(nova.migrations.list()) == 2
    mine = nova.migrations.list(instance_uuid=first.id)
    assert [m.instance_uuid for m in mine] == [first.id]
    assert mine[0].migration_type == "evacuation"
    assert nova.migrations.list(migration_type="live-migration") == []
    assert len(nova.migrations.list(source_compute="compute1")) == 2
    user = testing.nova(simcloud, admin=False)
    with pytest.raises(nova_exc.Forbidden):
        user.migrations.list()


def test_aggregates(simcloud_factory):
    config = testing.small_topology()
    config["aggregates"] = [{"name": "reserved", "hosts": ["compute3"],
                             "metadata": {"reserved": "True"}}]
    sim = simcloud_factory(config)
    nova = testing.nova(sim)
    aggregate = nova.aggregates.list()[0]
    assert (aggregate.name, aggregate.hosts, aggregate.metadata) == (
        "reserved", ["compute3"], {"reserved": "True"})
    updated = nova.aggregates.add_host(aggregate.id, "compute2")
    assert updated.hosts == ["compute3", "compute2"]
    with pytest.raises(nova_exc.Conflict) as error:
        nova.aggregates.add_host(aggregate.id, "compute2")
    assert error.value.message == \
        f"Aggregate {aggregate.id} already has host compute2."
    with pytest.raises(nova_exc.NotFound) as error:
        nova.aggregates.add_host(aggregate.id, "nohost")
    assert error.value.message == "Compute host nohost could not be found."
    updated = nova.aggregates.set_metadata(aggregate.id,
                                           {"reserved": None, "ha": "yes"})
    assert updated.metadata == {"ha": "yes"}
    updated = nova.aggregates.remove_host(aggregate.id, "compute3")
    assert updated.hosts == ["compute2"]
    assert nova.aggregates.get(aggregate.id).hosts == ["compute2"]
