"""recover_servers on the simulated cloud: a batch of a failed host's VMs,
each through its state-table row, the batch's reads shared; never a
second evacuation, whatever was lost on the way."""

import threading

import fake_pacemaker
import pytest
from actions_support import failed_host
from actions_support import plans
from actions_support import recover
from actions_support import run

from instance_ha.actions import recover_servers
from instance_ha.actions.host_servers import HostServers
from instance_ha.actions.recover_servers import RecoverServers

pytest_plugins = ("actions_support",)


@pytest.fixture(autouse=True)
def fenced(pacemaker):
    """Pacemaker shows compute1 fenced, unless a test shows otherwise."""
    return pacemaker


def test_a_batch_costs_four_requests_a_vm_and_shares_its_polls(make_cloud):
    cloud = failed_host(make_cloud, [{"name": f"vm{i}"} for i in range(5)],
                        evacuation_time=1.0)
    batch = plans(cloud)
    mark = cloud.mark()
    records = recover(cloud, batch, interval=2)
    assert {r["outcome"] for r in records.values()} == {"moved"}
    calls = cloud.nova_calls(mark)
    for vm in batch:
        assert sorted(c.operation for c in calls
                      if c.server_id == vm["id"]) == \
            ["evacuate", "lock", "servers.show", "unlock"]
    # One listing of the host's evacuations before the first evacuation,
    # then one a poll for the five: 0.25, 0.5, 1 s after they were sent.
    polls = [c for c in calls if c.operation == "migrations.list"]
    assert 2 <= len(polls) <= 5, [c.operation for c in calls]
    assert cloud.model.calls.accepted_evacuations() == {
        vm["id"]: 1 for vm in batch}


def test_a_lost_evacuate_answer_is_looked_at_not_sent_again(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    cloud.model.faults.add("evacuate", timeout=0.2, apply=True, times=1)
    (record,) = recover(cloud, plans(cloud)).values()
    assert record["outcome"] == "moved", record
    (server,) = cloud.model.servers.values()
    assert cloud.model.calls.accepted_evacuations() == {server.id: 1}
    assert not server.locked


def test_an_evacuation_under_way_is_waited_for(make_cloud):
    """An earlier run sent the evacuation and died: nothing is sent again,
    not even the row's reset before it."""
    cloud = failed_host(make_cloud, [{"name": "resized", "vm_state":
                                      "resized", "power_state": 1}],
                        evacuation_time=1.0)
    (plan,) = plans(cloud)
    assert plan["steps"] == ["reset_error", "evacuate"]
    run(recover_servers.RecoverServers([plan], "compute1", timeout=0.01,
                                       interval=0.05))
    first = cloud.model.calls.accepted_evacuations()
    (after_first,) = plans(cloud)
    mark = cloud.mark()
    (record,) = recover(cloud, [after_first]).values()
    assert record["outcome"] == "moved", record
    assert cloud.model.calls.accepted_evacuations() == first
    assert "os-resetState" not in cloud.operations(mark)


def test_a_failed_evacuation_keeps_our_lock_with_its_case(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    (server,) = cloud.model.servers.values()
    cloud.model.faults.add("evacuate", outcome="error")
    (record,) = recover(cloud, plans(cloud)).values()
    assert record["outcome"] == "failed"
    assert record["reason"].startswith(
        f"wait_until_moved: server {server.id} its evacuation failed")
    assert record["left_locked"] is True
    assert (server.host, server.locked) == ("compute1", True)
    assert server.locked_reason == \
        "instance-ha evacuation from compute1; case active"


def test_the_next_target_is_tried_when_one_refuses(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    (server,) = cloud.model.servers.values()
    cloud.model.faults.add("evacuate", status=400, times=1,
                           message="the destination cannot take it")
    (record,) = recover(cloud, plans(cloud),
                        targets=["compute2", "compute3"]).values()
    assert record["outcome"] == "moved", record
    assert server.host == "compute3"


def test_without_a_target_nothing_is_sent_and_the_lock_stays(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    (server,) = cloud.model.servers.values()
    (record,) = recover(cloud, plans(cloud), targets=[]).values()
    assert record["reason"] == ("no target host is available (no reserved "
                                "host could be claimed)")
    assert cloud.model.calls.accepted_evacuations() == {}
    assert server.locked and record["left_locked"]


def test_vms_at_once_are_bounded_per_process(make_cloud, monkeypatch):
    cloud = failed_host(make_cloud, [{"name": f"vm{i}"} for i in range(6)])
    monkeypatch.setattr(recover_servers, "_in_flight",
                        threading.BoundedSemaphore(2))
    busy, most = [0], [0]
    guard = threading.Lock()
    original = recover_servers.ServerRecovery.run

    def counted(self):
        with guard:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            return original(self)
        finally:
            with guard:
                busy[0] -= 1

    monkeypatch.setattr(recover_servers.ServerRecovery, "run", counted)
    records = recover(cloud, plans(cloud))
    assert {r["outcome"] for r in records.values()} == {"moved"}
    assert most[0] == 2


def test_a_batch_of_another_case_is_refused_before_any_request(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "bad", "vm_state": "error",
                                      "power_state": 0}])
    listing = run(HostServers({"host": "compute1"}))["servers"]
    mark = cloud.mark()
    result = run(RecoverServers(listing, "compute1"))
    assert "which is not evacuated" in result.error["reason"]
    assert cloud.nova_calls(mark) == []


def test_the_batch_reads_pacemaker_and_reports_the_fencing(make_cloud):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    result = run(RecoverServers(plans(cloud), "compute1", interval=0.5))
    assert result["fencing"] == {
        "checked_by": "pacemaker", "node": "compute1",
        "fenced_at": "2026-11-21T06:19:38+00:00", "override": None,
        "summary": "Pacemaker: compute1 fenced at 2026-11-21T06:19:38+00:00"}
    assert [r["outcome"] for r in result["servers"]] == ["moved"]


@pytest.mark.parametrize("fixture, why", [
    (fake_pacemaker.ONLINE, "Pacemaker does not show compute1 fenced "
                            "(online"),
    (fake_pacemaker.UNCLEAN, "Pacemaker does not show compute1 fenced "
                             "(failed_unfenced"),
])
def test_a_host_not_fenced_now_is_refused_before_any_request(
        make_cloud, pacemaker, fixture, why):
    """Run on its own (as through the Mistral API), the batch is no way
    around safety rule 1: nothing locked, nothing evacuated."""
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    batch = plans(cloud)
    pacemaker.show(fixture, node="compute1")
    mark = cloud.mark()
    result = run(RecoverServers(batch, "compute1"))
    assert result["refused"].startswith(
        f"refusing to evacuate compute1: {why}"), result
    assert result["refused"].endswith("nothing was changed (give "
                                      "fencing.override only for a host "
                                      "known to be powered off)")
    assert result["fencing"] is None
    assert [(r["outcome"], r["reason"], r["left_locked"])
            for r in result["servers"]] == [
        ("failed", result["refused"], False)]
    assert cloud.nova_calls(mark) == []


def test_pacemaker_node_named_apart_and_an_unreadable_cluster(
        make_cloud, pacemaker, monkeypatch):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    batch = plans(cloud)
    pacemaker.show(fake_pacemaker.FENCED, node="rn7")
    mark = cloud.mark()
    refused = run(RecoverServers(batch, "compute1"))
    assert "Pacemaker has no node named compute1" in refused["refused"]
    monkeypatch.setenv("INSTANCE_HA_CRM_MON", "/nonexistent/crm_mon")
    unreadable = run(RecoverServers(batch, "compute1", fencing={"node":
                                                                "rn7"}))
    assert "cannot read Pacemaker on this executor" in \
        unreadable["refused"]
    assert cloud.nova_calls(mark) == []
    monkeypatch.setenv("INSTANCE_HA_CRM_MON", pacemaker.crm_mon)
    moved = run(RecoverServers(batch, "compute1", fencing={"node": "rn7"},
                               interval=0.5))
    assert moved["fencing"]["node"] == "rn7"
    assert [r["outcome"] for r in moved["servers"]] == ["moved"]


def test_an_override_is_not_checked_and_says_so(make_cloud, pacemaker):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    pacemaker.show(fake_pacemaker.ONLINE, node="compute1")
    result = run(RecoverServers(
        plans(cloud), "compute1", interval=0.5,
        fencing={"override": "powered off at the PDU by the on-call"}))
    assert result["fencing"]["summary"] == (
        "fencing NOT checked, operator override: powered off at the PDU "
        "by the on-call")
    assert [r["outcome"] for r in result["servers"]] == ["moved"]


@pytest.mark.parametrize("fencing, why", [
    ("yes", "bad input: fencing must be {}"),
    ({"node": "rn1", "override": "powered off at the PDU"},
     "bad input: fencing takes node or override, not both"),
    ({"override": "off"}, "bad input: fencing override must say why"),
    ({"host": "rn1"}, "bad input: fencing has unknown keys host"),
])
def test_a_bad_fencing_input_is_refused_before_any_request(
        make_cloud, fencing, why):
    cloud = failed_host(make_cloud, [{"name": "vm"}])
    batch = plans(cloud)
    mark = cloud.mark()
    result = run(RecoverServers(batch, "compute1", fencing=fencing))
    assert result.error["reason"].startswith(why), result.error
    assert cloud.nova_calls(mark) == []


def test_a_slow_server_is_handed_over_and_only_waited_for_next(make_cloud):
    """report_within: the batch reports its fast servers' outcomes without
    waiting for the slow one, whose entry the next pass takes: it waits
    for the evacuation under way, sends nothing again, and unlocks."""
    cloud = failed_host(make_cloud, [{"name": "fast1"}, {"name": "fast2"},
                                     {"name": "slow"}], evacuation_time=0.2)
    (gate,) = cloud.gate_evacuations("spawn", server="slow")
    slow = cloud.server("slow")
    records = recover(cloud, plans(cloud), interval=0.1, report_within=0.3)
    assert {n: r["outcome"] for n, r in records.items()} == {
        "fast1": "moved", "fast2": "moved", "slow": "waiting"}
    waiting = records["slow"]
    assert waiting["reason"].endswith("waited for by the next pass")
    assert waiting["left_locked"] and slow.locked and slow.host == "compute1"
    entry = waiting["entry"]
    assert (entry["id"], entry["task_state"], entry["locked"]) == (
        slow.id, "rebuilding", True)
    assert entry["locked_reason"] == slow.locked_reason
    assert 0 < entry["waited_s"] < 30
    gate.set()
    mark = cloud.mark()
    (after,) = recover(cloud, [entry], interval=0.1).values()
    assert after["outcome"] == "moved", after
    operations = cloud.operations(mark)
    assert "lock" not in operations and "evacuate" not in operations
    assert operations.count("unlock") == 1
    assert cloud.model.calls.accepted_evacuations() == {
        s.id: 1 for s in cloud.model.servers.values()}
    assert not slow.locked and slow.host != "compute1"


def test_without_report_within_the_batch_waits_for_every_server(
        make_cloud):
    cloud = failed_host(make_cloud, [{"name": "fast"}, {"name": "slow"}],
                        evacuation_time=0.2)
    (gate,) = cloud.gate_evacuations("spawn", server="slow")
    threading.Timer(1.0, gate.set).start()
    records = recover(cloud, plans(cloud), interval=0.1)
    assert {r["outcome"] for r in records.values()} == {"moved"}
