"""lock and unlock: never take over or release someone else's lock."""

import pytest
from actions_support import error_of
from actions_support import run
from actions_support import topology

from instance_ha.actions.lock import Lock
from instance_ha.actions.unlock import Unlock
from instance_ha.simcloud import microversion

pytest_plugins = ("actions_support",)


def locked_cloud(make_cloud):
    return make_cloud(topology({"compute1": [
        {"name": "free"},
        {"name": "bobs", "locked": True,
         "locked_reason": "bob: forensic hold"},
    ]}))


def test_lock_then_lock_again(cloud):
    server = cloud.server("compute1-vm1")
    first = run(Lock(server.id))
    assert first == {"server": server.id, "locked_by_us": True,
                     "was_locked": False, "changed": True,
                     "locked_reason": "instance-ha recovery"}
    assert (server.locked, server.locked_reason) == \
        (True, "instance-ha recovery")
    mark = cloud.mark()
    second = run(Lock(server.id))
    assert second == dict(first, changed=False)
    assert cloud.operations(mark) == ["servers.show"]
    assert cloud.model.calls.count(operation="lock") == 1
    (call,) = cloud.nova_calls(operation="lock")
    assert call.microversion == "2.96"


def test_our_reason_always_carries_the_mark(cloud):
    server = cloud.server("compute1-vm1")
    result = run(Lock(server.id, reason="host compute1 failed"))
    assert result["locked_reason"] == "instance-ha: host compute1 failed"
    assert server.locked_reason == "instance-ha: host compute1 failed"


def test_someone_elses_lock_is_left_alone(make_cloud):
    cloud = locked_cloud(make_cloud)
    bobs = cloud.server("bobs")
    result = run(Lock(bobs.id))
    assert result == {"server": bobs.id, "locked_by_us": False,
                      "was_locked": True, "changed": False,
                      "locked_reason": "bob: forensic hold"}
    assert bobs.locked_reason == "bob: forensic hold"
    # Even told it was ours, unlock checks the reason Nova shows.
    result = run(Unlock(bobs.id, True))
    assert result["unlocked"] is False
    assert "bob: forensic hold" in result["reason"]
    assert bobs.locked is True
    assert cloud.model.calls.count(operation="lock") == 0
    assert cloud.model.calls.count(operation="unlock") == 0


def test_unlock_what_we_locked_once(cloud):
    server = cloud.server("compute1-vm1")
    run(Lock(server.id))
    first = run(Unlock(server.id, True))
    assert first == {"server": server.id, "unlocked": True,
                     "changed": True, "kept": False,
                     "reason": "unlocked the lock instance-ha set"}
    assert server.locked is False
    second = run(Unlock(server.id, True))
    assert (second["unlocked"], second["changed"]) == (True, False)
    assert cloud.model.calls.count(operation="unlock") == 1


def test_unlock_not_ours_sends_nothing(cloud):
    server = cloud.server("compute1-vm1")
    server.locked, server.locked_reason = True, "instance-ha recovery"
    mark = cloud.mark()
    result = run(Unlock(server.id, False))
    assert result["unlocked"] is False
    assert cloud.operations(mark) == []
    assert server.locked is True


def test_lock_below_2_73_has_no_reason(cloud, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 60))
    server = cloud.server("compute1-vm1")
    result = run(Lock(server.id))
    assert (result["locked_by_us"], result["changed"]) == (True, True)
    assert (server.locked, server.locked_reason) == (True, None)
    assert run(Unlock(server.id, True))["changed"] is True
    assert server.locked is False


def test_lock_needs_2_9(cloud, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 8))
    error = error_of(run(Lock(cloud.server("compute1-vm1").id)))
    assert "needs compute API microversion 2.9" in error["reason"]


def test_unknown_server(cloud):
    missing = "8d7cf0b4-1111-4222-8333-944445555666"
    for action in (Lock(missing), Unlock(missing, True)):
        error = error_of(run(action))
        assert error["server"] == missing
        assert error["code"] == 404
        assert f"Instance {missing} could not be found." in error["reason"]


@pytest.mark.parametrize("action", [
    Lock(""), Lock(None), Lock("x", reason=""), Unlock("x", "yes"),
    Unlock(None, True),
])
def test_bad_input(cloud, action):
    mark = cloud.mark()
    assert error_of(run(action))["reason"].startswith("bad input")
    assert len(cloud.model.calls) == mark


def test_lock_retries_a_409_task_in_progress(cloud):
    server = cloud.server("compute1-vm1")
    cloud.model.faults.add(
        "lock", status=409, times=1,
        message=f"Cannot 'lock' instance {server.id} while it is in "
                "task_state powering-off")
    assert run(Lock(server.id))["locked_by_us"] is True
    assert [c.status for c in cloud.nova_calls(operation="lock")] == \
        [409, 202]


def test_lock_reports_a_plain_409(cloud):
    server = cloud.server("compute1-vm1")
    cloud.model.faults.add("lock", status=409)
    error = error_of(run(Lock(server.id)))
    assert error["code"] == 409
    assert "There was a conflict" in error["reason"]
    assert cloud.model.calls.count(operation="lock") == 1


def test_unlock_reports_a_500_and_keeps_the_lock(cloud):
    server = cloud.server("compute1-vm1")
    run(Lock(server.id))
    cloud.model.faults.add("unlock", status=500)
    error = error_of(run(Unlock(server.id, True)))
    assert (error["server"], error["code"]) == (server.id, 500)
    assert server.locked is True


def test_a_server_left_on_the_failed_host_keeps_our_lock(cloud):
    """A failed evacuation: the next recovery of the host finds the
    server under our lock, whose reason names its case."""
    server = cloud.server("compute1-vm1")
    run(Lock(server.id, "instance-ha evacuation from compute1; case "
                        "active"))
    kept = run(Unlock(server.id, True, keep_on_host="compute1"))
    assert (kept["unlocked"], kept["kept"], kept["changed"]) == \
        (False, True, False)
    assert server.locked is True
    assert server.locked_reason == \
        "instance-ha evacuation from compute1; case active"
    released = run(Unlock(server.id, True, keep_on_host="compute2"))
    assert (released["unlocked"], released["kept"]) == (True, False)
    assert server.locked is False
