"""The state table as data: the seed rows verbatim, the decisions, and
the classifier host_servers uses."""

import pytest

from instance_ha import state_table as st


def steps(event, before):
    row = st.row(event, before)
    return list(row.steps), row.after


def test_the_seed_table():
    """The seed rows: host down, instance down, process down."""
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
    ("error", 1, "skip", "instance-ha recovery", "resume_to_active"),
    ("error", 4, "skip", "instance-ha: x", "resume_to_stopped"),
    ("error", 4, "skip", "instance-ha evacuation from c1; case rescued",
     "resume_to_active"),
    ("error", 1, "skip", "instance-ha evacuation from c1; case stopped",
     "resume_to_stopped"),
    ("error", 1, "skip",
     "instance-ha evacuation from c1; case resized_was_stopped",
     "resume_to_stopped"),
    ("error", 1, "skip", "instance-ha evacuation from c1; case "
     "error_evacuate", "resume_to_error"),
    ("error", 1, "evacuate", "instance-ha evacuation from c1; case active",
     "resume_to_active"),
    ("error", 1, "skip", "instance-ha evacuation from c1; case nonsense",
     "resume_to_active"),
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


def test_a_failed_evacuation_is_evacuated_again_not_skipped():
    """NoValidHost leaves the server in error on the source host; with the
    evidence (its failed evacuation migration) it is no error VM."""
    row, reason = st.classify("error", 1, failed_evacuation=True)
    assert (list(row.steps), row.after) == (["evacuate"], "active")
    assert "failed" in reason
    row, _ = st.classify("error", 4, failed_evacuation=True)
    assert (list(row.steps), row.after) == (["evacuate", "stop"], "stopped")
    row, _ = st.classify("error", 1, failed_evacuation=True,
                         locked_reason="instance-ha evacuation from c1; "
                                       "case error_evacuate")
    assert row.before == "resume_to_error"


def test_lock_reason_round_trip():
    reason = st.lock_reason("compute1", "resized_was_stopped")
    assert reason == ("instance-ha evacuation from compute1; case "
                      "resized_was_stopped")
    assert st.case_in_lock(reason) == "resized_was_stopped"
    assert st.is_evacuation_lock(reason, "compute1")
    assert st.is_evacuation_lock("instance-ha evacuation from compute1",
                                 "compute1")
    assert not st.is_evacuation_lock(reason, "compute11")
    assert not st.is_evacuation_lock("bob: instance-ha evacuation from "
                                     "compute1", "compute1")
    assert st.case_in_lock("bob; case active") is None


@pytest.mark.parametrize("before, vm_state, expected", [
    ("active", "active", "active"),
    ("stopped", "stopped", "stopped"),
    # Reset to error first: Nova 34 boots a server evacuated from error.
    ("resized_was_stopped", "resized", "active"),
    ("resized_was_active", "resized", "active"),
    ("rescued", "rescued", "active"),
    ("shelved", "shelved", "active"),
    ("error_evacuate", "error", "active"),
    ("resume_to_stopped", "error", "active"),
    ("after_failed_evacuation_stopped", "error", "active"),
    ("error_skip", "error", None),
])
def test_evacuated_vm_state(before, vm_state, expected):
    row = st.row(st.HOST_DOWN, before)
    assert st.evacuated_vm_state(row, vm_state) == expected


def test_every_row_that_ends_stopped_after_error_stops_again():
    """What an evacuation leaves, followed by the row's later steps, is
    the row's state after (stop -> stopped, reset_error -> error)."""
    effect = {st.STOP: st.STOPPED, st.RESET_ERROR: st.ERROR,
              st.START: st.ACTIVE}
    for row in st.TABLE:
        if row.event != st.HOST_DOWN or st.EVACUATE not in row.steps:
            continue
        state = st.evacuated_vm_state(
            row, "stopped" if row.before == "stopped" else "error")
        for step in row.steps[row.steps.index(st.EVACUATE) + 1:]:
            state = effect[step]
        assert state == row.after, row


def test_every_host_down_step_has_the_code_that_carries_it_out():
    """recover_servers carries out each host-down row's steps around the
    evacuation from its STEPS table; a row naming another step is refused
    at import (state_table.KNOWN_STEPS)."""
    from instance_ha.actions import recover_servers

    for found in st.TABLE:
        if found.event != st.HOST_DOWN or not found.steps:
            continue
        assert found.steps == (found.before_evacuation + (st.EVACUATE,)
                               + found.after_evacuation)
        for step in found.before_evacuation:
            assert step in recover_servers.STEPS
            assert step in recover_servers.BEFORE_NAMES
        for step in found.after_evacuation:
            assert step in recover_servers.STEPS
            assert step in recover_servers.AFTER_NAMES


def test_every_instance_down_step_has_the_code_that_carries_it_out():
    """instance_restart_steps carries out each instance-down row's steps
    from its STEPS table, which knows exactly the steps KNOWN_STEPS
    lets a row have; the last step leaves the row's state after."""
    from instance_ha.actions import instance_restart_steps

    assert set(instance_restart_steps.STEPS) == \
        st.KNOWN_STEPS[st.INSTANCE_DOWN]["steps"]
    leaves = {st.STOP: st.STOPPED, st.START: st.ACTIVE,
              st.RESET_ERROR: st.ERROR, st.RESET_STOPPED: st.STOPPED}
    rows = [r for r in st.TABLE if r.event == st.INSTANCE_DOWN]
    assert [r.before for r in rows] == ["active", "stopped", "resized"]
    for found in rows:
        assert found.steps, found
        for step in found.steps:
            assert step in instance_restart_steps.STEPS, found
        assert leaves[found.steps[-1]] == found.after, found


def test_a_row_with_a_step_no_recovery_knows_is_refused():
    with pytest.raises(ValueError, match="no recovery knows the steps"):
        st._check([st.Row(st.HOST_DOWN, "x", (st.EVACUATE, "reboot"),
                          st.ACTIVE, "a step nobody carries out")])
    with pytest.raises(ValueError, match=r"instance_down/x: no recovery "
                       r"knows the steps \['reboot'\]"):
        st._check([st.Row(st.INSTANCE_DOWN, "x", (st.STOP, "reboot"),
                          st.ACTIVE, "a step nobody carries out")])
    with pytest.raises(ValueError, match="no recovery knows the steps"):
        st._check([st.Row(st.INSTANCE_DOWN, "x", (st.EVACUATE,),
                          st.ACTIVE, "a host-down step")])
    with pytest.raises(ValueError, match="evacuates once"):
        st._check([st.Row(st.HOST_DOWN, "x", (st.EVACUATE, st.EVACUATE),
                          st.ACTIVE, "twice")])
