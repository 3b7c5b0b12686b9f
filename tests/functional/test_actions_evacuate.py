"""evacuate and wait_for_server: at most one evacuation per server and
failure, whatever is re-run; done only when Nova really is done."""

import threading

import pytest
from actions_support import error_of
from actions_support import run
from actions_support import topology

from instance_ha.actions.evacuate import Evacuate
from instance_ha.actions.wait_for_server import WaitForServer
from instance_ha.simcloud import microversion
from instance_ha.simcloud import testing

pytest_plugins = ("actions_support",)

FAST = {"timeout": 10, "interval": 0.02}


def down(cloud, host="compute1"):
    cloud.model.kill_host(host)
    cloud.force_down(host)
    return cloud


def wait(server, expected="active", host="compute1", **kwargs):
    return run(WaitForServer(server.id, host, expected,
                             **dict(FAST, **kwargs)))


def test_an_active_server_is_evacuated_below_2_95_and_stays_active(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    result = run(Evacuate(server.id, "compute1"))
    (migration,) = [m for m in cloud.model.migrations
                    if m.instance_uuid == server.id]
    assert result == {"server": server.id, "outcome": "evacuated",
                      "host": "compute1", "source_host": "compute1",
                      "migration_id": migration.id, "microversion": "2.94"}
    (call,) = cloud.nova_calls(operation="evacuate")
    assert (call.microversion, call.status) == ("2.94", 200)
    done = wait(server)
    assert done["done"] is True
    assert (done["vm_state"], done["host"]) == ("active", server.host)
    assert server.host != "compute1"
    assert (server.vm_state, server.power_state) == ("active", 1)


def test_a_stopped_server_is_evacuated_below_2_95_and_comes_back_stopped(
        make_cloud):
    """Nova spawns it on the new host and powers it off at once: vm_state
    active with task_state powering-off on the way, as on Nova 34."""
    cloud = down(make_cloud(topology({
        "compute1": [{"name": "off", "vm_state": "stopped"}],
        "compute2": []})))
    server = cloud.server("off")
    seen = []
    original = cloud.model._evacuation_step

    def record(evacuation, index):
        original(evacuation, index)
        seen.append((server.vm_state, server.task_state, server.host))

    cloud.model._evacuation_step = record
    result = run(Evacuate(server.id, "compute1"))
    assert result["microversion"] == "2.94"
    assert wait(server, "stopped")["vm_state"] == "stopped"
    assert (server.host, server.power_state) == ("compute2", 4)
    assert ("active", "powering-off", "compute1") in seen


def test_a_server_reset_to_error_comes_back_active_even_at_2_95(make_cloud):
    """Nova 34 ignores the 2.95 target state for a server in error."""
    cloud = down(make_cloud(topology({
        "compute1": [{"name": "off", "vm_state": "stopped"}],
        "compute2": []})))
    server = cloud.server("off")
    nova = testing.nova(cloud.sim, version="2.95")
    nova.servers.reset_state(server.id, "error")
    nova.servers.evacuate(server.id)
    testing.wait_for(lambda: server.host == "compute2"
                     and server.task_state is None, timeout=10)
    assert (server.vm_state, server.power_state) == ("active", 1)


def test_a_powered_off_server_below_2_95_is_evacuated_at_the_max(
        make_cloud, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 60))
    cloud = down(make_cloud(topology({
        "compute1": [{"name": "off", "vm_state": "stopped"}],
        "compute2": []})))
    server = cloud.server("off")
    assert run(Evacuate(server.id, "compute1"))["microversion"] == "2.60"
    assert wait(server, "stopped")["done"] is True


def test_target_host_and_shared_storage_below_2_14(cloud, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 13))
    down(cloud)
    server = cloud.server("compute1-vm1")
    result = run(Evacuate(server.id, "compute1", target_host="compute3",
                          on_shared_storage=False))
    assert result["microversion"] == "2.13"
    assert wait(server)["host"] == "compute3"


def test_twice_is_one_evacuation(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    first = run(Evacuate(server.id, "compute1"))
    second = run(Evacuate(server.id, "compute1"))
    assert second["outcome"] == "in_progress"
    assert second["migration_id"] == first["migration_id"]
    wait(server)
    third = run(Evacuate(server.id, "compute1"))
    assert third["outcome"] == "already_moved"
    assert third["host"] == server.host
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}


def test_rerun_after_a_crash_in_every_window(cloud):
    """The POST went out, the executor died; the re-run comes while Nova
    rebuilds, then while task_state is None but the host is still the
    source: no second evacuation either time."""
    down(cloud)
    server = cloud.server("compute1-vm1")
    spawn, after_spawn, finish = cloud.gate_evacuations(
        "spawn", "after_spawn", "finish")
    assert run(Evacuate(server.id, "compute1"))["outcome"] == "evacuated"
    assert server.task_state == "rebuilding"
    assert run(Evacuate(server.id, "compute1"))["outcome"] == "in_progress"
    spawn.set()
    after_spawn.set()
    testing.wait_for(lambda: server.task_state is None
                     and server.host == "compute1")
    again = run(Evacuate(server.id, "compute1"))
    assert again["outcome"] == "in_progress"
    assert again["migration_id"] is not None
    # wait_for_server does not take task_state None for an answer.
    check = wait(server, timeout=0)
    assert (check["done"], check["host"], check["task_state"]) == \
        (False, "compute1", None)
    finish.set()
    assert wait(server)["done"] is True
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}


def test_a_lost_answer_is_not_sent_again(make_cloud):
    cloud = down(make_cloud(api_timeout=0.3))
    server = cloud.server("compute1-vm1")
    cloud.model.faults.add("evacuate", timeout=2, apply=True, times=1)
    result = run(Evacuate(server.id, "compute1"))
    assert result["outcome"] == "evacuated"
    assert result["migration_id"] is not None
    assert [(c.status, c.answered) for c in cloud.nova_calls(
        operation="evacuate")] == [(200, False)]
    assert wait(server)["done"] is True


def test_a_503_is_retried(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    cloud.model.faults.add("evacuate", status=503, times=2)
    assert run(Evacuate(server.id, "compute1"))["outcome"] == "evacuated"
    assert [c.status for c in cloud.nova_calls(operation="evacuate")] == \
        [503, 503, 200]
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}


def test_source_compute_still_up(cloud):
    server = cloud.server("compute1-vm1")
    error = error_of(run(Evacuate(server.id, "compute1")))
    assert error == {
        "server": server.id, "host": "compute1", "code": 400,
        "reason": f"evacuating server {server.id} from compute1: HTTP "
                  "400: Compute service of compute1 is still in use."}


def test_unknown_target_and_server(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    error = error_of(run(Evacuate(server.id, "compute1",
                                  target_host="nohost")))
    assert error["code"] == 404
    assert "Compute host nohost not found." in error["reason"]
    missing = "8d7cf0b4-1111-4222-8333-944445555666"
    error = error_of(run(Evacuate(missing, "compute1")))
    assert (error["server"], error["code"]) == (missing, 404)
    assert f"Instance {missing} could not be found." in error["reason"]


def test_a_500_is_reported_once(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    cloud.model.faults.add("evacuate", status=500)
    error = error_of(run(Evacuate(server.id, "compute1")))
    assert error["code"] == 500
    assert cloud.model.calls.count(operation="evacuate") == 1


def test_resized_is_refused_by_nova_until_reset(make_cloud):
    cloud = down(make_cloud(topology({
        "compute1": [{"name": "r", "vm_state": "resized"}],
        "compute2": []})))
    error = error_of(run(Evacuate(cloud.server("r").id, "compute1")))
    assert error["code"] == 409
    assert "vm_state resized" in error["reason"]


@pytest.mark.parametrize("action", [
    Evacuate("", "compute1"), Evacuate("x", None),
    Evacuate("x", "compute1", target_host="compute1"),
    Evacuate("x", "compute1", on_shared_storage="yes"),
    WaitForServer("x", "compute1", "ACTIVE"),
    WaitForServer("x", "compute1", "active", timeout="10"),
    WaitForServer("x", "", "active"),
])
def test_bad_input(cloud, action):
    mark = cloud.mark()
    assert error_of(run(action))["reason"].startswith("bad input")
    assert len(cloud.model.calls) == mark


def test_wait_fails_fast_on_error_with_novas_fault(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    cloud.model.faults.add("evacuate", outcome="error")
    run(Evacuate(server.id, "compute1"))
    error = error_of(wait(server, timeout=30))
    assert error["server"] == server.id
    assert "ended in error" in error["reason"]
    assert "Injected failure: the rebuild failed" in error["reason"]


def test_wait_fails_fast_on_no_valid_host(make_cloud):
    cloud = down(make_cloud(topology({"compute1": [{"name": "lonely"}]})))
    server = cloud.server("lonely")
    run(Evacuate(server.id, "compute1"))
    error = error_of(wait(server, timeout=30))
    assert "No valid host was found" in error["reason"]
    assert error["host"] == "compute1"


def test_wait_without_an_evacuation(cloud):
    error = error_of(wait(cloud.server("compute1-vm1")))
    assert "no evacuation from this host is under way" in error["reason"]


def test_wait_reports_a_wrong_final_state(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    run(Evacuate(server.id, "compute1"))
    error = error_of(wait(server, "stopped"))
    assert "ended active, expected stopped" in error["reason"]


def test_wait_times_out(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    (gate,) = cloud.gate_evacuations("spawn")
    run(Evacuate(server.id, "compute1"))
    error = error_of(wait(server, timeout=0.2, interval=0.05))
    assert "still not evacuated from compute1 after 0.2 s" in \
        error["reason"]
    gate.set()


def test_each_poll_while_rebuilding_is_one_read(cloud):
    down(cloud)
    server = cloud.server("compute1-vm1")
    (gate,) = cloud.gate_evacuations("after_spawn")
    run(Evacuate(server.id, "compute1"))
    for _ in range(3):
        mark = cloud.mark()
        check = wait(server, timeout=0)
        assert (check["done"], check["polls"]) == (False, 1)
        assert cloud.operations(mark) == ["servers.show"]
    gate.set()
    mark = cloud.mark()
    result = wait(server)
    operations = cloud.operations(mark)
    # The migrations are read only on polls where the server looks
    # finished, and the server once more when they are done while it
    # still shows the source host.
    shows = operations.count("servers.show")
    assert result["polls"] <= shows <= 2 * result["polls"]
    assert 1 <= operations.count("migrations.list") <= result["polls"]
    assert len(operations) == operations.count("servers.show") + \
        operations.count("migrations.list")


def test_a_done_migration_beside_the_old_host_is_read_again(cloud):
    """Nova moves the host and then marks the migration done: a server
    read just before the move and a migration read just after it show
    the old host beside a done migration (seen on Nova 34).  The server
    is read again, not reported failed."""
    down(cloud)
    server = cloud.server("compute1-vm1")
    (finish,) = cloud.gate_evacuations("finish")
    run(Evacuate(server.id, "compute1"))
    testing.wait_for(lambda: server.task_state is None
                     and server.vm_state == "active", timeout=10)
    assert server.host == "compute1"
    cloud.model.settings.latency["migrations.list"] = 0.6
    threading.Timer(0.2, finish.set).start()
    check = wait(server, timeout=0)
    assert (check["done"], check["host"]) == (True, server.host)
    assert server.host != "compute1"


def test_a_server_still_on_the_source_after_a_done_migration_settles(
        cloud, monkeypatch):
    """Only a server that still shows the source host SETTLE_SECONDS
    after its migration was seen done fails."""
    from instance_ha.actions import wait_for_server
    monkeypatch.setattr(wait_for_server, "SETTLE_SECONDS", 0.5)
    down(cloud)
    server = cloud.server("compute1-vm1")
    run(Evacuate(server.id, "compute1"))
    assert wait(server)["done"] is True
    with cloud.model.lock:
        server.host = "compute1"
    error = error_of(wait(server, timeout=5, interval=0.1))
    assert "finished but it is still on the source host" in error["reason"]


def test_wait_rides_out_a_503_and_a_hung_read(make_cloud):
    cloud = down(make_cloud(api_timeout=0.3))
    server = cloud.server("compute1-vm1")
    run(Evacuate(server.id, "compute1"))
    cloud.model.faults.add("servers.show", status=503, times=1)
    cloud.model.faults.add("migrations.list", timeout=1, times=1)
    assert wait(server)["done"] is True
    statuses = [(c.status, c.answered) for c in cloud.nova_calls()
                if c.operation in ("servers.show", "migrations.list")]
    assert (503, True) in statuses
    assert (None, False) in statuses
