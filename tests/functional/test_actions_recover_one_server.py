"""recover_servers, one server at a time (and a few side by side): what
the evacuation of one VM must be, whatever is run again or lost on the
way.  One evacuation per server and failure, sent below 2.95, looked at
again rather than sent again, and done only when Nova really is done.
The record's outcome and reason say what the batch made of it; the
simulator's call log says what was sent (``accepted_evacuations``: never
a second one)."""

import threading

import pytest
from actions_support import error_of
from actions_support import failed_host
from actions_support import plans
from actions_support import recover
from actions_support import run
from actions_support import topology

from instance_ha.actions import recover_servers
from instance_ha.actions.recover_servers import RecoverServers
from instance_ha.simcloud import microversion
from instance_ha.simcloud import model
from instance_ha.simcloud import testing

pytest_plugins = ("actions_support",)

FAST = {"timeout": 10, "interval": 0.1}
# RecoverServers.check() looks a server's case up in the state table
# without refusing one it does not know (a KeyError escapes the action
# instead of a "bad input" error), and does not check the vm_state an
# entry expects after the evacuation ("ACTIVE" is waited for in vain).
@pytest.fixture(autouse=True)
def fenced(pacemaker):
    """Pacemaker shows compute1 fenced."""
    return pacemaker


def one(cloud, batch=None, **kwargs):
    """recover_servers of compute1's one planned VM (or ``batch``): its
    record."""
    (record,) = recover(cloud, plans(cloud) if batch is None else batch,
                        **dict(FAST, **kwargs)).values()
    return record


def migrations_of(cloud, server):
    return [m for m in cloud.model.migrations if m.instance_uuid == server.id]


# -- microversions and what an evacuation leaves ------------------------------

def test_an_active_server_is_evacuated_at_2_94_and_stays_active(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    mark = cloud.mark()
    record = one(cloud)
    assert server.host in ("compute2", "compute3")
    assert record == {"id": server.id, "name": "vm", "priority": 0,
                      "group": None,
                      "outcome": "moved", "host": server.host,
                      "vm_state": "active",
                      "reason": f"running on {server.host} as active",
                      "left_locked": False}
    (call,) = cloud.nova_calls(mark, operation="evacuate")
    assert (call.microversion, call.status) == ("2.94", 200)
    (migration,) = migrations_of(cloud, server)
    assert (migration.status, migration.dest_compute) == ("done",
                                                          server.host)
    assert (server.vm_state, server.power_state, server.locked) == \
        ("active", 1, False)


def test_a_stopped_server_is_evacuated_below_2_95_and_comes_back_stopped(
        make_cloud):
    """Nova spawns it on the new host and powers it off at once: vm_state
    active with task_state powering-off on the way, as on Nova 34."""
    cloud = failed_host(make_cloud, [{"name": "off", "vm_state": "stopped"}],
                        others=("compute2",))
    server = cloud.server("off")
    seen = []
    original = cloud.model._evacuation_step

    def record(evacuation, index):
        original(evacuation, index)
        seen.append((server.vm_state, server.task_state, server.host))

    cloud.model._evacuation_step = record
    (plan,) = plans(cloud)
    assert (plan["steps"], plan["evacuated_vm_state"]) == (["evacuate"],
                                                           "stopped")
    result = one(cloud, [plan])
    assert (result["outcome"], result["host"], result["vm_state"]) == \
        ("moved", "compute2", "stopped")
    assert (server.host, server.vm_state, server.power_state) == \
        ("compute2", "stopped", 4)
    assert ("active", "powering-off", "compute1") in seen
    assert {c.microversion for c in cloud.nova_calls(
        operation="evacuate")} == {"2.94"}
    assert cloud.model.calls.count(operation="os-stop") == 0


def test_a_server_reset_to_error_comes_back_active_even_at_2_95(make_cloud):
    """Nova 34 ignores the 2.95 target state for a server in error (why
    the rows that reset to error and must end stopped stop it after)."""
    cloud = failed_host(make_cloud, [{"name": "off", "vm_state": "stopped"}],
                        others=("compute2",))
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
    cloud = failed_host(make_cloud, [{"name": "off", "vm_state": "stopped"}],
                        others=("compute2",))
    server = cloud.server("off")
    record = one(cloud)
    assert (record["outcome"], record["vm_state"]) == ("moved", "stopped")
    (call,) = cloud.nova_calls(operation="evacuate")
    assert (call.microversion, call.status) == ("2.60", 200)
    assert (server.host, server.vm_state, server.locked) == \
        ("compute2", "stopped", False)


@pytest.mark.parametrize("max_version, on_shared_storage, sent", [
    ((2, 13), False, "2.13"),
    ((2, 13), True, "2.13"),
    (None, True, "2.94"),
])
def test_target_host_and_shared_storage_only_below_2_14(
        make_cloud, monkeypatch, max_version, on_shared_storage, sent):
    """Nova's schema requires onSharedStorage below 2.14 and refuses it
    from 2.14 (400): a 200 says it was sent exactly where it exists."""
    if max_version:
        monkeypatch.setattr(microversion, "MAX_VERSION", max_version)
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    record = one(cloud, targets=["compute3"],
                 on_shared_storage=on_shared_storage)
    assert (record["outcome"], record["host"]) == ("moved", "compute3")
    assert [(c.microversion, c.status) for c in cloud.nova_calls(
        operation="evacuate")] == [(sent, 200)]
    assert server.host == "compute3"


# -- at most one evacuation, whatever is run again ----------------------------

def test_twice_is_one_evacuation(make_cloud):
    """The same input again, while the evacuation is under way and once
    it is over: waited for, then found moved; never sent again."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    (plan,) = plans(cloud)
    (spawn,) = cloud.gate_evacuations("spawn")
    first = one(cloud, [plan], timeout=0.3)
    assert (first["outcome"], first["left_locked"]) == ("failed", True)
    assert "still not evacuated from compute1 after 0.3 s" in \
        first["reason"]
    mark = cloud.mark()
    threading.Timer(0.3, spawn.set).start()
    second = one(cloud, [plan])
    assert (second["outcome"], second["host"]) == ("moved", server.host)
    assert "evacuate" not in cloud.operations(mark)
    assert plans(cloud) == []
    mark = cloud.mark()
    third = one(cloud, [plan])
    assert third == second
    assert "evacuate" not in cloud.operations(mark)
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}
    assert not server.locked


def test_the_same_input_right_after_the_post_is_not_sent_again(make_cloud):
    """Nova answers the POST with the migration still ``accepted``, before
    the conductor takes it; the server's task is rebuilding, but the
    input (listed before the POST) says no task.  The migration is no
    orphan then: the re-run reads the server and waits."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    (plan,) = plans(cloud)
    (schedule,) = cloud.gate_evacuations("schedule")
    first = one(cloud, [plan], timeout=0.2)
    assert first["outcome"] == "failed"
    assert [m.status for m in migrations_of(cloud, server)] == ["accepted"]
    assert server.task_state == "rebuilding"
    mark = cloud.mark()
    threading.Timer(0.3, schedule.set).start()
    second = one(cloud, [plan])
    assert second["outcome"] == "moved", (second, cloud.operations(mark))
    assert "evacuate" not in cloud.operations(mark)
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}


def test_an_accepted_migration_without_a_rebuild_task_is_an_orphan(
        make_cloud):
    """The loser of two racing evacuations stays ``accepted`` for good:
    with no rebuild task on the server (read to be sure) it is not waited
    for, and the server is evacuated."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    with cloud.model.lock:
        cloud.model.migrations.append(model.Migration(
            id=next(cloud.model._ids["migration"]), uuid="orphan",
            instance_uuid=server.id, source_compute="compute1",
            source_node="compute1", project_id=server.project_id,
            user_id=server.user_id, flavor_id=server.flavor.id))
    (plan,) = plans(cloud)
    mark = cloud.mark()
    record = one(cloud, [plan])
    assert record["outcome"] == "moved", record
    operations = cloud.operations(mark)
    assert operations.index("servers.show") < operations.index("evacuate")
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}
    assert sorted(m.status for m in migrations_of(cloud, server)) == [
        "accepted", "done"]


def test_a_rerun_after_a_crash_in_every_window(make_cloud, monkeypatch):
    """The executor dies after the lock, after the POST while Nova
    rebuilds, and while task_state is None but the host is still the
    source (Nova clears the task before it moves the host): each re-run,
    from a new listing or the same input, sends no second evacuation and
    takes task_state None for no answer."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    (plan,) = plans(cloud)
    spawn, after_spawn, finish = cloud.gate_evacuations(
        "spawn", "after_spawn", "finish")

    def crash(self, target):
        raise RuntimeError("executor lost")

    # After the lock, before the evacuation.
    with monkeypatch.context() as patch:
        patch.setattr(recover_servers.ServerRecovery, "_evacuate", crash)
        with pytest.raises(RuntimeError):
            run(RecoverServers([plan], "compute1", **FAST))
    assert (server.locked, server.task_state) == (True, None)
    assert cloud.model.calls.accepted_evacuations() == {}

    # After the POST: the first re-run takes the lock as its own (no lock
    # request), sends the evacuation and stops while Nova rebuilds.
    (locked,) = plans(cloud)
    assert locked["locked_reason"] == \
        "instance-ha evacuation from compute1; case active"
    mark = cloud.mark()
    stopped = one(cloud, [locked], timeout=0.2)
    assert stopped["outcome"] == "failed"
    assert "lock" not in cloud.operations(mark)
    assert server.task_state == "rebuilding"
    for batch in ([plan], plans(cloud)):
        mark = cloud.mark()
        record = one(cloud, batch, timeout=0.2)
        assert "still not evacuated from compute1" in record["reason"]
        assert "evacuate" not in cloud.operations(mark)

    # Spawned: task_state None, still on the source host.
    spawn.set()
    after_spawn.set()
    testing.wait_for(lambda: server.task_state is None
                     and server.vm_state == "active")
    assert server.host == "compute1"
    for batch in ([plan], plans(cloud)):
        assert batch[0]["task_state"] is None
        mark = cloud.mark()
        record = one(cloud, batch, timeout=0.3)
        assert (record["outcome"], record["host"], record["left_locked"]) \
            == ("failed", "compute1", True), record
        assert "still not evacuated from compute1" in record["reason"]
        assert "evacuate" not in cloud.operations(mark)

    # Listed just before Nova finishes, run just after: found moved.
    last = plans(cloud)
    finish.set()
    testing.wait_for(lambda: server.host != "compute1")
    mark = cloud.mark()
    record = one(cloud, last)
    assert (record["outcome"], record["left_locked"]) == ("moved", False)
    assert "evacuate" not in cloud.operations(mark)
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}
    assert not server.locked


def test_a_rerun_after_a_crash_between_the_reset_and_the_evacuation(
        make_cloud, monkeypatch):
    """A resized VM reset to error and left so: the next listing knows it
    by our lock's case, and it comes back active all the same."""
    cloud = failed_host(make_cloud, [{"name": "r", "vm_state": "resized",
                                      "power_state": 1}])
    server = cloud.server("r")

    def crash(self, target):
        raise RuntimeError("executor lost")

    with monkeypatch.context() as patch:
        patch.setattr(recover_servers.ServerRecovery, "_evacuate", crash)
        with pytest.raises(RuntimeError):
            run(RecoverServers(plans(cloud), "compute1", **FAST))
    assert (server.vm_state, server.locked) == ("error", True)
    (again,) = plans(cloud)
    assert (again["case"], again["steps"]) == ("resume_to_active",
                                              ["evacuate"]), again
    record = one(cloud, [again])
    assert (record["outcome"], record["vm_state"]) == ("moved", "active")
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}
    assert (server.vm_state, server.locked) == ("active", False)


def test_a_crash_after_the_move_and_before_the_unlock(make_cloud,
                                                      monkeypatch):
    """The VM runs elsewhere with our lock: no new listing shows it (the
    host recovery's unlock_evacuated releases it), and the same input
    again finds it moved and unlocks it, without another evacuation."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    (plan,) = plans(cloud)

    def crash(self, moved, record):
        raise RuntimeError("executor lost")

    with monkeypatch.context() as patch:
        patch.setattr(recover_servers.ServerRecovery, "_unlock", crash)
        with pytest.raises(RuntimeError):
            run(RecoverServers([plan], "compute1", **FAST))
    assert server.host != "compute1" and server.locked
    assert plans(cloud) == []
    mark = cloud.mark()
    record = one(cloud, [plan])
    assert (record["outcome"], record["host"], record["left_locked"]) == \
        ("moved", server.host, False)
    assert "evacuate" not in cloud.operations(mark)
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}
    assert not server.locked


def test_a_lost_answer_is_not_sent_again(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}],
                        entry={"api_timeout": 0.3})
    server = cloud.server("vm")
    cloud.model.faults.add("evacuate", timeout=2, apply=True, times=1)
    record = one(cloud)
    assert record["outcome"] == "moved", record
    assert [(c.status, c.answered) for c in cloud.nova_calls(
        operation="evacuate")] == [(200, False)]
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}
    assert len(migrations_of(cloud, server)) == 1


def test_a_503_is_retried_after_a_look(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    cloud.model.faults.add("evacuate", status=503, times=2)
    mark = cloud.mark()
    record = one(cloud)
    assert record["outcome"] == "moved", record
    assert [c.status for c in cloud.nova_calls(mark, operation="evacuate")] \
        == [503, 503, 200]
    # Each retry first reads the server and the host's evacuations.
    operations = cloud.operations(mark)
    first = operations.index("evacuate")
    assert operations[first:first + 7] == [
        "evacuate", "servers.show", "migrations.list", "evacuate",
        "servers.show", "migrations.list", "evacuate"]
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}


# -- Nova's refusals, per server ----------------------------------------------

def test_the_source_compute_still_up_is_refused_per_server(make_cloud):
    """Pacemaker says fenced, Nova says its compute service is up: Nova's
    refusal is each server's reason, and each keeps our lock."""
    cloud = make_cloud(topology({"compute1": [{"name": "a"}, {"name": "b"}],
                                 "compute2": []}))
    records = recover(cloud, plans(cloud), **FAST)
    assert sorted(records) == ["a", "b"]
    for name, record in records.items():
        server = cloud.server(name)
        assert record == {
            "id": server.id, "name": name, "priority": 0, "group": None,
            "outcome": "failed", "host": "compute1", "vm_state": "active",
            "left_locked": True,
            "reason": f"evacuate_server: evacuate_server of server "
                      f"{server.id}: HTTP 400: Compute service of compute1 "
                      "is still in use."}
        assert (server.host, server.locked) == ("compute1", True)
    assert cloud.model.calls.accepted_evacuations() == {}


def test_an_unknown_target_and_an_unknown_server(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    (plan,) = plans(cloud)
    record = one(cloud, [plan], targets=["nohost"])
    assert record["outcome"] == "failed"
    assert record["reason"].startswith("evacuate_server: ")
    assert "HTTP 404: Compute host nohost not found." in record["reason"]
    assert (record["left_locked"], server.host) == (True, "compute1")
    missing = "8d7cf0b4-1111-4222-8333-944445555666"
    records = recover(cloud, [dict(plan, locked=True), dict(
        plan, id=missing, name="gone", locked=False)], **FAST)
    assert records["vm"]["outcome"] == "moved"
    gone = records["gone"]
    assert (gone["outcome"], gone["left_locked"]) == ("failed", False)
    assert gone["reason"].startswith("lock_server: ")
    assert f"Instance {missing} could not be found." in gone["reason"]
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}


def test_a_500_is_reported_once(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    cloud.model.faults.add("evacuate", status=500)
    record = one(cloud)
    assert record["outcome"] == "failed"
    assert "HTTP 500" in record["reason"]
    assert record["left_locked"] is True
    assert cloud.model.calls.count(operation="evacuate") == 1


def test_resized_is_refused_by_nova_until_reset(make_cloud, monkeypatch):
    """The row's reset_error is what makes Nova take a resized VM (which
    then comes back active: Nova boots a server evacuated from error)."""
    cloud = failed_host(make_cloud, [{"name": "r", "vm_state": "resized",
                                      "power_state": 1}])
    server = cloud.server("r")
    (plan,) = plans(cloud)
    assert plan["steps"] == ["reset_error", "evacuate"]
    with monkeypatch.context() as patch:
        patch.setitem(recover_servers.STEPS, "reset_error",
                      lambda recovery, step_name: None)
        refused = one(cloud, [plan])
    assert refused["outcome"] == "failed"
    assert refused["reason"].startswith("evacuate_server: ")
    assert "HTTP 409" in refused["reason"]
    assert "vm_state resized" in refused["reason"]
    assert server.vm_state == "resized"
    (plan,) = plans(cloud)
    mark = cloud.mark()
    record = one(cloud, [plan])
    assert (record["outcome"], record["vm_state"]) == ("moved", "active")
    operations = cloud.operations(mark)
    assert operations.index("os-resetState") < operations.index("evacuate")
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}


@pytest.mark.parametrize("kwargs", [
    {"source_host": ""}, {"source_host": None},
    {"servers": "vm"}, {"servers": [{"name": "vm"}]},
    {"targets": "compute2"}, {"targets": ["compute1"]}, {"targets": [""]},
    {"on_shared_storage": "yes"},
    {"timeout": "10"}, {"interval": 0},
    {"servers": [{"id": "x"}]},
    {"servers": [{"id": "x", "case": "ACTIVE"}]},
    {"servers": [{"id": "x", "case": "active",
                  "evacuated_vm_state": "ACTIVE"}]},
])
def test_bad_input(make_cloud, kwargs):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    given = dict({"servers": plans(cloud), "source_host": "compute1"},
                 **kwargs)
    mark = cloud.mark()
    assert error_of(run(RecoverServers(**given)))["reason"].startswith(
        "bad input")
    assert cloud.nova_calls(mark) == []


# -- the wait: done only when Nova is done ------------------------------------

def test_the_wait_fails_fast_on_error_with_novas_fault(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    cloud.model.faults.add("evacuate", outcome="error")
    record = one(cloud, timeout=30)
    # Failed on Nova's fault, not at the end of the 30 s timeout.
    assert record["reason"].startswith(
        f"wait_until_moved: server {server.id} its evacuation failed: "
        "Injected failure: the rebuild failed on compute"), record
    assert (record["outcome"], record["vm_state"]) == ("failed", "error")
    assert server.fault["message"] in record["reason"]


def test_the_wait_fails_fast_on_no_valid_host(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "lonely"}], others=())
    record = one(cloud, timeout=30)
    assert "No valid host was found" in record["reason"]
    assert "still not evacuated" not in record["reason"]
    assert (record["outcome"], record["host"], record["left_locked"]) == \
        ("failed", "compute1", True)


def test_the_wait_without_an_evacuation(make_cloud):
    """An entry that says rebuilding, and no evacuation from the host:
    nothing to wait for, and it says so at once."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    (plan,) = plans(cloud)
    record = one(cloud, [dict(plan, task_state="rebuilding")], timeout=30)
    assert record["outcome"] == "failed"
    assert "no evacuation from this host is under way" in record["reason"]
    assert cloud.model.calls.accepted_evacuations() == {}


def test_the_wait_reports_a_wrong_final_state(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    (plan,) = plans(cloud)
    record = one(cloud, [dict(plan, evacuated_vm_state="stopped")])
    assert record["outcome"] == "failed"
    assert "ended active, expected stopped" in record["reason"]
    # Off the failed host, the lock is released all the same.
    assert record["left_locked"] is False


def test_the_wait_times_out_and_each_poll_is_one_listing(make_cloud):
    """While Nova rebuilds, a poll is one listing of the host's
    evacuations; the server itself is not read."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    (gate,) = cloud.gate_evacuations("after_spawn")
    batch = plans(cloud)
    mark = cloud.mark()
    record = one(cloud, batch, timeout=0.6)
    gate.set()
    assert record["reason"].startswith(
        f"wait_until_moved: server {server.id} still not evacuated from "
        "compute1 after 0.6 s")
    operations = cloud.operations(mark)
    assert operations[:3] == ["lock", "migrations.list", "evacuate"]
    polls = operations[3:]
    assert 2 <= len(polls) <= 8, operations
    assert set(polls) == {"migrations.list"}


def finish_on_the_source_for(cloud, server, seconds):
    """Nova's order turned round: the migration is done, and the server
    reads as on the source host ``seconds`` longer (None: for good)."""
    original = cloud.model._evac_finish

    def finish(evacuation):
        result = original(evacuation)
        destination = server.host
        server.host = "compute1"
        if seconds is not None:
            def move():
                with cloud.model.lock:
                    server.host = destination
            threading.Timer(seconds, move).start()
        return result

    cloud.model._evac_finish = finish


def test_a_done_migration_beside_the_old_host_is_read_again(make_cloud):
    """A done migration and a read of the server that still shows the old
    host (a read of the server just before the move and a read of the
    migrations just after it show that on Nova 34): the server is read
    again, not reported failed."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    finish_on_the_source_for(cloud, server, 0.5)
    mark = cloud.mark()
    record = one(cloud)
    assert record["outcome"] == "moved", record
    assert record["host"] == server.host != "compute1"
    assert len(cloud.nova_calls(mark, operation="servers.show")) >= 2


def test_a_server_still_on_the_source_after_a_done_migration_settles(
        make_cloud, monkeypatch):
    """Only a server that still shows the source host SETTLE_SECONDS
    after its migration was seen done fails."""
    monkeypatch.setattr(recover_servers, "SETTLE_SECONDS", 0.5)
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    server = cloud.server("vm")
    finish_on_the_source_for(cloud, server, None)
    mark = cloud.mark()
    record = one(cloud)
    assert record["reason"] == (
        f"wait_until_moved: server {server.id} its evacuation finished "
        "but it is still on the source host")
    assert (record["outcome"], record["host"], record["left_locked"]) == \
        ("failed", "compute1", True)
    reads = cloud.nova_calls(mark, operation="servers.show")
    assert len(reads) >= 3
    assert reads[-1].time - reads[0].time >= 0.5


def test_the_wait_rides_out_a_503_and_a_hung_read(make_cloud, monkeypatch):
    cloud = failed_host(make_cloud, [{"name": "vm"}],
                        entry={"api_timeout": 0.3})
    original = recover_servers.ServerRecovery._evacuate

    def evacuate(self, target):
        sent = original(self, target)
        cloud.model.faults.add("migrations.list", timeout=1, times=1)
        cloud.model.faults.add("servers.show", status=503, times=1)
        return sent

    monkeypatch.setattr(recover_servers.ServerRecovery, "_evacuate",
                        evacuate)
    mark = cloud.mark()
    record = one(cloud)
    assert record["outcome"] == "moved", record
    statuses = [(c.operation, c.status, c.answered)
                for c in cloud.nova_calls(mark)]
    assert ("migrations.list", None, False) in statuses
    assert ("servers.show", 503, True) in statuses
    assert statuses.index(("migrations.list", None, False)) > \
        statuses.index(("evacuate", 200, True))
