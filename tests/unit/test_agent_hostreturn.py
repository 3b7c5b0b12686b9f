"""A recovered host online again (instance_ha.agent.hostreturn), in the
agent's monitor pass on crm_mon captured on the live cluster, with the
in-memory Mistral and CIB store of test_agent_monitor: said once;
``return_hosts`` off starts nothing; on, one host_return under the
failure's return id, only after a successful recovery, followed to its
end."""

import datetime
import json
import logging
import os

import pytest
from test_agent_monitor import AGENT_FIXTURES
from test_agent_monitor import FENCED_AT
from test_agent_monitor import Harness
from test_agent_monitor import live
from test_agent_monitor import utc  # noqa: F401 - the autouse fixture

from instance_ha.agent import budget as budget_module
from instance_ha.agent import handoff
from instance_ha.agent import monitor
from instance_ha.agent import statefile
from instance_ha.hostmonitor import crm_mon
from instance_ha.hostmonitor import trigger

FAILURE = trigger.failure_key("rn1", FENCED_AT)
RETURN_ID = handoff.return_execution_id("rn1", FENCED_AT)
REFUSAL = ("refusing to return rn1 to service: nova-compute on rn1 sent no "
           "heartbeat within 30 s (forced down, so Nova shows it down "
           "whatever it does; updated_at still 2026-11-21T06:19:40); "
           "nothing was changed")


@pytest.fixture
def agent(caplog):
    return lambda **params: Harness(caplog, **params)


def recovered(a, outcome="SUCCESS"):
    """rn1 failed, fenced and handed over; its run ends in ``outcome``
    (None: still running) and the watch sees it (one more pass while
    rn1 is still down)."""
    a.run(live("crm_mon_fencing_succeeded.xml"))
    body = a.posts[-1]
    if outcome is not None:
        a.client.executions.items[body["id"]].state = outcome
    a.clock.advance(10)
    a.run()
    return body["id"]


def back_online(a, passes=1):
    for _ in range(passes):
        a.clock.advance(10)
        a.run(live("crm_mon_rn1_back_online.xml"))


def returns_posted(a):
    return [p for p in a.posts
            if p["workflow_name"] == "instance_ha.host_return"]


def messages(a, text):
    return [r.getMessage() for r in a.caplog.records
            if text in r.getMessage()]


def test_a_returned_host_is_said_once_and_off_by_default_starts_nothing(
        agent):
    a = agent()
    assert a.config.return_hosts is False
    evacuation = recovered(a)
    # Reconnecting after the fencing is not back online: nothing noted.
    a.run(crm_mon.read_file(os.path.join(
        AGENT_FIXTURES, "crm_mon_rn1_reconnecting_started.xml")))
    assert a.state["returns"] == {}
    back_online(a, passes=4)
    [said] = messages(a, "back online after its recovery")
    assert said == (
        f"rn1: back online after its recovery (execution {evacuation} "
        "SUCCESS); its nova-compute stays forced down and disabled until "
        "it is returned to service: run 'instance-ha host-return rn1' "
        "(return_hosts=false: the agent does not)")
    [record] = [r for r in a.caplog.records if said == r.getMessage()]
    assert record.levelno == logging.WARNING
    assert returns_posted(a) == [] and len(a.posts) == 1
    assert a.state["returns"][FAILURE]["outcome"] == "TOLD"
    assert a.state["returns"][FAILURE]["evacuation"] == "SUCCESS"


def test_off_names_the_pacemaker_node_where_the_nova_host_differs(agent):
    a = agent(host_map="rn1=compute1.example.com")
    recovered(a)
    back_online(a)
    [said] = messages(a, "back online after its recovery")
    assert said.endswith("run 'instance-ha host-return compute1.example.com "
                         "--pacemaker-node rn1' (return_hosts=false: the "
                         "agent does not)")


def test_off_after_an_unfinished_recovery_says_to_check_the_vms(agent):
    a = agent()
    evacuation = recovered(a, outcome=None)
    back_online(a, passes=2)
    [said] = messages(a, "its recovery not finished")
    assert said == (
        f"rn1: back online, its recovery not finished (execution "
        f"{evacuation}, last outcome running); its nova-compute stays "
        "forced down and disabled: check the VMs Nova still has on rn1, "
        "then run 'instance-ha host-return rn1'")
    assert returns_posted(a) == []


def test_on_starts_one_host_return_and_follows_it_to_success(agent):
    a = agent(return_hosts="true")
    evacuation = recovered(a)
    back_online(a, passes=3)
    [body] = returns_posted(a)
    assert body["id"] == RETURN_ID
    assert json.loads(body["input"]) == {"host": "rn1"}
    assert body["description"] == (
        "instance-ha: return host rn1 to service (fenced "
        "2026-11-21T06:19:38+00:00), triggered by test")
    [said] = messages(a, "returning it to service")
    [record] = [r for r in a.caplog.records if said == r.getMessage()]
    assert record.levelno == logging.WARNING
    assert said == (
        f"rn1: back online after its recovery (execution {evacuation} "
        "SUCCESS): returning it to service (return_hosts=true): "
        f"host_return execution {RETURN_ID} (RUNNING)")
    assert a.state["returns"][FAILURE]["execution_id"] == RETURN_ID
    assert a.state["returns"][FAILURE]["outcome"] is None
    execution = a.client.executions.items[RETURN_ID]
    execution.state = "SUCCESS"
    execution.output = json.dumps({"changed": {"forced_down_unset": True,
                                               "enabled": True}})
    back_online(a, passes=3)
    assert messages(a, "returned to service") == [
        f"rn1: returned to service: host_return execution {RETURN_ID} "
        "SUCCESS (forced_down unset, enabled)"]
    assert a.state["returns"][FAILURE]["outcome"] == "SUCCESS"
    assert len(returns_posted(a)) == 1
    assert len(messages(a, "returning it to service")) == 1


def test_on_gives_host_return_the_node_where_the_nova_host_differs(agent):
    a = agent(return_hosts="true", host_map="rn1=compute1.example.com")
    recovered(a)
    back_online(a)
    [body] = returns_posted(a)
    # The id is the failure's (the Pacemaker node's), as host_evacuate's.
    assert body["id"] == RETURN_ID
    assert json.loads(body["input"]) == {"host": "compute1.example.com",
                                         "node": "rn1"}


def test_a_refusal_is_logged_once_with_its_reason(agent):
    a = agent(return_hosts="true")
    recovered(a)
    back_online(a)
    execution = a.client.executions.items[RETURN_ID]
    execution.state = "ERROR"
    execution.state_info = REFUSAL
    back_online(a, passes=3)
    [said] = messages(a, "NOT returned to service")
    assert said == (
        f"rn1: NOT returned to service: host_return execution {RETURN_ID} "
        f"ended in ERROR: {REFUSAL}; once that is fixed run 'instance-ha "
        "host-return rn1'")
    assert a.state["returns"][FAILURE]["outcome"] == "ERROR"
    assert len(returns_posted(a)) == 1


@pytest.mark.parametrize("outcome, max_attempts, shown", [
    (None, 3, "running"),            # still running in Mistral
    ("ERROR", 3, "ERROR"),           # ended, the watch had not seen it
    ("ERROR", 1, "EXHAUSTED"),       # the watch gave it up
], ids=["running", "failed", "given-up"])
def test_on_starts_nothing_unless_the_last_run_succeeded(
        agent, outcome, max_attempts, shown):
    a = agent(return_hosts="true", max_attempts=max_attempts)
    a.run(live("crm_mon_fencing_succeeded.xml"))
    [body] = a.posts
    if max_attempts == 1:
        a.client.executions.items[body["id"]].state = outcome
        a.clock.advance(10)
        a.run()  # the watch sees the only run fail: EXHAUSTED
    elif outcome is not None:
        # It ends while rn1 comes back: the watch never sees it.
        a.client.executions.items[body["id"]].state = outcome
    back_online(a, passes=3)
    assert returns_posted(a) == []
    [said] = messages(a, "NOT returning it to service")
    assert said == (
        "rn1: back online, but its recovery did not end in SUCCESS "
        f"(execution {body['id']}: {shown}): NOT returning it to service "
        "(return_hosts starts host_return only after a successful "
        "recovery); check the VMs Nova still has on rn1, then run "
        "'instance-ha host-return rn1'")
    assert a.state["returns"][FAILURE]["outcome"] == "TOLD"


def test_a_success_the_watch_had_not_seen_is_read_from_mistral(agent):
    a = agent(return_hosts="true")
    a.run(live("crm_mon_fencing_succeeded.xml"))
    [body] = a.posts
    a.client.executions.items[body["id"]].state = "SUCCESS"
    back_online(a)  # the same pass stops the watch and notes the return
    assert "last outcome running" in a.text()
    [posted] = returns_posted(a)
    assert posted["id"] == RETURN_ID


def test_two_controllers_start_one_host_return(agent):
    """Both agents watched the failure (the second without the CIB
    record) and both see rn1 back: one execution in Mistral."""
    first = agent(return_hosts="true")
    second = agent(return_hosts="true")
    second.client = first.client  # the same Mistral
    second.store.broken = True
    for a in (first, second):
        recovered(a)
    for a in (first, second):
        back_online(a)
    assert [p["id"] for p in first.client.executions.posts
            if p["workflow_name"] == "instance_ha.host_return"] == [
        RETURN_ID, RETURN_ID]
    assert first.client.executions.created() == [
        trigger.execution_id("rn1", FENCED_AT), RETURN_ID]


def test_a_failure_known_only_from_the_cib_record_gives_no_return(agent):
    """This agent never watched rn1's failure (the CIB record names it,
    its state does not): rn1 back online clears the record, and no
    return is noted or said."""
    from instance_ha.hostmonitor import store as store_module

    a = agent(return_hosts="true")
    a.store.records["rn1"] = store_module.Handoff(
        host="rn1", execution_id=trigger.execution_id("rn1", FENCED_AT),
        failure=FAILURE)
    back_online(a, passes=2)
    assert a.store.cleared == ["rn1"]
    assert a.state["returns"] == {}
    assert "back online after its recovery" not in a.text()
    assert a.posts == []


def test_an_unreachable_mistral_is_retried_under_the_same_id(agent):
    a = agent(return_hosts="true")
    recovered(a)
    a.client.executions.unreachable = True
    back_online(a)
    assert "cannot follow its return to service, will retry at the next " \
           "monitor" in a.text()
    assert a.state["returns"][FAILURE]["execution_id"] is None
    a.client.executions.unreachable = False
    back_online(a, passes=2)
    assert [p["id"] for p in returns_posted(a)] == [RETURN_ID]


def test_a_spent_budget_leaves_the_return_to_the_next_pass(agent):
    a = agent(return_hosts="true")
    recovered(a)
    a.clock.advance(10)
    deps = monitor.Dependencies(
        a.config, a.log, clock=a.clock,
        read=lambda: live("crm_mon_rn1_back_online.xml"), store=a.store,
        connect=a.connect, origin="test",
        budget=budget_module.Budget(0))
    monitor.run(a.state, deps)
    assert returns_posted(a) == []
    assert "1 return(s) to service not followed this pass (the next one " \
           "starts with them): rn1" in a.text()
    back_online(a)
    assert [p["id"] for p in returns_posted(a)] == [RETURN_ID]


def test_the_returns_are_kept_in_the_state_file(tmp_path):
    path = str(tmp_path / "instance-ha-t1.state")
    state = statefile.empty()
    state["returns"] = {FAILURE: {"host": "rn1", "outcome": "TOLD"}}
    statefile.save(path, state)
    assert statefile.load(path)["returns"] == state["returns"]


def test_the_return_id_is_the_failures_and_no_attempts():
    import uuid

    assert RETURN_ID == str(uuid.uuid5(trigger.EXECUTION_NAMESPACE,
                                       f"{FAILURE}#return"))
    later = FENCED_AT + datetime.timedelta(seconds=1)
    assert RETURN_ID == handoff.return_execution_id(
        "rn1", FENCED_AT.astimezone(datetime.timezone(
            datetime.timedelta(hours=2))))
    assert RETURN_ID != handoff.return_execution_id("rn1", later)
    assert RETURN_ID not in {handoff.execution_id("rn1", FENCED_AT, n)
                             for n in range(100)}
