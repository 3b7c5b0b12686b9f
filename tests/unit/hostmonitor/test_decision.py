"""The decisions and the safety gate, on crm_mon output made by Pacemaker's
tools and fence histories placed around the recorded failures."""

import dataclasses
import datetime

import pytest

from instance_ha.hostmonitor import decision

POLICY = decision.Policy()
SECOND = datetime.timedelta(seconds=1)


def decide(status, events=None, policy=POLICY, memory=None, now=None):
    if events is not None:
        status = status.with_fence_events(events)
    return decision.assess(status, policy, memory, now)


def test_all_online(mon):
    assessment = decide(mon("remotes-online"), ())
    assert [(v.name, v.decision) for v in assessment.verdicts] == [
        ("cn1", "ignored"), ("rn1", "online"), ("rn2", "online"),
        ("rn3", "online")]
    assert assessment.failures == () and assessment.held is None
    assert "DC" in assessment.verdict("cn1").reason


@pytest.mark.parametrize("fixture", ["rn1-lost", "rn1-lost.legacy"])
def test_lost_not_fenced_is_unsafe(mon, history, fixture):
    # Even with a successful fence event in the history: unclean wins.
    assessment = decide(mon(fixture), history("rn1-after-failure"))
    rn1 = assessment.verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "unclean" in rn1.reason and "not safe" in rn1.reason
    assert assessment.to_trigger == ()


def test_unclean_with_fencing_under_way(mon, history):
    rn1 = decide(mon("rn1-lost"), history("rn1-pending")).verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "fencing under way" in rn1.reason


def test_simulated_fence_still_unclean_is_unsafe(mon, history):
    # crm_simulate fenced it but did not record node_fenced: Pacemaker
    # still calls it unclean, so it is not fenced for us.
    rn1 = decide(mon("rn1-fenced-sim"),
                 history("rn1-after-failure")).verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED


@pytest.mark.parametrize("fixture", ["rn1-fenced", "rn1-fenced.legacy"])
def test_fenced_after_failure_is_safe(mon, history, fixture):
    events = history("rn1-after-failure")
    assessment = decide(mon(fixture), events)
    rn1 = assessment.verdict("rn1")
    assert rn1.decision == decision.FAILED_FENCED
    assert rn1.fenced_at == events[0].completed
    assert "fenced (reboot)" in rn1.reason
    assert "connection rn1 operation history" in rn1.reason
    assert assessment.to_trigger == (rn1,)
    assert [v.decision for v in assessment.verdicts
            if v.name != "rn1"] == ["ignored", "online", "online"]


def test_fenced_in_the_same_second_as_the_failure(mon, history):
    rn1 = decide(mon("rn1-fenced"),
                 history("rn1-same-second")).verdict("rn1")
    assert rn1.decision == decision.FAILED_FENCED


def test_fence_history_inside_crm_mon_output(mon):
    assessment = decide(mon("rn1-fenced+history"))
    assert assessment.verdict("rn1").decision == decision.FAILED_FENCED


def test_no_fence_history_is_unsafe(mon):
    rn1 = decide(mon("rn1-fenced")).verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "no fence history" in rn1.reason


def test_never_fenced_is_unsafe(mon):
    rn1 = decide(mon("rn1-fenced"), ()).verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "never fenced" in rn1.reason


def test_stale_fence_is_unsafe(mon, history):
    rn1 = decide(mon("rn1-fenced"), history("rn1-stale")).verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "stale" in rn1.reason


def test_fencing_failed_after_the_failure_is_unsafe(mon, history):
    rn1 = decide(mon("rn1-fenced"), history("rn1-failed")).verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "stale" in rn1.reason  # the only success predates the failure


def test_fencing_failed_and_never_succeeded(mon, history):
    failed_only = tuple(e for e in history("rn1-failed")
                        if e.status == "failed")
    rn1 = decide(mon("rn1-fenced"), failed_only).verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "fencing failed" in rn1.reason


def test_host_back_after_fence_then_stopped_is_unsafe(mon, history):
    # The fence is real and after the failure, but the connection worked
    # again after it: the host is down now for another reason.
    rn1 = decide(mon("rn1-returned-stopped"),
                 history("rn1-after-failure")).verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "stale" in rn1.reason


def test_connection_starting_is_not_online(mon, history):
    status = mon("rn1-starting")
    assert status.node("rn1").online is True
    unfenced = decide(status, ()).verdict("rn1")
    assert unfenced.decision == decision.FAILED_UNFENCED
    assert "connection rn1 is Starting" in unfenced.reason
    # Fenced after its failure and now reconnecting: still a failed host.
    fenced = decide(status, history("rn1-after-failure")).verdict("rn1")
    assert fenced.decision == decision.FAILED_FENCED


def test_no_quorum_is_unsafe(mon, history):
    assessment = decide(mon("rn1-fenced-noquorum"),
                        history("rn1-after-failure"))
    rn1 = assessment.verdict("rn1")
    assert rn1.decision == decision.FAILED_UNFENCED
    assert "no quorum" in rn1.reason
    assert assessment.quorum is False
    assert assessment.to_trigger == ()
    assert assessment.verdict("rn2").decision == decision.ONLINE


def test_no_quorum_triggers_nothing_even_when_fenced(mon, history):
    status = dataclasses.replace(
        mon("rn1-fenced"), quorum=False).with_fence_events(
            history("rn1-after-failure"))
    assessment = decision.assess(status, POLICY)
    assert assessment.failures == ()
    assert assessment.to_trigger == ()


def test_two_of_three_down_with_threshold_50_is_held(mon, history):
    policy = decision.Policy(threshold_percent=50)
    assessment = decide(mon("rn1-rn2-fenced"), history("all-rn1-rn2"),
                        policy=policy)
    assert [v.name for v in assessment.failures] == ["rn1", "rn2"]
    assert assessment.held.startswith("2 of 3 compute hosts are down (67%")
    assert assessment.to_trigger == ()
    assert all("HELD" in v.reason for v in assessment.failures)


def test_two_of_three_down_under_a_higher_threshold(mon, history):
    policy = decision.Policy(threshold_percent=70)
    assessment = decide(mon("rn1-rn2-fenced"), history("all-rn1-rn2"),
                        policy=policy)
    assert assessment.held is None
    assert [v.name for v in assessment.to_trigger] == ["rn1", "rn2"]


def test_one_of_three_down_is_not_held(mon, history):
    assessment = decide(mon("rn1-fenced"), history("rn1-after-failure"))
    assert assessment.held is None


def test_standby_and_maintenance_are_not_failures(mon):
    assessment = decide(mon("rn2-standby-rn3-maintenance"), ())
    assert assessment.verdict("rn2").decision == decision.STANDBY
    assert assessment.verdict("rn3").decision == decision.MAINTENANCE
    assert assessment.verdict("rn1").decision == decision.ONLINE


def test_members_are_not_computes_by_default(mon):
    cn3 = decide(mon("members-cn3-lost"), ()).verdict("cn3")
    assert cn3.decision == decision.IGNORED
    assert "member" in cn3.reason


def test_configured_member_compute_lost(mon):
    policy = decision.Policy(computes=("cn3",))
    assessment = decide(mon("members-cn3-lost"), (), policy=policy)
    assert assessment.verdict("cn3").decision == decision.FAILED_UNFENCED
    assert assessment.verdict("cn2").decision == decision.IGNORED


def test_member_fenced_but_never_seen_up_is_unsafe(mon, history):
    policy = decision.Policy(computes=("cn3",))
    cn3 = decide(mon("members-cn3-fenced"), history("cn3"),
                 policy=policy).verdict("cn3")
    assert cn3.decision == decision.FAILED_UNFENCED
    assert "nothing says when it was last up" in cn3.reason


@pytest.mark.parametrize("fixture", ["members-cn3-fenced",
                                     "members-cn3-fenced.legacy"])
def test_member_seen_up_then_fenced_is_safe(mon, history, fixture):
    policy = decision.Policy(computes=("cn3",))
    events = history("cn3")
    fenced_at = events[0].completed
    memory = decision.Memory()
    memory.observe(mon("members-online"), fenced_at - 30 * SECOND)
    cn3 = decide(mon(fixture), events, policy=policy,
                 memory=memory).verdict("cn3")
    assert cn3.decision == decision.FAILED_FENCED
    assert "seen online by this monitor" in cn3.reason
    # Seen up after that fence: the fence is stale.
    memory.observe(mon("members-online"), fenced_at + 30 * SECOND)
    cn3 = decide(mon(fixture), events, policy=policy,
                 memory=memory).verdict("cn3")
    assert cn3.decision == decision.FAILED_UNFENCED


def test_seen_lost_then_clean_is_fenced_only_when_asked_for(mon):
    memory = decision.Memory()
    start = datetime.datetime(2026, 11, 21, 6, 0, tzinfo=datetime.timezone.utc)
    memory.observe(mon("members-online"), start)
    memory.observe(mon("members-cn3-lost"), start + 5 * SECOND)
    fenced = mon("members-cn3-fenced")
    memory.observe(fenced, start + 10 * SECOND)
    cn3 = decide(fenced, None, policy=decision.Policy(computes=("cn3",)),
                 memory=memory).verdict("cn3")
    assert cn3.decision == decision.FAILED_UNFENCED
    assert "infer_fencing is off" in cn3.reason
    policy = decision.Policy(computes=("cn3",), infer_fencing=True)
    cn3 = decide(fenced, None, policy=policy, memory=memory).verdict("cn3")
    assert cn3.decision == decision.FAILED_FENCED
    assert cn3.fenced_at == start + 10 * SECOND
    assert "seen lost (unclean)" in cn3.reason


def test_controllers_are_never_computes(mon, history):
    policy = decision.Policy(computes=("*",), controllers=("cn*", "rn1"))
    assessment = decide(mon("rn1-fenced"), history("rn1-after-failure"),
                        policy=policy)
    assert assessment.verdict("rn1").decision == decision.IGNORED
    assert "controller" in assessment.verdict("rn1").reason
    assert assessment.verdict("cn1").decision == decision.IGNORED
    assert assessment.verdict("rn2").decision == decision.ONLINE


def test_compute_pattern(mon):
    policy = decision.Policy(computes=("rn[12]",))
    assessment = decide(mon("remotes-online"), (), policy=policy)
    assert assessment.verdict("rn3").decision == decision.IGNORED
    assert "not a configured compute host (rn[12])" in \
        assessment.verdict("rn3").reason


def test_every_decision_is_known_and_reasons_are_one_line(mon, history):
    cases = [("remotes-online", "rn1-stale"), ("rn1-lost", "rn1-pending"),
             ("rn1-fenced", "rn1-after-failure"),
             ("rn1-rn2-fenced", "all-rn1-rn2"),
             ("rn2-standby-rn3-maintenance", "rn1-stale"),
             ("rn1-starting", "rn1-stale")]
    seen = set()
    for status, events in cases:
        for verdict in decide(mon(status), history(events)).verdicts:
            assert verdict.decision in decision.DECISIONS
            assert verdict.reason and "\n" not in verdict.reason
            seen.add(verdict.decision)
    assert seen == set(decision.DECISIONS)


def test_as_dict_shape(mon, history):
    assessment = decide(mon("rn1-fenced"), history("rn1-after-failure"))
    data = assessment.as_dict()
    assert list(data) == ["quorum", "nodes"]
    assert data["quorum"] is True
    assert all(list(n) == ["name", "type", "decision", "reason"]
               for n in data["nodes"])


@pytest.mark.parametrize("kwargs", [{"threshold_percent": 101},
                                    {"threshold_percent": -1},
                                    {"debounce": 0}])
def test_policy_validation(kwargs):
    with pytest.raises(ValueError):
        decision.Policy(**kwargs)


def test_debounce(mon, history):
    debounce = decision.Debounce(2)
    fenced = decide(mon("rn1-fenced"), history("rn1-after-failure"))
    online = decide(mon("remotes-online"), ())
    assert "rn1" not in {v.name for v in debounce.update(fenced)}
    stable = {v.name: v.decision for v in debounce.update(fenced)}
    assert stable["rn1"] == decision.FAILED_FENCED
    # A different decision restarts the count.
    assert "rn1" not in {v.name for v in debounce.update(online)}
    assert "rn1" not in {v.name for v in debounce.update(fenced)}
    # So does another failure (another fencing time).
    other = dataclasses.replace(
        fenced, verdicts=tuple(
            dataclasses.replace(v, fenced_at=v.fenced_at + SECOND)
            if v.name == "rn1" else v for v in fenced.verdicts))
    assert "rn1" not in {v.name for v in debounce.update(other)}
    assert "rn1" in {v.name for v in debounce.update(other)}


def test_debounce_of_one_read(mon, history):
    fenced = decide(mon("rn1-fenced"), history("rn1-after-failure"))
    stable = decision.Debounce(1).update(fenced)
    assert [v.decision for v in stable if v.name == "rn1"] == [
        decision.FAILED_FENCED]


def test_memory_and_debounce_survive_json(mon, history):
    import json

    memory = decision.Memory()
    start = datetime.datetime(2026, 11, 21, 6, 0, tzinfo=datetime.timezone.utc)
    memory.observe(mon("members-online"), start)
    memory.observe(mon("members-cn3-lost"), start + SECOND)
    restored = decision.Memory.from_dict(
        json.loads(json.dumps(memory.as_dict())))
    assert restored == memory
    assert restored.seen_lost == {"cn3": start + SECOND}

    debounce = decision.Debounce(2)
    fenced = decide(mon("rn1-fenced"), history("rn1-after-failure"))
    debounce.update(fenced)
    again = decision.Debounce.from_dict(
        2, json.loads(json.dumps(debounce.as_dict())))
    assert "rn1" in {v.name for v in again.update(fenced)}


def _seen_lost_then(mon, final):
    memory = decision.Memory()
    start = datetime.datetime(2026, 11, 21, 6, 0,
                              tzinfo=datetime.timezone.utc)
    memory.observe(mon("members-online"), start)
    memory.observe(mon("members-cn3-lost"), start + 5 * SECOND)
    status = mon(final)
    memory.observe(status, start + 10 * SECOND)
    return status, memory


def test_seen_lost_then_clean_does_not_beat_a_history(mon):
    # The history is there and shows no fencing: it wins.
    policy = decision.Policy(computes=("cn3",))
    status, memory = _seen_lost_then(mon, "members-cn3-fenced")
    cn3 = decide(status, (), policy=policy, memory=memory).verdict("cn3")
    assert cn3.decision == decision.FAILED_UNFENCED
    assert "never fenced" in cn3.reason


def test_lost_then_clean_because_fencing_was_disabled(mon):
    # An operator set stonith-enabled=false: Pacemaker calls the lost node
    # clean at once, and nothing fenced it.
    status, memory = _seen_lost_then(mon, "members-cn3-lost-nostonith")
    assert status.stonith_enabled is False
    node = status.node("cn3")
    assert (node.online, node.unclean) == (False, False)
    cn3 = decide(status, None, policy=decision.Policy(computes=("cn3",)),
                 memory=memory).verdict("cn3")
    assert cn3.decision == decision.FAILED_UNFENCED
    assert "fencing is disabled" in cn3.reason
