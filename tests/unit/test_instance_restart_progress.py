"""What instance_restart_steps counts as already sent: the row's steps
Nova records, in the row's order, after the plan's newest instance
action."""

import pytest

from instance_ha.actions import instance_restart_steps as irs

RESIZED = ("reset_error", "stop", "start")


def listed(*names):
    """Instance actions as Nova lists them, newest first; ``names`` are
    oldest first, each request id req-<position>."""
    return [{"action": name, "request_id": f"req-{i}"}
            for i, name in reversed(list(enumerate(names)))]


@pytest.mark.parametrize("names, mark, done", [
    # Nothing since the plan.
    (["create", "stop", "start"], "req-2", 0),
    # History before the mark does not count.
    (["create", "resetState", "stop", "start", "lock"], "req-4", 0),
    (["create", "lock", "resetState"], "req-0", 1),
    (["create", "lock", "resetState", "stop"], "req-0", 2),
    (["create", "lock", "resetState", "stop", "start", "unlock"], "req-0",
     3),
    # Out of the row's order: only the leading steps count.
    (["create", "lock", "stop", "start"], "req-0", 0),
    # No instance action at plan time: every one counts.
    (["resetState", "stop"], None, 2),
    # A mark Nova no longer lists: nothing counts.
    (["create", "resetState", "stop"], "req-gone", 0),
])
def test_the_row_steps_nova_records_after_the_mark(names, mark, done):
    assert irs.recorded_steps(RESIZED, listed(*names), mark) == done


def test_reset_stopped_is_recorded_as_its_stop():
    actions = listed("create", "resetState", "stop")
    assert irs.recorded_steps(("reset_stopped",), actions, "req-0") == 1
    assert irs.recorded_steps(("stop", "start"), actions, "req-0") == 1


def test_a_case_that_is_no_instance_down_row_is_bad_input():
    action = irs.InstanceRestartSteps("abc", "error")
    result = action.run(None)
    assert result.is_error()
    assert result.error["reason"] == (
        "bad input: case must be an instance_down row (active, stopped, "
        "resized), not 'error'")


def test_the_action_is_plain_data():
    """Mistral rebuilds it on a remote executor with __new__ and its
    attributes."""
    action = irs.InstanceRestartSteps("abc", "resized", "req-1")
    assert vars(action) == {"server": "abc", "case": "resized",
                            "after_request": "req-1", "timeout": 300,
                            "interval": 1}
    rebuilt = irs.InstanceRestartSteps.__new__(irs.InstanceRestartSteps)
    vars(rebuilt).update(vars(action))
    rebuilt.check()
