"""service_force_down, service_disable, service_enable against the
simulated cloud over HTTP."""

import fake_pacemaker
import pytest
from actions_support import error_of
from actions_support import run

from instance_ha.actions.host_servers import HostServers
from instance_ha.actions.recover_servers import RecoverServers
from instance_ha.actions.service_disable import ServiceDisable
from instance_ha.actions.service_enable import ServiceEnable
from instance_ha.actions.service_force_down import ServiceForceDown
from instance_ha.simcloud import microversion

pytest_plugins = ("actions_support",)

REASON = "instance-ha: compute1 fenced by pacemaker at 2026-11-21T06:00Z"


def service(cloud, host):
    return cloud.model.hosts[host].service


def test_force_down_marks_the_service_down_and_disabled(cloud):
    mark = cloud.mark()
    result = run(ServiceForceDown("compute1", REASON))
    svc = service(cloud, "compute1")
    assert result == {"host": "compute1", "service_id": svc.uuid,
                      "forced_down": True, "disabled": True,
                      "changed": True, "state": "up",
                      "disabled_reason": REASON, "microversion": "2.96"}
    assert (svc.forced_down, svc.disabled, svc.disabled_reason) == \
        (True, True, REASON)
    updates = cloud.nova_calls(mark, operation="services.update")
    assert [(c.path, c.microversion) for c in updates] == \
        [(f"/v2.1/os-services/{svc.uuid}", "2.96")]


def test_force_down_twice_changes_nothing_the_second_time(cloud):
    first = run(ServiceForceDown("compute1", REASON))
    mark = cloud.mark()
    second = run(ServiceForceDown("compute1", "another reason"))
    assert second == dict(first, changed=False, state="down")
    assert cloud.operations(mark) == ["services.list"]
    assert service(cloud, "compute1").disabled_reason == REASON
    assert cloud.model.calls.count(operation="services.update") == 1


@pytest.mark.parametrize("server_max, reason", [
    ((2, 96), REASON), ((2, 40), "operator: maintenance")])
def test_force_down_completes_a_half_done_service(cloud, monkeypatch,
                                                  server_max, reason):
    monkeypatch.setattr(microversion, "MAX_VERSION", server_max)
    svc = service(cloud, "compute1")
    svc.disabled, svc.disabled_reason = True, "operator: maintenance"
    result = run(ServiceForceDown("compute1", REASON))
    assert result["changed"] is True
    assert result["disabled_reason"] == reason == svc.disabled_reason
    assert svc.forced_down is True
    assert cloud.model.calls.count(operation="services.update") == 1


def test_force_down_of_an_unknown_host(cloud):
    error = error_of(run(ServiceForceDown("nohost", REASON)))
    assert error == {"server": None, "host": "nohost", "code": 404,
                     "reason": "no nova-compute service on host nohost"}


@pytest.mark.parametrize("host, reason", [
    ("", REASON), (None, REASON), ("compute1", ""), (["compute1"], REASON),
])
def test_force_down_bad_input_sends_nothing(cloud, host, reason):
    mark = cloud.mark()
    error = error_of(run(ServiceForceDown(host, reason)))
    assert error["reason"].startswith("bad input")
    assert len(cloud.model.calls) == mark


def test_force_down_retries_a_503(cloud):
    cloud.model.faults.add("services.update", status=503, times=2)
    result = run(ServiceForceDown("compute1", REASON))
    assert result["changed"] is True
    assert [c.status for c in cloud.nova_calls(
        operation="services.update")] == [503, 503, 200]


def test_force_down_reports_a_500_with_novas_message(cloud):
    cloud.model.faults.add("services.update", status=500)
    error = error_of(run(ServiceForceDown("compute1", REASON)))
    assert error["code"] == 500
    assert error["host"] == "compute1"
    assert "compute1" in error["reason"]
    assert "Unexpected API Error" in error["reason"]
    assert cloud.model.calls.count(operation="services.update") == 1


def test_force_down_gives_up_on_503_after_the_budget(cloud, monkeypatch):
    from instance_ha import nova_client
    monkeypatch.setattr(nova_client, "RETRY_BUDGET", 0.3)
    cloud.model.faults.add("services.list", status=503)
    error = error_of(run(ServiceForceDown("compute1", REASON)))
    assert error["code"] == 503
    assert "unavailable" in error["reason"]
    assert 2 <= cloud.model.calls.count(operation="services.list") < 10


def test_force_down_survives_a_hung_request(make_cloud):
    cloud = make_cloud(api_timeout=0.3)
    cloud.model.faults.add("services.list", timeout=2, times=1)
    result = run(ServiceForceDown("compute1", REASON))
    assert result["changed"] is True
    assert [c.answered for c in cloud.nova_calls(
        operation="services.list")] == [False, True]


@pytest.mark.parametrize("server_max, paths", [
    ((2, 52), ["/v2.1/os-services/force-down",
               "/v2.1/os-services/disable-log-reason"]),
    ((2, 11), ["/v2.1/os-services/force-down",
               "/v2.1/os-services/disable-log-reason"]),
])
def test_force_down_form_follows_the_server_max(cloud, monkeypatch,
                                                server_max, paths):
    monkeypatch.setattr(microversion, "MAX_VERSION", server_max)
    result = run(ServiceForceDown("compute1", REASON))
    version = "{}.{}".format(*server_max)
    assert result["microversion"] == version
    assert result["service_id"] == service(cloud, "compute1").id
    updates = cloud.nova_calls(operation="services.update")
    assert [(c.path, c.microversion, c.status) for c in updates] == \
        [(p, version, 200) for p in paths]
    svc = service(cloud, "compute1")
    assert (svc.forced_down, svc.disabled, svc.disabled_reason) == \
        (True, True, REASON)


def test_force_down_needs_2_11(cloud, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 10))
    error = error_of(run(ServiceForceDown("compute1", REASON)))
    assert "needs compute API microversion 2.11" in error["reason"]
    assert cloud.model.calls.count(operation="services.update") == 0


def test_disable_and_disable_again(cloud):
    first = run(ServiceDisable("compute2", "nova-compute died"))
    svc = service(cloud, "compute2")
    assert first == {"host": "compute2", "service_id": svc.uuid,
                     "disabled": True, "changed": True, "state": "up",
                     "disabled_reason": "nova-compute died",
                     "microversion": "2.96"}
    assert (svc.disabled, svc.forced_down, svc.disabled_reason) == \
        (True, False, "nova-compute died")
    second = run(ServiceDisable("compute2", "later"))
    assert second == dict(first, changed=False)
    assert svc.disabled_reason == "nova-compute died"
    assert cloud.model.calls.count(operation="services.update") == 1


def test_disable_of_an_unknown_host_and_bad_input(cloud):
    assert error_of(run(ServiceDisable("nohost", "x")))["reason"] == \
        "no nova-compute service on host nohost"
    assert error_of(run(ServiceDisable("compute1", None)))[
        "reason"].startswith("bad input")


def test_disable_below_2_53(cloud, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 40))
    run(ServiceDisable("compute2", "nova-compute died"))
    assert [c.path for c in cloud.nova_calls(
        operation="services.update")] == \
        ["/v2.1/os-services/disable-log-reason"]
    assert service(cloud, "compute2").disabled_reason == "nova-compute died"


def test_enable_after_a_plain_disable(cloud):
    run(ServiceDisable("compute2", "maintenance"))
    result = run(ServiceEnable("compute2"))
    svc = service(cloud, "compute2")
    assert result == {"host": "compute2", "service_id": svc.uuid,
                      "forced_down": False, "disabled": False,
                      "changed": True, "state": "up",
                      "disabled_reason": None, "microversion": "2.96"}
    assert (svc.disabled, svc.forced_down, svc.disabled_reason) == \
        (False, False, None)
    mark = cloud.mark()
    assert run(ServiceEnable("compute2")) == dict(result, changed=False)
    assert cloud.operations(mark) == ["services.list"]


def evacuate_one(cloud, host, pacemaker):
    """Kill ``host``, force it down and evacuate one of its servers
    (recover_servers, Pacemaker showing the host fenced): Nova keeps the
    ``done`` evacuation record until the host's compute restarts."""
    server = cloud.server(f"{host}-vm1")
    cloud.model.kill_host(host)
    run(ServiceForceDown(host, REASON))
    pacemaker.show(fake_pacemaker.FENCED, node=host)
    (entry,) = [e for e in run(HostServers({"host": host}))["servers"]
                if e["id"] == server.id]
    result = run(RecoverServers([entry], host, timeout=10, interval=0.05))
    assert [r["outcome"] for r in result["servers"]] == ["moved"], result
    assert [m.status for m in cloud.model.migrations
            if m.instance_uuid == server.id] == ["done"]


def test_enable_is_refused_until_the_compute_restarted(cloud, pacemaker):
    evacuate_one(cloud, "compute1", pacemaker)
    error = error_of(run(ServiceEnable("compute1")))
    assert error["code"] == 400
    assert error["host"] == "compute1"
    assert ("Unable to force up host compute1 as `done` evacuation "
            "migration records remain associated with the host") in \
        error["reason"]
    svc = service(cloud, "compute1")
    assert (svc.forced_down, svc.disabled) == (True, True)
    cloud.model.revive_host("compute1")
    mark = cloud.mark()
    result = run(ServiceEnable("compute1"))
    assert result["changed"] is True
    assert (svc.forced_down, svc.disabled) == (False, False)
    assert cloud.operations(mark) == ["services.list", "services.update"]


def test_enable_below_2_53_unsets_forced_down_then_enables(
        cloud, monkeypatch, pacemaker):
    evacuate_one(cloud, "compute1", pacemaker)
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 30))
    from instance_ha import nova_client
    nova_client.clear_negotiated()
    error = error_of(run(ServiceEnable("compute1")))
    assert "Unable to force up host compute1" in error["reason"]
    assert service(cloud, "compute1").disabled is True
    cloud.model.revive_host("compute1")
    mark = cloud.mark()
    assert run(ServiceEnable("compute1"))["changed"] is True
    assert [c.path for c in cloud.nova_calls(
        mark, operation="services.update")] == \
        ["/v2.1/os-services/force-down", "/v2.1/os-services/enable"]
    svc = service(cloud, "compute1")
    assert (svc.forced_down, svc.disabled) == (False, False)


def test_enable_of_an_unknown_host(cloud):
    error = error_of(run(ServiceEnable("nohost")))
    assert error["reason"] == "no nova-compute service on host nohost"
