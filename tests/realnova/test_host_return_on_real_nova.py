"""instance_ha.host_return on the embedded Mistral against real Nova 34: a
host crashed, evacuated by instance_ha.host_evacuate, then restarted
(Nova's init_host deletes the evacuated guests and completes the
evacuation migrations) is returned to service; before the restart, and
while an evacuation from it is done but not completed, it is refused
with Nova's state unchanged.  Pacemaker is tests/fake_pacemaker.py."""

import time

from realnova import last_seq
from realnova import mutations

WORKFLOW = "instance_ha.host_return"
# tests/unit/hostmonitor/fixtures/live: the node's daemon restarted and
# reconnected after its fencing.
BACK_ONLINE = "crm_mon_rn1_back_online.xml"


def service(nova, host="compute1"):
    """The fields of nova-compute that an update would change, and
    Nova's state."""
    svc = nova.service(host)
    return {k: svc[k] for k in ("status", "forced_down", "disabled_reason",
                                "state")}


def evacuations_from(nova, host="compute1"):
    status, body = nova.nova(
        "GET", f"/os-migrations?source_compute={host}"
               "&migration_type=evacuation", microversion="2.59")
    assert status == 200, body
    return sorted(body["migrations"], key=lambda m: m["id"])


def wait_for(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not {what} after {timeout} s"
        time.sleep(0.2)


def crash_and_evacuate(nova, mistral, host="compute1"):
    """The host crashes, Pacemaker shows it fenced, host_evacuate
    recovers it: forced down and disabled."""
    nova.crash(host)
    nova.wait_service_state(host, "down")
    mistral.pacemaker.show(node=host)
    execution, output = mistral.run(
        "instance_ha.host_evacuate",
        {"search_opts": {"host": host}, "poll_interval": 0.5})
    assert execution.state == "SUCCESS", execution.state_info
    return output


def host_return(mistral, host="compute1", **wf_input):
    mistral.pacemaker.show(BACK_ONLINE, node=host)
    return mistral.run(WORKFLOW, {"host": host, **wf_input})


def test_refused_before_the_restart_then_returned_after_it(
        nova_cloud, realnova_mistral):
    nova = nova_cloud
    ids = [nova.create_server("compute1")["id"] for _ in range(2)]
    output = crash_and_evacuate(nova, realnova_mistral)
    assert output["counts"] == {"moved": 2, "failed": 0, "skipped": 0,
                                "not_attempted": 0}
    evacuated = service(nova)
    assert (evacuated["status"], evacuated["forced_down"],
            evacuated["state"]) == ("disabled", True, "down")
    assert [m["status"] for m in evacuations_from(nova)] == ["done"] * 2

    # Pacemaker shows the node back, but nova-compute is not running.
    since = last_seq(nova)
    execution, output = host_return(realnova_mistral, heartbeat_wait=5)
    assert execution.state == "ERROR"
    assert execution.state_info.startswith(
        "refusing to return compute1 to service: nova-compute on compute1 "
        "sent no heartbeat within 5 s (forced down, so Nova shows it down "
        "whatever it does; updated_at still "), execution.state_info
    assert execution.state_info.endswith("; nothing was changed")
    assert output["checked"]["pacemaker"]["decision"] == "online"
    assert mutations(nova, since) == []
    assert service(nova) == evacuated
    assert [m["status"] for m in evacuations_from(nova)] == ["done"] * 2

    # The restart: init_host deletes the evacuated guests and completes
    # the migrations; heartbeats resume, Nova still says down.
    nova.restart("compute1")
    wait_for(lambda: [m["status"] for m in evacuations_from(nova)]
             == ["completed"] * 2, "completed by the restart")
    assert nova.host("compute1")["driver_instances"] == 0
    assert service(nova)["state"] == "down"
    since = last_seq(nova)
    execution, output = host_return(realnova_mistral)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["changed"] == {"forced_down_unset": True,
                                 "enabled": True}
    assert output["checked"]["compute"]["evidence"].startswith(
        "a heartbeat while forced down (updated_at ")
    assert output["checked"]["evacuations"]["by_status"] == {
        "completed": 2}
    assert [(r["method"], r["status"]) for r in mutations(nova, since)] \
        == [("PUT", 200)]
    wait_for(lambda: service(nova) == {
        "status": "enabled", "forced_down": False, "disabled_reason": None,
        "state": "up"}, "up and enabled", timeout=30)
    for server_id in ids:
        server = nova.server(server_id)
        assert server["OS-EXT-SRV-ATTR:host"] != "compute1", server
        assert server["status"] == "ACTIVE", server


def test_refused_while_an_evacuation_is_done_as_nova_refuses_it(
        nova_cloud, realnova_mistral):
    """After the restart, a VM in error that host_evacuate skipped is
    evacuated by hand from the host, still forced down: its migration
    stays done until the next restart.  host_return names it and sends
    nothing; Nova's own refusal of the force-up is the same."""
    nova = nova_cloud
    broken = nova.create_server("compute1", "error")["id"]
    output = crash_and_evacuate(nova, realnova_mistral)
    assert output["counts"] == {"moved": 0, "failed": 0, "skipped": 1,
                                "not_attempted": 0}
    nova.restart("compute1")
    status, body = nova.nova("POST", f"/servers/{broken}/action",
                             {"evacuate": {}}, microversion="2.53")
    assert status == 200, body
    wait_for(lambda: [m["status"] for m in evacuations_from(nova)]
             == ["done"], "the evacuation done")
    (migration,) = evacuations_from(nova)
    before = service(nova)
    since = last_seq(nova)
    execution, output = host_return(realnova_mistral)
    assert execution.state == "ERROR"
    assert execution.state_info == (
        f"refusing to return compute1 to service: 1 evacuation(s) from "
        f"compute1 not completed (migration {migration['id']} of server "
        f"{broken} done): restart nova-compute on the host, which "
        f"completes them, or wait for those under way; nothing was "
        f"changed")
    assert output["checked"]["compute"]["evidence"].startswith(
        "a heartbeat while forced down")
    assert mutations(nova, since) == []
    assert service(nova) == before

    service_id = nova.service("compute1")["id"]
    status, body = nova.nova("PUT", f"/os-services/{service_id}",
                             {"forced_down": False}, microversion="2.53")
    assert status == 400
    assert body["badRequest"]["message"] == (
        "Unable to force up host compute1 as `done` evacuation migration "
        "records remain associated with the host. Ensure the compute "
        "service has been restarted, allowing these records to move to "
        "`completed` before retrying this request.")
    assert service(nova) == before
