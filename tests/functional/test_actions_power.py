"""stop, start and reset_state: look before acting, wait for Nova."""

import pytest
from actions_support import error_of
from actions_support import run
from actions_support import topology

from instance_ha.actions.reset_state import ResetState
from instance_ha.actions.start import Start
from instance_ha.actions.stop import Stop

pytest_plugins = ("actions_support",)

FAST = {"interval": 0.02, "timeout": 5}


def states_cloud(make_cloud):
    return make_cloud(topology({"compute1": [
        {"name": "active"},
        {"name": "stopped", "vm_state": "stopped"},
        {"name": "resized", "vm_state": "resized"},
        {"name": "paused", "vm_state": "paused"},
        {"name": "stuck", "vm_state": "active",
         "task_state": "powering-off"},
    ]}))


def test_stop_then_stop_again(make_cloud):
    cloud = states_cloud(make_cloud)
    server = cloud.server("active")
    result = run(Stop(server.id, **FAST))
    assert result == {"server": server.id, "outcome": "stopped",
                      "vm_state": "stopped", "host": "compute1"}
    assert (server.vm_state, server.power_state) == ("stopped", 4)
    mark = cloud.mark()
    again = run(Stop(server.id, **FAST))
    assert again == dict(result, outcome="already_stopped")
    assert cloud.operations(mark) == ["servers.show"]
    assert cloud.model.calls.count(operation="os-stop") == 1


def test_start_then_start_again(make_cloud):
    cloud = states_cloud(make_cloud)
    server = cloud.server("stopped")
    assert run(Start(server.id, **FAST))["outcome"] == "started"
    assert server.vm_state == "active"
    assert run(Start(server.id, **FAST))["outcome"] == "already_active"
    assert cloud.model.calls.count(operation="os-start") == 1


def test_a_stop_under_way_is_waited_for_not_sent(make_cloud):
    cloud = states_cloud(make_cloud)
    server = cloud.server("active")
    with cloud.model.lock:
        cloud.model.stop(_admin(cloud), server)
    assert server.task_state == "powering-off"
    result = run(Stop(server.id, **FAST))
    assert result["outcome"] == "stopped"
    assert cloud.model.calls.count(operation="os-stop") == 0


def _admin(cloud):
    identity = cloud.model.identity
    from instance_ha.simcloud.keystone import Context
    return Context(user_id=identity.admin.id,
                   project_id=identity.admin_project.id,
                   roles=identity.admin.roles)


def test_stop_refused_by_nova(make_cloud):
    cloud = states_cloud(make_cloud)
    server = cloud.server("paused")
    error = error_of(run(Stop(server.id, **FAST)))
    assert error["code"] == 409
    assert error["server"] == server.id
    assert f"Cannot 'stop' instance {server.id} while it is in vm_state " \
           "paused" in error["reason"]


def test_stop_times_out_when_the_compute_is_dead(make_cloud):
    cloud = states_cloud(make_cloud)
    server = cloud.server("active")
    cloud.model.kill_host("compute1")
    error = error_of(run(Stop(server.id, timeout=0.2, interval=0.05)))
    assert "not stopped after 0.2 s" in error["reason"]
    assert "task_state powering-off" in error["reason"]
    cloud.model.revive_host("compute1")


def test_stop_retries_503_and_a_lost_answer(make_cloud):
    cloud = make_cloud(api_timeout=0.3)
    server = cloud.server("compute1-vm1")
    cloud.model.faults.add("os-stop", status=503, times=1)
    cloud.model.faults.add("os-stop", timeout=1, apply=True, times=1)
    assert run(Stop(server.id, **FAST))["outcome"] == "stopped"
    calls = cloud.nova_calls(operation="os-stop")
    # 503, then accepted but the answer lost: the next look sees it
    # powering off and sends nothing more.
    assert [(c.status, c.answered) for c in calls] == \
        [(503, True), (202, False)]


def test_reset_to_error_and_again(make_cloud):
    cloud = states_cloud(make_cloud)
    server = cloud.server("resized")
    result = run(ResetState(server.id, "error"))
    assert result == {"server": server.id, "vm_state": "error",
                      "task_state": None, "changed": True}
    assert server.vm_state == "error"
    again = run(ResetState(server.id, "error"))
    assert again == dict(result, changed=False)
    assert cloud.model.calls.count(operation="os-resetState") == 1


def test_reset_clears_a_stuck_task(make_cloud):
    cloud = states_cloud(make_cloud)
    server = cloud.server("stuck")
    assert run(ResetState(server.id, "active"))["changed"] is True
    assert (server.vm_state, server.task_state) == ("active", None)


@pytest.mark.parametrize("name, operations", [
    ("stopped", []),
    ("active", ["os-stop"]),
    ("resized", ["os-resetState", "os-stop"]),
    ("stuck", ["os-resetState", "os-stop"]),
])
def test_reset_to_stopped(make_cloud, name, operations):
    cloud = states_cloud(make_cloud)
    server = cloud.server(name)
    result = run(ResetState(server.id, "stopped", **FAST))
    assert result["vm_state"] == "stopped"
    assert result["changed"] is bool(operations)
    assert (server.vm_state, server.task_state, server.power_state) == \
        ("stopped", None, 4)
    mutations = [c.operation for c in cloud.nova_calls()
                 if c.method != "GET"]
    assert mutations == operations


@pytest.mark.parametrize("action", [
    ResetState("x", "paused"), ResetState("x", "STOPPED"),
    ResetState("", "error"), ResetState("x", "error", timeout=-1),
    Stop(None), Start("x", interval="1"),
])
def test_bad_input(cloud, action):
    mark = cloud.mark()
    assert error_of(run(action))["reason"].startswith("bad input")
    assert len(cloud.model.calls) == mark


def test_unknown_server(cloud):
    missing = "8d7cf0b4-1111-4222-8333-944445555666"
    for action in (Stop(missing), Start(missing),
                   ResetState(missing, "error")):
        error = error_of(run(action))
        assert (error["server"], error["code"]) == (missing, 404)
        assert "could not be found" in error["reason"]


def test_reset_reports_a_500(cloud):
    server = cloud.server("compute1-vm1")
    cloud.model.faults.add("os-resetState", status=500)
    error = error_of(run(ResetState(server.id, "error")))
    assert (error["code"], error["server"]) == (500, server.id)
    assert server.vm_state == "active"
