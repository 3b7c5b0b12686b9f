"""The state table as data: the seed rows verbatim, the decisions, and
the classifier host_servers uses."""

import pytest

from instance_ha import state_table as st


def steps(event, before):
    row = st.row(event, before)
    return list(row.steps), row.after


def test_the_seed_table():
    """evacuation_patterns.txt and resized_evacuation_mail.txt."""
    assert steps(st.INSTANCE_DOWN, "active") == (["stop", "start"],
                                                 "active")
    assert steps(st.INSTANCE_DOWN, "stopped") == (["reset_stopped"],
                                                  "stopped")
    assert steps(st.INSTANCE_DOWN, "resized") == (
        ["reset_error", "stop", "start"], "active")
    assert steps(st.PROCESS_DOWN, "any") == (["service_disable"], None)
    assert steps(st.HOST_DOWN, "active") == (["evacuate"], "active")
    assert steps(st.HOST_DOWN, "stopped") == (["evacuate"], "stopped")
    assert steps(st.HOST_DOWN, "resized_was_active") == (
        ["reset_error", "evacuate"], "active")
    assert steps(st.HOST_DOWN, "resized_was_stopped") == (
        ["reset_error", "evacuate", "stop"], "stopped")


def test_rows_are_unique_and_well_formed():
    keys = [(row.event, row.before) for row in st.TABLE]
    assert len(keys) == len(set(keys))
    vocabulary = {st.EVACUATE, st.STOP, st.START, st.RESET_ERROR,
                  st.RESET_STOPPED, st.SERVICE_DISABLE}
    for row in st.TABLE:
        assert set(row.steps) <= vocabulary, row
        assert row.note
        if row.event == st.HOST_DOWN:
            assert (row.plan == "evacuate") == (row.after is not None)
            assert row.steps.count(st.EVACUATE) <= 1


@pytest.mark.parametrize("vm_state, power, policy, locked_reason, before", [
    ("active", 1, "skip", None, "active"),
    ("stopped", 4, "skip", None, "stopped"),
    ("resized", 1, "skip", None, "resized_was_active"),
    ("resized", 4, "skip", None, "resized_was_stopped"),
    ("error", 0, "skip", None, "error_skip"),
    ("error", 0, "evacuate", None, "error_evacuate"),
    ("error", 0, "skip", "bob", "error_skip"),
    ("error", 1, "skip", "instance-ha recovery", "error_reset_by_us"),
    ("error", 4, "skip", "instance-ha: x", "error_reset_by_us_stopped"),
    ("paused", 3, "skip", None, "paused"),
    ("suspended", 7, "skip", None, "suspended"),
    ("rescued", 1, "skip", None, "rescued"),
    ("shelved", 4, "skip", None, "shelved"),
    ("shelved_offloaded", 4, "skip", None, "shelved_offloaded"),
    ("building", 0, "skip", None, "building"),
    ("soft-delete", 4, "skip", None, "deleted"),
    ("deleted", 0, "skip", None, "deleted"),
    ("weird", 0, "skip", None, "unknown"),
])
def test_host_down_case(vm_state, power, policy, locked_reason, before):
    assert st.host_down_case(vm_state, power, policy, locked_reason) == \
        before


def test_decisions_for_states_nova_will_not_evacuate():
    for state in ("paused", "suspended", "rescued"):
        row, _ = st.classify(state, 1)
        assert (list(row.steps), row.after) == (
            ["reset_error", "evacuate"], "active")
    row, _ = st.classify("shelved", 4)
    assert (list(row.steps), row.after) == (
        ["reset_error", "evacuate", "stop"], "stopped")
    for state in ("shelved_offloaded", "building", "deleted"):
        row, reason = st.classify(state, 0)
        assert (row.plan, row.steps, row.after) == ("skip", (), None)
        assert reason


def test_error_policy():
    row, reason = st.classify("error", 0)
    assert row.plan == "skip"
    assert "error_servers=skip" in reason
    row, _ = st.classify("error", 0, error_servers="evacuate")
    assert (list(row.steps), row.after) == (["evacuate", "reset_error"],
                                            "error")


def test_a_task_under_way_is_named_not_acted_on():
    row, reason = st.classify("active", 1, task_state="powering-off")
    assert list(row.steps) == ["evacuate"]
    assert "task_state powering-off" in reason
    _, reason = st.classify("building", 0, task_state="spawning")
    assert "spawning" not in reason


@pytest.mark.parametrize("before, power, keeps_off, expected", [
    ("active", 1, True, "active"),
    ("active", 1, False, "active"),
    ("stopped", 4, False, "stopped"),
    ("resized_was_stopped", 4, True, "stopped"),
    ("resized_was_stopped", 4, False, "active"),
    ("error_evacuate", 0, True, "active"),
    ("error_skip", 0, True, None),
])
def test_evacuated_vm_state(before, power, keeps_off, expected):
    row = st.row(st.HOST_DOWN, before)
    assert st.evacuated_vm_state(row, power, keeps_off) == expected
