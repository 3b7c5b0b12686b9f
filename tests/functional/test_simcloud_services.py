"""os-services on the simulated cloud: the forms per microversion, and
bringing a host back, as Nova 34 does them."""

import pytest
from novaclient import exceptions as nova_exc

from instance_ha.simcloud import testing

FORCE_UP_REFUSED = (
    "Unable to force up host compute1 as `done` evacuation migration "
    "records remain associated with the host. Ensure the compute service "
    "has been restarted")


def compute_service(nova, host="compute1"):
    return nova.services.list(host=host, binary="nova-compute")[0]


def test_list_filters_and_fields_by_microversion(simcloud):
    old = testing.nova(simcloud, "2.1").services.list()
    assert {s.binary for s in old} == {"nova-compute", "nova-scheduler",
                                       "nova-conductor"}
    assert all(isinstance(s.id, int) for s in old)
    assert not hasattr(old[0], "forced_down")
    new = testing.nova(simcloud, "2.53").services.list(
        binary="nova-compute")
    assert sorted(s.host for s in new) == ["compute1", "compute2",
                                           "compute3"]
    service = new[0]
    assert len(service.id) == 36
    assert (service.state, service.status, service.forced_down,
            service.zone) == ("up", "enabled", False, "nova")


def test_force_down_at_2_11_uses_host_and_binary(simcloud):
    nova = testing.nova(simcloud, "2.11")
    service = nova.services.force_down("compute1", "nova-compute", True)
    assert service.forced_down is True
    assert simcloud.cloud.calls.calls(operation="services.update")[
        -1].path == "/v2.1/os-services/force-down"
    listed = compute_service(nova)
    assert (listed.state, listed.forced_down) == ("down", True)


def test_force_down_at_2_1_is_refused(simcloud):
    response = testing.request(
        simcloud, "PUT", "/os-services/force-down", version="2.1",
        json={"host": "compute1", "binary": "nova-compute",
              "forced_down": True})
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": (
        "Additional properties are not allowed ('forced_down' was "
        "unexpected)")}}
    # novaclient refuses it before sending anything.
    nova = testing.nova(simcloud, "2.1")
    calls_before = len(simcloud.cloud.calls)
    with pytest.raises(nova_exc.VersionNotFoundForAPIMethod) as error:
        nova.services.force_down("compute1", "nova-compute", True)
    assert str(error.value).startswith("API version '2.1' is not supported")
    assert str(error.value).endswith(".force_down' method.")
    assert len(simcloud.cloud.calls) == calls_before


def test_old_enable_disable_forms(simcloud):
    nova = testing.nova(simcloud, "2.11")
    disabled = nova.services.disable_log_reason("compute2", "nova-compute",
                                                "instance-ha: host down")
    assert (disabled.status, disabled.disabled_reason) == (
        "disabled", "instance-ha: host down")
    assert compute_service(nova, "compute2").disabled_reason == \
        "instance-ha: host down"
    nova.services.enable("compute2", "nova-compute")
    assert compute_service(nova, "compute2").status == "enabled"
    response = testing.request(
        simcloud, "PUT", "/os-services/disable-log-reason", version="2.11",
        json={"host": "compute2", "binary": "nova-compute"})
    assert response.json()["badRequest"]["message"] == \
        "Missing disabled reason field"
    response = testing.request(
        simcloud, "PUT", "/os-services/disable", version="2.11",
        json={"host": "nohost", "binary": "nova-compute"})
    assert response.status_code == 404
    assert response.json()["itemNotFound"]["message"] == \
        "Could not find binary nova-compute on host nohost."
    response = testing.request(
        simcloud, "PUT", "/os-services/reboot", version="2.11",
        json={"host": "compute2", "binary": "nova-compute"})
    assert (response.status_code, response.json()["itemNotFound"][
        "message"]) == (404, "Unknown action")


def test_2_53_update_by_uuid(simcloud):
    nova = testing.nova(simcloud, "2.53")
    service = compute_service(nova)
    updated = nova.services.disable_log_reason(service.id, "fenced")
    assert (updated.status, updated.disabled_reason) == ("disabled",
                                                         "fenced")
    updated = nova.services.force_down(service.id, True)
    assert (updated.forced_down, updated.state) == (True, "down")
    updated = nova.services.force_down(service.id, False)
    assert (updated.forced_down, updated.state) == (False, "up")
    updated = nova.services.enable(service.id)
    assert (updated.status, updated.disabled_reason) == ("enabled", None)


@pytest.mark.parametrize("path_id, body, code, message", [
    ("not-a-uuid", {"status": "enabled"}, 400, "Invalid uuid not-a-uuid"),
    ("0a0b0c0d-0000-4000-8000-000000000000", {"status": "enabled"}, 404,
     "Service 0a0b0c0d-0000-4000-8000-000000000000 could not be found."),
    (None, {}, 400, "No updates were requested. Fields 'status' or "
                    "'forced_down' should be specified."),
    (None, {"status": "enabled", "disabled_reason": "x"}, 400,
     "Specifying 'disabled_reason' with status 'enabled' is invalid."),
    (None, {"status": "off"}, 400,
     "Invalid input for field/attribute status. Value: off. 'off' is not "
     "one of ['enabled', 'disabled']"),
])
def test_2_53_update_errors(simcloud, path_id, body, code, message):
    nova = testing.nova(simcloud, "2.53")
    path_id = path_id or compute_service(nova).id
    response = testing.request(simcloud, "PUT", f"/os-services/{path_id}",
                               version="2.53", json=body)
    assert response.status_code == code
    assert list(response.json().values())[0]["message"] == message


def test_control_services_cannot_be_updated(simcloud):
    nova = testing.nova(simcloud, "2.53")
    scheduler = nova.services.list(binary="nova-scheduler")[0]
    with pytest.raises(nova_exc.BadRequest) as error:
        nova.services.disable(scheduler.id)
    assert error.value.message == (
        "Updating a nova-scheduler service is not supported. Only "
        "nova-compute services can be updated.")


def test_non_admin_cannot_update_services(simcloud):
    service = compute_service(testing.nova(simcloud))
    user = testing.nova(simcloud, admin=False)
    with pytest.raises(nova_exc.Forbidden) as error:
        user.services.force_down(service.id, True)
    assert error.value.message == (
        "Policy doesn't allow os_compute_api:os-services:update to be "
        "performed.")


def evacuate_one(sim, nova):
    server = nova.servers.list(search_opts={"all_tenants": True,
                                            "host": "compute1"})[0]
    nova.servers.evacuate(server)
    testing.wait_for(lambda: nova.migrations.list(
        instance_uuid=server.id, migration_type="evacuation")[0].status
        == "done")
    return server


@pytest.mark.parametrize("version", ["2.11", "2.53"])
def test_force_up_refused_until_the_compute_restarts(simcloud, version):
    nova = testing.nova(simcloud)
    service = compute_service(nova)
    nova.services.force_down(service.id, True)
    nova.services.disable_log_reason(service.id, "instance-ha: fenced")
    simcloud.cloud.kill_host("compute1")
    server = evacuate_one(simcloud, nova)
    old = testing.nova(simcloud, version)
    ref = (service.id,) if version == "2.53" else ("compute1",
                                                   "nova-compute")
    with pytest.raises(nova_exc.BadRequest) as error:
        old.services.force_down(*ref, False)
    assert error.value.message.startswith(FORCE_UP_REFUSED)
    assert compute_service(nova).forced_down is True

    simcloud.cloud.revive_host("compute1")
    migrations = nova.migrations.list(instance_uuid=server.id,
                                      migration_type="evacuation")
    assert [m.status for m in migrations] == ["completed"]
    old.services.force_down(*ref, False)
    restored = compute_service(nova)
    assert (restored.forced_down, restored.state, restored.status) == (
        False, "up", "disabled")
    nova.services.enable(restored.id)
    assert compute_service(nova).status == "enabled"


def test_hypervisors_follow_the_service(simcloud):
    nova = testing.nova(simcloud, "2.53")
    nova.services.force_down(compute_service(nova).id, True)
    hypervisors = {h.hypervisor_hostname: h for h in
                   nova.hypervisors.list(detailed=True)}
    assert sorted(hypervisors) == ["compute1", "compute2", "compute3"]
    assert hypervisors["compute1"].state == "down"
    assert hypervisors["compute2"].state == "up"
    assert hypervisors["compute2"].running_vms == 2
    found = nova.hypervisors.search("compute2", servers=True)
    assert len(found) == 1 and len(found[0].servers) == 2
    shown = nova.hypervisors.get(hypervisors["compute3"].id)
    assert shown.service["host"] == "compute3"
    old = testing.nova(simcloud, "2.1")
    with pytest.raises(nova_exc.NotFound) as error:
        old.hypervisors.search("nohost")
    assert error.value.message == \
        "No hypervisor matching 'nohost' could be found."
