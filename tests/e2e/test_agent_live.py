"""ocf:openstack:instance-ha and its alert agent on a live cluster, with
the embedded Mistral and a simulated cloud whose hosts are the remote
nodes: kill -9 of a remote daemon -> fenced once -> one workflow execution
-> the VMs run on the other host; refusals without confirmed fencing and
without quorum."""

import datetime
import json
import time

import pytest

from instance_ha.agent import handoff
from instance_ha.hostmonitor import trigger

from . import agent_support as support
from .cluster import node_attrs
from .conftest import require_live_cluster

pytestmark = pytest.mark.slow

INTERVAL = 10  # the agent's monitor interval (s), as in production


@pytest.fixture(scope="module")
def stack():
    require_live_cluster()
    stack = support.Stack().start()
    yield stack
    stack.stop()


def wait_agent_started(cluster):
    cluster.wait_for(support.agent_started, 60, "instance-ha Started")


def fenced(cluster, node, count):
    calls = [c for c in cluster.fence_calls() if c["target"] == node
             and c["action"] in ("reboot", "off") and c["result"] == "ok"]
    return len(calls) >= count


def wait_fenced(cluster, node, count, timeout=60):
    deadline = time.monotonic() + timeout
    while not fenced(cluster, node, count):
        if time.monotonic() > deadline:
            raise AssertionError(f"{node} not fenced {count} times: "
                                 f"{cluster.fence_calls()}")
        time.sleep(0.1)
    return [c for c in cluster.fence_calls() if c["target"] == node]


def last_fence_completed(cluster, node):
    [event] = [e for e in cluster.fence_history(node)
               if e.get("status") == "success"][:1]
    return event["completed_epoch"]


def test_kill_fence_evacuate_once_then_again(stack, start_live_cluster):
    cluster = start_live_cluster(**support.cluster_kwargs(stack, INTERVAL))
    wait_agent_started(cluster)
    time.sleep(INTERVAL + 1)  # a recurring monitor saw rn1 online
    sim = stack.sim
    before = {s.name: s.vm_state for s in sim.cloud.servers_on("rn1")}
    assert set(before) == {s["name"] for s in support.RN1_SERVERS}

    # --- first failure ---------------------------------------------------
    sim.cloud.kill_host("rn1")
    killed_at = cluster.kill_remote("rn1")
    calls = wait_fenced(cluster, "rn1", 1)
    fenced_at = calls[-1]["time"]
    [execution], seen_at = stack.wait_executions("rn1", 1, INTERVAL + 5)
    done, done_at = stack.wait_finished(execution.id, 120)
    completed = last_fence_completed(cluster, "rn1")
    expected_id = handoff.execution_id(
        "rn1", datetime.datetime.fromtimestamp(
            completed, datetime.timezone.utc))
    print(f"\nfirst failure: fenced {fenced_at - killed_at:.2f}s after the "
          f"kill; execution seen {seen_at - fenced_at:.2f}s after the "
          f"fencing (created_at {execution.created_at}); recovery "
          f"{done.state} {done_at - fenced_at:.1f}s after the fencing")
    assert execution.id == expected_id
    assert done.state == "SUCCESS", done.state_info
    # The workflow read the live cluster itself (confirm_fencing, on the
    # embedded Mistral's executor) and found this very fencing.
    fencing = json.loads(done.output)["fencing"]
    assert (fencing["checked_by"], fencing["node"]) == ("pacemaker", "rn1")
    assert datetime.datetime.fromisoformat(fencing["fenced_at"]) == \
        datetime.datetime.fromtimestamp(completed, datetime.timezone.utc)
    assert sim.cloud.hosts["rn1"].service.disabled_reason.endswith(
        "; Pacemaker: rn1 fenced at " + fencing["fenced_at"])
    # Started within the monitor interval of the fencing (whole seconds:
    # Mistral's created_at).
    assert support.parse_mistral_time(execution.created_at) - \
        int(fenced_at) <= INTERVAL
    # The VMs run on rn2, each in the state it had, each evacuated once.
    assert sim.cloud.servers_on("rn1") == []
    after = {s.name: s.vm_state for s in sim.cloud.servers_on("rn2")}
    for name, state in before.items():
        assert after[name] == state, (name, after)
    evacuations = sim.cloud.calls.accepted_evacuations()
    assert len(evacuations) == len(before)
    assert set(evacuations.values()) == {1}
    # More monitors (and the alert) change nothing: still one execution,
    # one fencing, and the CIB records it.
    time.sleep(INTERVAL + 2)
    assert [e.id for e in stack.executions("rn1")] == [execution.id]
    assert len([c for c in cluster.fence_calls()
                if c["target"] == "rn1"]) == 1
    assert support.handoff_record("rn1").startswith(execution.id + " rn1@")

    # --- the host comes back, then fails again -----------------------------
    sim.cloud.revive_host("rn1")
    cluster.restart_remote("rn1")
    deadline = time.monotonic() + 2 * INTERVAL + 10
    while support.handoff_record("rn1") is not None:
        assert time.monotonic() < deadline, "record of rn1 not cleared"
        time.sleep(0.5)
    sim.cloud.kill_host("rn1")
    killed_again = cluster.kill_remote("rn1")
    calls = wait_fenced(cluster, "rn1", 2)
    fenced_again = calls[-1]["time"]
    executions, seen_again = stack.wait_executions("rn1", 2, INTERVAL + 5)
    assert executions[0].id == execution.id
    second = executions[1]
    done2, done2_at = stack.wait_finished(second.id, 120)
    print(f"second failure: fenced {fenced_again - killed_again:.2f}s after "
          f"the kill; execution seen {seen_again - fenced_again:.2f}s after "
          f"the fencing; {done2.state} {done2_at - fenced_again:.1f}s after")
    assert done2.state == "SUCCESS", done2.state_info
    assert second.id != execution.id
    time.sleep(3)
    assert len(stack.executions("rn1")) == 2
    assert len([c for c in cluster.fence_calls()
                if c["target"] == "rn1"]) == 2
    log = "".join(support.agent_log(cluster))
    assert "evacuation handed to Mistral" in log
    with open(cluster.path("alerts.log")) as f:
        alerts = [line for line in f if "instance-ha-alert" in line]
    print("".join(alerts))
    # The alert ran on both fencings (as hacluster) and parsed them.
    assert len([a for a in alerts if "rn1 fenced (reboot)" in a]) == 2


def test_no_trigger_while_fencing_fails(stack, start_live_cluster):
    cluster = start_live_cluster(**support.cluster_kwargs(
        stack, INTERVAL, remotes=("rn1", "rn2")))
    wait_agent_started(cluster)
    time.sleep(INTERVAL + 1)
    before = len(stack.executions("rn2"))
    cluster.set_fence_failure("rn2")
    stack.sim.cloud.kill_host("rn2")
    cluster.kill_remote("rn2")
    deadline = time.monotonic() + 30
    while not [c for c in cluster.fence_calls() if c["target"] == "rn2"
               and c["result"] == "failed"]:
        assert time.monotonic() < deadline, cluster.fence_calls()
        time.sleep(0.2)
    # A whole monitor interval with rn2 down and unfenced: nothing started.
    time.sleep(INTERVAL + 2)
    xml = cluster.crm_mon_xml()
    assert node_attrs(xml, "rn2")["unclean"] == "true"
    assert len(stack.executions("rn2")) == before
    log = "".join(support.agent_log(cluster))
    assert "rn2: failed_unfenced" in log
    # Nor through the Mistral API: the workflow reads the live cluster
    # itself, refuses, and Nova gets nothing.
    asked_at = time.time()
    by_hand = stack.client.executions.create(
        trigger.WORKFLOW, workflow_input={"search_opts": {"host": "rn2"}},
        description="e2e: host_evacuate by hand while rn2 is unfenced")
    refused, _ = stack.wait_finished(by_hand.id, 60)
    assert refused.state == "ERROR"
    assert refused.state_info.startswith(
        "refusing to evacuate rn2: Pacemaker does not show rn2 fenced "
        "(failed_unfenced"), refused.state_info
    # Nor the one action that evacuates, run on its own: it reads the
    # live cluster too.
    listing = stack.client.action_executions.create(
        "instance_ha.host_servers", {"search_opts": {"host": "rn2"}},
        run_sync=True, save_result=True)
    entries = json.loads(listing.output)["result"]["servers"]
    assert entries, listing.output
    batch = stack.client.action_executions.create(
        "instance_ha.recover_servers",
        {"servers": [e for e in entries if e["plan"] == "evacuate"],
         "source_host": "rn2"}, run_sync=True, save_result=True)
    result = json.loads(batch.output)["result"]
    assert result["refused"].startswith(
        "refusing to evacuate rn2: Pacemaker does not show rn2 fenced "
        "(failed_unfenced"), batch.output
    assert {r["outcome"] for r in result["servers"]} == {"failed"}
    assert not stack.sim.cloud.hosts["rn2"].service.forced_down
    assert [c for c in stack.sim.cloud.calls.calls()
            if c.time >= asked_at and c.method in ("POST", "PUT", "DELETE")
            and not c.operation.startswith("keystone.")] == []
    # The control: once fencing works, the same failure is handled.
    cluster.set_fence_failure("rn2", fail=False)
    calls = wait_fenced(cluster, "rn2", 1, timeout=90)
    fenced_at = calls[-1]["time"]
    executions, seen_at = stack.wait_executions("rn2", before + 1,
                                                INTERVAL + 5)
    print(f"\nfencing fixed: execution seen {seen_at - fenced_at:.2f}s after "
          "the fencing succeeded")
    # Here the alert usually finds the DC busy (a connection attempt to
    # rn2 is under way) and leaves it to the recurring monitor: within
    # the interval plus one monitor's run time.
    assert seen_at - fenced_at <= INTERVAL + 3


def test_no_trigger_without_quorum(stack, start_live_cluster):
    cluster = start_live_cluster(**support.cluster_kwargs(stack, INTERVAL))
    wait_agent_started(cluster)
    time.sleep(INTERVAL + 1)
    before = len(stack.executions("rn1"))
    lost_at = cluster.lose_quorum()
    stack.sim.cloud.kill_host("rn1")
    cluster.kill_remote("rn1")
    # no-quorum-policy=ignore: Pacemaker still fences.
    calls = wait_fenced(cluster, "rn1", 1)
    fenced_at = calls[-1]["time"]
    time.sleep(INTERVAL + 2)
    assert len(stack.executions("rn1")) == before
    log = "".join(support.agent_log(cluster))
    assert "this partition has no quorum" in log
    assert "no quorum: nothing is triggered" in log
    # The control: the same failure is handled once quorum is back.
    regained_at = cluster.regain_quorum()
    executions, seen_at = stack.wait_executions("rn1", before + 1,
                                                INTERVAL + 5)
    print(f"\nquorum lost {fenced_at - lost_at:.2f}s before the fencing; "
          f"execution seen {seen_at - regained_at:.2f}s after quorum came "
          "back")
    assert seen_at - regained_at <= INTERVAL + 3
