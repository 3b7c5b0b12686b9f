"""The pack's workflows, as real Mistral executions on the embedded server,
against the simulated cloud over HTTP.  The host-down rows listed in
HOST_DOWN_ROWS and every instance-down row are a test each (which rows
run here and which are only classified: doc/state-table.rst): the VM's
final host and state, and the exact sequence of Nova mutations the
recovery sent for it (from the simulator's call log)."""

import collections
import json
import time

import fake_pacemaker
import pytest
from workflow_runs import run

from instance_ha import server_process
from instance_ha import state_table
from instance_ha.simcloud import testing


@pytest.fixture
def cloud(mistral_cloud):
    """A simulated cloud that the module's embedded Mistral acts on."""
    return mistral_cloud

MUTATIONS = ("lock", "unlock", "os-resetState", "evacuate", "os-stop",
             "os-start", "services.update")
HA = {"HA_Enabled": "True"}


def evacuate_host(cloud, host="compute1", kill=True, timeout=120,
                  **wf_input):
    sim = cloud.sim
    if kill:
        sim.cloud.kill_host(host)
    return run(cloud.client, "instance_ha.host_evacuate",
               {"search_opts": {"host": host}, **wf_input}, timeout=timeout)


def mutations(sim, server_id):
    return [c.operation for c in sim.cloud.calls.calls(server_id=server_id)
            if c.operation in MUTATIONS and c.status and c.status < 300]


def one_vm(cloud, **server):
    sim = cloud(servers=[{"name": "vm", **server}])
    cloud.sim = sim
    (vm,) = sim.cloud.servers_on("compute1")
    return sim, vm


# event host down: (vm_state, power_state) before -> steps -> state after.
HOST_DOWN_ROWS = [
    pytest.param("active", 1, ["lock", "evacuate", "unlock"], "active",
                 id="active-evacuate-active"),
    pytest.param("stopped", 4, ["lock", "evacuate", "unlock"], "stopped",
                 id="stopped-evacuate-stopped"),
    pytest.param("resized", 1,
                 ["lock", "os-resetState", "evacuate", "unlock"], "active",
                 id="resized-reset_error-evacuate-active"),
    # Reset to error, and Nova 34 brings a server evacuated from error
    # back active (at 2.95 too): stopped again, as its row says.
    pytest.param("resized", 4,
                 ["lock", "os-resetState", "evacuate", "os-stop", "unlock"],
                 "stopped", id="resized_was_stopped-stop-stopped"),
    # power_state 4: Nova powers a server off to rescue it (fake driver).
    pytest.param("rescued", 4,
                 ["lock", "os-resetState", "evacuate", "unlock"], "active",
                 id="rescued-reset_error-evacuate-active"),
]


@pytest.mark.parametrize("vm_state, power_state, steps, after",
                         HOST_DOWN_ROWS)
def test_host_down_row(cloud, vm_state, power_state, steps, after):
    sim, vm = one_vm(cloud, vm_state=vm_state, power_state=power_state,
                     metadata=HA)
    execution, output = evacuate_host(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"] == {"moved": 1, "failed": 0, "skipped": 0,
                                "not_attempted": 0}
    (record,) = output["servers"]
    assert record["outcome"] == "moved"
    assert record["host"] != "compute1"
    assert vm.host == record["host"]
    assert vm.vm_state == after == record["vm_state"]
    assert not vm.locked
    assert mutations(sim, vm.id) == steps
    assert sim.cloud.calls.accepted_evacuations() == {vm.id: 1}


def test_force_down_comes_first_with_a_reason(cloud):
    sim, vm = one_vm(cloud, vm_state="active")
    execution, _ = evacuate_host(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    service = sim.cloud.hosts["compute1"].service
    assert service.forced_down and service.disabled
    assert execution.id in service.disabled_reason
    updates = sim.cloud.calls.calls(operation="services.update")
    first_evacuate = sim.cloud.calls.calls(operation="evacuate")[0]
    assert updates and updates[0].time <= first_evacuate.time


def nova_changes(sim):
    return [c for c in sim.cloud.calls.calls()
            if c.method in ("POST", "PUT", "DELETE")
            and not c.operation.startswith("keystone.")]


def test_fencing_confirmed_by_pacemaker_is_in_nova_and_the_output(cloud):
    sim, vm = one_vm(cloud, vm_state="active")
    execution, output = evacuate_host(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    # tests/unit/hostmonitor/fixtures/live/crm_mon_rn1_fenced.xml
    fenced_at = "2026-11-21T06:19:38+00:00"
    assert output["fencing"]["checked_by"] == "pacemaker"
    assert output["fencing"]["node"] == "compute1"
    assert output["fencing"]["fenced_at"] == fenced_at
    assert sim.cloud.hosts["compute1"].service.disabled_reason.endswith(
        f"; Pacemaker: compute1 fenced at {fenced_at}")


def test_pacemaker_node_named_apart_from_the_nova_host(cloud):
    sim, vm = one_vm(cloud, vm_state="active")
    cloud.pacemaker.show(fake_pacemaker.FENCED, node="rn1")
    execution, output = evacuate_host(cloud, fencing={"node": "rn1"})
    assert execution.state == "SUCCESS", execution.state_info
    assert output["fencing"]["node"] == "rn1"
    assert vm.host != "compute1"


@pytest.mark.parametrize("fixture, why", [
    (fake_pacemaker.ONLINE, "Pacemaker does not show compute1 fenced "
                            "(online"),
    (fake_pacemaker.UNCLEAN, "Pacemaker does not show compute1 fenced "
                             "(failed_unfenced"),
    (None, "cannot read Pacemaker on this executor"),
])
def test_a_host_pacemaker_does_not_show_fenced_is_left_alone(
        cloud, fixture, why):
    """The README's own example, from the Mistral API: nothing changes in
    Nova, whatever Nova says of the host's service."""
    sim, vm = one_vm(cloud, vm_state="active")
    if fixture:
        cloud.pacemaker.show(fixture, node="compute1")
    else:
        cloud.pacemaker.unreadable()
    execution, output = evacuate_host(cloud)
    assert execution.state == "ERROR"
    assert execution.state_info.startswith(
        "refusing to evacuate compute1: " + why), execution.state_info
    assert "Traceback" not in execution.state_info
    assert nova_changes(sim) == []
    service = sim.cloud.hosts["compute1"].service
    assert not service.forced_down and not service.disabled
    assert output["fencing"] is None


def test_the_batch_action_alone_through_the_api_is_refused_unfenced(
        cloud):
    """recover_servers run by itself (POST /v2/action_executions), not
    through host_evacuate: it reads Pacemaker as well, and Nova gets
    nothing while the host is not fenced."""
    sim, vm = one_vm(cloud, vm_state="active")
    sim.cloud.kill_host("compute1")
    listing = cloud.client.action_executions.create(
        "instance_ha.host_servers", {"search_opts": {"host": "compute1"}},
        run_sync=True, save_result=True)
    entries = json.loads(listing.output)["result"]["servers"]
    cloud.pacemaker.show(fake_pacemaker.UNCLEAN, node="compute1")
    before = len(nova_changes(sim))
    batch = cloud.client.action_executions.create(
        "instance_ha.recover_servers",
        {"servers": entries, "source_host": "compute1"},
        run_sync=True, save_result=True)
    result = json.loads(batch.output)["result"]
    assert result["refused"].startswith(
        "refusing to evacuate compute1: Pacemaker does not show compute1 "
        "fenced (failed_unfenced"), batch.output
    assert {r["outcome"] for r in result["servers"]} == {"failed"}
    assert len(nova_changes(sim)) == before
    assert (vm.host, vm.locked) == ("compute1", False)


def test_a_host_back_online_mid_run_keeps_the_vms_not_yet_moved(cloud):
    """Every batch reads Pacemaker again: once the host shows online (a
    reboot fencing, say), no further VM of it is evacuated."""
    sim = cloud(servers=[{"name": f"vm{i}"} for i in range(3)],
                evacuation_time=1.0)
    cloud.sim = sim
    sim.cloud.kill_host("compute1")
    execution = cloud.client.executions.create(
        "instance_ha.host_evacuate", workflow_input={
            "search_opts": {"host": "compute1"},
            "concurrency": 1, "poll_interval": 0.2},
        description="functional test")
    deadline = time.monotonic() + 60
    while not sim.cloud.calls.accepted_evacuations():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cloud.pacemaker.show(fake_pacemaker.ONLINE, node="compute1")
    while execution.state in ("IDLE", "RUNNING", "PAUSED"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
        execution = cloud.client.executions.get(execution.id)
    output = json.loads(execution.output or "{}")
    assert execution.state == "ERROR"
    assert len(sim.cloud.calls.accepted_evacuations()) == 1
    assert output["counts"] == {"moved": 1, "failed": 2, "skipped": 0,
                                "not_attempted": 0}, output
    moved = [s for s in sim.cloud.servers.values() if s.host != "compute1"]
    assert len(moved) == 1 and not moved[0].locked
    for record in output["servers"]:
        if record["outcome"] == "failed":
            assert record["reason"].startswith(
                "refusing to evacuate compute1: Pacemaker does not show "
                "compute1 fenced (online"), record
            assert not sim.cloud.servers[record["id"]].locked


def test_an_operator_override_shows_in_input_output_and_nova(cloud):
    sim, vm = one_vm(cloud, vm_state="active")
    cloud.pacemaker.show(fake_pacemaker.ONLINE, node="compute1")
    why = "compute1 powered off at its PDU, ticket 4711"
    execution, output = evacuate_host(cloud, fencing={"override": why})
    assert execution.state == "SUCCESS", execution.state_info
    assert json.loads(execution.input)["fencing"] == {"override": why}
    assert output["fencing"] == {
        "checked_by": "operator override", "node": None, "fenced_at": None,
        "override": why,
        "summary": f"fencing NOT checked, operator override: {why}"}
    reason = sim.cloud.hosts["compute1"].service.disabled_reason
    assert reason.endswith(f"; fencing NOT checked, operator override: "
                           f"{why}")
    assert "fenced at" not in reason
    assert vm.host != "compute1"


def test_error_vm_is_skipped_by_default_and_left_alone(cloud):
    sim, vm = one_vm(cloud, vm_state="error", power_state=0)
    execution, output = evacuate_host(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    (record,) = output["servers"]
    assert record["outcome"] == "skipped"
    assert "error" in record["reason"]
    assert mutations(sim, vm.id) == []
    assert vm.host == "compute1"


def test_error_vm_evacuated_by_policy_ends_in_error_elsewhere(cloud):
    sim, vm = one_vm(cloud, vm_state="error", power_state=0)
    execution, output = evacuate_host(
        cloud, policy={"error_servers": "evacuate"})
    assert execution.state == "SUCCESS", execution.state_info
    assert output["servers"][0]["outcome"] == "moved"
    assert vm.host != "compute1" and vm.vm_state == "error"
    assert mutations(sim, vm.id) == ["lock", "evacuate", "os-resetState",
                                     "unlock"]


def test_tagged_only_policy_skips_untagged_vms(cloud):
    sim = cloud(servers=[{"name": "ha", "metadata": HA},
                         {"name": "plain"}])
    cloud.sim = sim
    execution, output = evacuate_host(cloud, policy={"evacuate": "tagged"})
    assert execution.state == "SUCCESS", execution.state_info
    outcomes = {r["name"]: r["outcome"] for r in output["servers"]}
    assert outcomes == {"ha": "moved", "plain": "skipped"}


def test_evacuations_start_in_priority_order(cloud):
    """instance_ha:priority, higher first: the server's metadata, else its
    flavor's extra spec; one at a time (concurrency 1), Nova's call log
    has the evacuations in that order, and the report shows each VM's
    priority."""
    priority = "instance_ha:priority"
    sim = cloud(servers=[
        {"name": "low", "metadata": {priority: "1"}},
        {"name": "none"},
        {"name": "top", "metadata": {priority: "50"}},
        {"name": "big", "flavor": "m1.xlarge"},
        {"name": "odd", "metadata": {priority: "high"}},
    ])
    cloud.sim = sim
    (xlarge,) = [f for f in sim.cloud.flavors.values()
                 if f.name == "m1.xlarge"]
    xlarge.extra_specs[priority] = "7"
    execution, output = evacuate_host(cloud, concurrency=1)
    assert execution.state == "SUCCESS", execution.state_info
    names = {vm.id: vm.name for vm in sim.cloud.servers_on("compute2")
             + sim.cloud.servers_on("compute3")}
    order = [names[c.server_id] for c in sim.cloud.calls.calls(
        operation="evacuate", status=200)]
    assert order[:3] == ["top", "big", "low"]
    assert sorted(order[3:]) == ["none", "odd"]
    priorities = {r["name"]: r["priority"] for r in output["servers"]}
    assert priorities == {"top": 50, "big": 7, "low": 1, "none": 0,
                          "odd": 0}


def test_restart_groups_start_one_after_the_other(cloud):
    """restart_groups ["db", "app"]: every db VM's evacuation is done
    before the first app VM's is sent, and the VMs of no named group come
    after the app VMs, though concurrency would take all at once (Nova's
    call log and migration records)."""
    group, priority = "instance_ha:restart_group", "instance_ha:priority"
    sim = cloud(servers=[
        {"name": "app1", "metadata": {group: "app", priority: "100"}},
        {"name": "db1", "metadata": {group: "db"}},
        {"name": "db2", "metadata": {group: "db", priority: "3"}},
        {"name": "app2", "metadata": {group: "app"}},
        {"name": "loose", "metadata": {priority: "1000"}},
    ])
    cloud.sim = sim
    execution, output = evacuate_host(cloud, concurrency=10,
                                      restart_groups=["db", "app"])
    assert execution.state == "SUCCESS", execution.state_info
    names = {vm.id: vm.name for vm in sim.cloud.servers.values()}
    sent = {names[c.server_id]: c.time for c in sim.cloud.calls.calls(
        operation="evacuate", status=200)}
    done = {names[m.instance_uuid]: m.updated_at.timestamp()
            for m in sim.cloud.migrations}
    assert set(sent) == {"app1", "app2", "db1", "db2", "loose"}
    assert max(done["db1"], done["db2"]) <= min(sent["app1"], sent["app2"])
    assert max(done["app1"], done["app2"]) <= sent["loose"]
    groups = {r["name"]: r["group"] for r in output["servers"]}
    assert groups == {"db1": "db", "db2": "db", "app1": "app",
                      "app2": "app", "loose": None}


def test_empty_host_succeeds_with_zero_vms(cloud):
    cloud.sim = cloud(servers=[])
    execution, output = evacuate_host(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["servers"] == []
    assert output["counts"] == {"moved": 0, "failed": 0, "skipped": 0,
                                "not_attempted": 0}


def test_unknown_host_is_a_clear_error_and_changes_nothing(cloud):
    sim = cloud(servers=[{"name": "vm"}])
    cloud.sim = sim
    execution, _ = evacuate_host(cloud, host="nohost", kill=False)
    assert execution.state == "ERROR"
    assert "nohost" in execution.state_info
    assert [c for c in sim.cloud.calls.calls()
            if c.operation in MUTATIONS] == []


def test_missing_host_input_is_refused(cloud):
    cloud.sim = cloud(servers=[])
    execution, _ = run(cloud.client, "instance_ha.host_evacuate",
                       {"search_opts": {}})
    assert execution.state == "ERROR"
    assert execution.state_info.startswith(
        'bad input: search_opts must be {"host": ')


def test_evacuation_ending_in_error_is_reported_and_others_move(cloud):
    sim = cloud(servers=[{"name": "good1"}, {"name": "bad"},
                         {"name": "good2"}])
    cloud.sim = sim
    bad = next(s for s in sim.cloud.servers_on("compute1")
               if s.name == "bad")
    sim.cloud.faults.add("evacuate", server=bad.id, outcome="error")
    execution, output = evacuate_host(cloud)
    assert execution.state == "ERROR"
    records = {r["name"]: r for r in output["servers"]}
    assert records["good1"]["outcome"] == records["good2"]["outcome"] \
        == "moved"
    assert records["bad"]["outcome"] == "failed"
    assert "wait_until_moved" in records["bad"]["reason"]
    assert output["counts"] == {"moved": 2, "failed": 1, "skipped": 0,
                                "not_attempted": 0}
    assert bad.id in execution.state_info
    # Still on the failed host: it keeps our lock for the next run.
    assert bad.host == "compute1"
    assert (bad.locked, records["bad"]["left_locked"]) == (True, True)
    assert bad.locked_reason == \
        "instance-ha evacuation from compute1; case active"
    assert records["good1"]["left_locked"] is False


def test_no_valid_host_fails_only_the_vms_that_do_not_fit(cloud):
    """Without the capacity estimate, Nova's scheduler finds no room."""
    sim = cloud(servers=[{"name": "small"},
                         {"name": "huge", "flavor": "m1.xlarge"}],
                hosts=2, other_hosts={"memory_mb": 8192})
    cloud.sim = sim
    execution, output = evacuate_host(cloud, check_capacity=False)
    records = {r["name"]: r for r in output["servers"]}
    assert records["small"]["outcome"] == "moved"
    assert records["huge"]["outcome"] == "failed"
    assert "No valid host" in records["huge"]["reason"]
    assert execution.state == "ERROR"


def test_capacity_estimate_moves_the_important_vms_and_leaves_the_rest(
        cloud):
    """Room for two m1.small on the one other host: the estimate (from
    the simulated placement) places the two of highest priority, and the
    third is reported failed without an evacuation, unlocked and where it
    was; the capacity figures are in the output."""
    priority = "instance_ha:priority"
    sim = cloud(servers=[{"name": "low"},
                         {"name": "top", "metadata": {priority: "9"}},
                         {"name": "mid", "metadata": {priority: "5"}}],
                hosts=2, other_hosts={"memory_mb": 4096})
    cloud.sim = sim
    execution, output = evacuate_host(cloud)
    assert execution.state == "ERROR"
    records = {r["name"]: r for r in output["servers"]}
    assert records["top"]["outcome"] == "moved"
    assert records["mid"]["outcome"] == "moved"
    low = records["low"]
    assert output["capacity"]["checked"], output["capacity"]
    assert low["outcome"] == "failed" and low["host"] == "compute1"
    assert low["reason"].startswith("not evacuated: ")
    assert "MEMORY_MB" in low["reason"]
    evacuated = {sim.cloud.servers[i].name
                 for i in sim.cloud.calls.accepted_evacuations()}
    assert evacuated == {"top", "mid"}
    (left,) = sim.cloud.servers_on("compute1")
    assert left.name == "low" and not left.locked
    capacity = output["capacity"]
    assert capacity["checked"] is True and capacity["no_room"] == 1
    assert capacity["hosts"] == ["compute2"]
    assert execution.state_info.startswith(
        f"host compute1: 1 VM(s) not recovered: low {left.id} (not "
        "evacuated: ")


def test_status_shows_a_vm_without_room_as_failed_while_the_run_goes_on(
        cloud):
    from actions_support import gate_evacuations

    from instance_ha import recovery_status

    sim = cloud(servers=[{"name": "held"}, {"name": "spare"}],
                hosts=2, other_hosts={"memory_mb": 2048})
    cloud.sim = sim
    (gate,) = gate_evacuations(sim.cloud, "spawn")
    sim.cloud.kill_host("compute1")
    execution = cloud.client.executions.create(
        "instance_ha.host_evacuate", workflow_input={
            "search_opts": {"host": "compute1"}, "poll_interval": 0.2},
        description="functional test")
    deadline = time.monotonic() + 60
    while not sim.cloud.calls.accepted_evacuations():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    recovery = recovery_status.read(cloud.client, execution.id)
    gate.set()
    outcomes = {vm.name: vm.outcome for vm in recovery.vms}
    (evacuated,) = sim.cloud.calls.accepted_evacuations()
    moving = sim.cloud.servers[evacuated].name
    (left,) = {"held", "spare"} - {moving}
    assert outcomes == {moving: "running", left: "failed"}, outcomes
    execution, output = run(cloud.client, None, None, execution=execution)
    assert output["counts"]["moved"] == 1


def test_capacity_not_checked_holds_nothing_back(cloud):
    """check_capacity false: every VM goes to Nova, which finds no room
    for the third; the output says the estimate was not made."""
    sim = cloud(servers=[{"name": f"vm{i}"} for i in range(3)],
                hosts=2, other_hosts={"memory_mb": 4096})
    cloud.sim = sim
    execution, output = evacuate_host(cloud, check_capacity=False)
    assert len(sim.cloud.calls.accepted_evacuations()) == 3
    assert output["capacity"]["checked"] is False
    assert output["capacity"]["note"] == \
        "capacity not checked: check_capacity is false"
    assert output["counts"]["moved"] == 2


def test_aggregate_failure_limit_refuses_before_any_change(cloud):
    """instance_ha:max_failures=1 on an aggregate holding two failed
    hosts: the run refuses before the force-down; an operator's run with
    ignore_max_failures goes on."""
    sim = cloud(servers=[{"name": "vm"}], hosts=3)
    cloud.sim = sim
    sim.cloud.kill_host("compute3")
    nova = testing.nova(sim, version="2.53")
    aggregate = nova.aggregates.create("rack1", None)
    for host in ("compute1", "compute3"):
        nova.aggregates.add_host(aggregate, host)
    nova.aggregates.set_metadata(aggregate,
                                 {"instance_ha:max_failures": "1"})
    sim.cloud.calls.clear()
    execution, output = evacuate_host(cloud)
    assert execution.state == "ERROR"
    assert execution.state_info == (
        "recovery of compute1 refused: aggregate rack1 allows "
        "instance_ha:max_failures=1 failed hosts and has 2: compute1, "
        "compute3")
    assert not [c for c in sim.cloud.calls.calls()
                if c.method != "GET" and c.operation != "keystone.token"]
    execution, output = evacuate_host(cloud, kill=False,
                                      ignore_max_failures=True)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["failure_limits"] is None


def test_state_info_is_one_line_naming_three_vms_then_how_many_more(cloud):
    sim = cloud(servers=[{"name": f"huge{i}", "flavor": "m1.xlarge"}
                         for i in range(4)],
                hosts=2, other_hosts={"memory_mb": 8192})
    cloud.sim = sim
    execution, output = evacuate_host(cloud, check_capacity=False)
    assert execution.state == "ERROR"
    info = execution.state_info
    assert "\n" not in info
    assert info.startswith("host compute1: 4 VM(s) not recovered: huge")
    assert info.endswith("; and 1 more")
    assert info.count("No valid host") == 3
    assert output["counts"]["failed"] == 4


def test_nova_500_during_listing_is_retried(cloud):
    sim = cloud(servers=[{"name": "vm"}])
    cloud.sim = sim
    sim.cloud.faults.add("servers.detail", status=500, times=2)
    execution, output = evacuate_host(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"]["moved"] == 1


def test_active_vm_stays_active_although_nova_would_stop_it_at_2_95(cloud):
    sim, vm = one_vm(cloud, vm_state="active")
    execution, _ = evacuate_host(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    (call,) = sim.cloud.calls.calls(operation="evacuate", server_id=vm.id)
    major, minor = map(int, call.microversion.split("."))
    assert (major, minor) < (2, 95)
    assert vm.vm_state == "active"


def test_second_run_after_success_changes_nothing(cloud):
    sim, vm = one_vm(cloud, vm_state="active")
    first, _ = evacuate_host(cloud)
    assert first.state == "SUCCESS", first.state_info
    before = len([c for c in sim.cloud.calls.calls()
                  if c.operation in MUTATIONS])
    second, output = evacuate_host(cloud, kill=False)
    assert second.state == "SUCCESS", second.state_info
    assert output["servers"] == []
    after = [c for c in sim.cloud.calls.calls() if c.operation in MUTATIONS]
    assert [c.operation for c in after[before:]] == ["services.update"] \
        or len(after) == before
    assert sim.cloud.calls.accepted_evacuations() == {vm.id: 1}


def test_process_down_disables_the_service_and_leaves_vms(cloud):
    sim = cloud(servers=[{"name": "vm"}])
    (vm,) = sim.cloud.servers_on("compute1")
    execution, output = run(cloud.client, "instance_ha.process_down",
                            {"host": "compute1"})
    assert execution.state == "SUCCESS", execution.state_info
    service = sim.cloud.hosts["compute1"].service
    assert service.disabled and not service.forced_down
    assert output["service"]["disabled"] is True
    assert mutations(sim, vm.id) == []
    assert vm.host == "compute1"


# event instance down: the VM crashed in place on a live host.
INSTANCE_DOWN_ROWS = [
    pytest.param("active", 1, ["lock", "os-stop", "os-start", "unlock"],
                 "active", id="active-stop-start-active"),
    pytest.param("stopped", 4, ["lock", "unlock"], "stopped",
                 id="stopped-reset_stopped-stopped"),
    pytest.param("resized", 1,
                 ["lock", "os-resetState", "os-stop", "os-start", "unlock"],
                 "active", id="resized-reset_error-stop-start-active"),
]


def test_every_instance_down_row_is_run():
    assert sorted(p.values[0] for p in INSTANCE_DOWN_ROWS) == sorted(
        row.before for row in state_table.TABLE
        if row.event == state_table.INSTANCE_DOWN)


def task_result(client, execution, name):
    (task,) = [t for t in client.tasks.list(
        workflow_execution_id=execution.id) if t.name == name]
    return json.loads(client.tasks.get(task.id).result)


@pytest.mark.parametrize("vm_state, power_state, steps, after",
                         INSTANCE_DOWN_ROWS)
def test_instance_down_row(cloud, vm_state, power_state, steps, after):
    """The row's steps, read from the table by instance_restart_steps,
    each carried out in the row's order."""
    sim, vm = one_vm(cloud, vm_state=vm_state, power_state=power_state)
    execution, output = run(cloud.client, "instance_ha.instance_restart",
                            {"server": vm.id})
    assert execution.state == "SUCCESS", execution.state_info
    row = state_table.row(state_table.INSTANCE_DOWN, vm_state)
    assert output == {"id": vm.id, "name": "vm", "outcome": "restarted",
                      "vm_state": after, "reason": row.note}
    assert vm.vm_state == after == row.after
    assert vm.host == "compute1"
    assert not vm.locked
    assert mutations(sim, vm.id) == steps
    carried_out = task_result(cloud.client, execution, "carry_out_steps")
    assert [s["step"] for s in carried_out["steps"]] == list(row.steps)


def test_instance_restart_stops_at_a_crash_loop(cloud):
    sim, vm = one_vm(cloud, vm_state="active")
    limit = {"server": vm.id, "max_restarts": 2, "window": 600}
    for _ in range(2):
        execution, output = run(cloud.client, "instance_ha.instance_restart",
                                limit)
        assert execution.state == "SUCCESS", execution.state_info
    before = mutations(sim, vm.id)
    execution, output = run(cloud.client, "instance_ha.instance_restart",
                            limit)
    assert execution.state == "ERROR"
    assert output["outcome"] == "skipped"
    assert "crash loop" in execution.state_info
    assert mutations(sim, vm.id) == before


def test_instance_restart_leaves_a_vm_nova_places_on_another_host(cloud):
    """The crash was seen on compute2 (the instance monitor's host), but
    Nova places the VM on compute1: the domain is a leftover."""
    sim, vm = one_vm(cloud, vm_state="active")
    execution, output = run(cloud.client, "instance_ha.instance_restart",
                            {"server": vm.id, "host": "compute2"})
    assert execution.state == "SUCCESS", execution.state_info
    assert output["outcome"] == "skipped"
    assert output["reason"] == ("Nova places it on compute1, not on "
                                "compute2 where the crash was seen; left "
                                "alone")
    assert mutations(sim, vm.id) == []


def test_instance_restart_of_unknown_server_is_a_clear_error(cloud):
    cloud(servers=[])
    execution, output = run(cloud.client, "instance_ha.instance_restart",
                            {"server": "00000000-0000-0000-0000-000000000000"})
    assert execution.state == "ERROR"
    assert "could not be found" in execution.state_info


RESERVED = {"disabled": True, "disabled_reason": "instance-ha: reserved"}


def reserved_cloud(cloud, reserved=None, ordinary=None, vms=2):
    """compute1 fails; compute2 is an ordinary host, compute3 reserved."""
    config = {"settings": {"evacuation_time": 0.3, "power_time": 0.05},
              "flavors": cloud.flavors,
              "hosts": [
                  {"name": "compute1", "servers": [
                      {"name": f"vm{i}"} for i in range(1, vms + 1)]},
                  {"name": "compute2", "servers": [], **(ordinary or {})},
                  {"name": "compute3", "servers": [],
                   **RESERVED, **(reserved or {})}]}
    sim = cloud.sim = cloud_from(cloud, config)
    return sim


def cloud_from(cloud, config):
    sim = cloud.factory(config)
    server_process.write_clouds_yaml(cloud.clouds, sim.clouds())
    cloud.pacemaker.show(fake_pacemaker.FENCED, node="compute1")
    return sim


def hosts_of(output):
    return sorted({r["host"] for r in output["servers"]})


def test_reserved_host_method_claims_a_reserved_host(cloud):
    sim = reserved_cloud(cloud)
    execution, output = evacuate_host(cloud, recovery_method="reserved_host")
    assert execution.state == "SUCCESS", execution.state_info
    assert hosts_of(output) == ["compute3"]
    assert sim.cloud.hosts["compute3"].service.disabled is False
    assert sim.cloud.hosts["compute1"].service.disabled_reason.endswith(
        "; reserved host compute3")


def test_reserved_host_enabled_by_an_abandoned_run_is_used(cloud):
    """A run claimed compute3 and enabled it (Nova cleared its reason),
    then was abandoned before any evacuation: the failed host's record
    names compute3, and the next run uses it, not another host."""
    sim = reserved_cloud(cloud, reserved={"disabled": False,
                                          "disabled_reason": None})
    sim.cloud.hosts["compute2"].service.disabled = True
    sim.cloud.hosts["compute2"].service.disabled_reason = \
        "instance-ha: reserved"
    failed = sim.cloud.hosts["compute1"].service
    failed.disabled = failed.forced_down = True
    failed.disabled_reason = ("instance-ha: host recovery x "
                              "started y; reserved host compute3")
    execution, output = evacuate_host(cloud, recovery_method="reserved_host")
    assert execution.state == "SUCCESS", execution.state_info
    assert hosts_of(output) == ["compute3"]
    assert sim.cloud.hosts["compute2"].service.disabled_reason == \
        "instance-ha: reserved"


def test_reserved_host_claimed_by_a_lost_attempt_is_used(cloud):
    """A claim marked the host in Nova, then its answer was lost (the
    process died): the next run finds its own mark and uses that host."""
    sim = reserved_cloud(cloud, reserved={
        "disabled_reason": "instance-ha: claimed for compute1"})
    execution, output = evacuate_host(cloud, recovery_method="reserved_host")
    assert execution.state == "SUCCESS", execution.state_info
    assert hosts_of(output) == ["compute3"]
    service = sim.cloud.hosts["compute3"].service
    assert (service.disabled, service.disabled_reason) == (False, None)


def test_reserved_host_claimed_for_another_failure_is_left_alone(cloud):
    sim = reserved_cloud(cloud, reserved={
        "disabled_reason": "instance-ha: claimed for compute7"})
    execution, output = evacuate_host(cloud, recovery_method="reserved_host")
    assert execution.state == "ERROR"
    assert sim.cloud.calls.accepted_evacuations() == {}
    service = sim.cloud.hosts["compute3"].service
    assert (service.disabled, service.disabled_reason) == (
        True, "instance-ha: claimed for compute7")


def test_reserved_host_from_an_aggregate(cloud):
    sim = reserved_cloud(cloud)
    sim.cloud.add_aggregate("spares", hosts=["compute3"])
    execution, output = evacuate_host(
        cloud, recovery_method="reserved_host",
        reserved_hosts_aggregate="spares")
    assert execution.state == "SUCCESS", execution.state_info
    assert hosts_of(output) == ["compute3"]


def test_reserved_host_method_without_a_reserved_host_fails_clearly(cloud):
    sim = reserved_cloud(cloud, reserved={"disabled": False,
                                          "disabled_reason": None})
    execution, output = evacuate_host(cloud, recovery_method="reserved_host")
    assert execution.state == "ERROR"
    assert output["counts"]["failed"] == 2
    assert all("no target host" in r["reason"] for r in output["servers"])
    assert sim.cloud.calls.accepted_evacuations() == {}


def test_rh_priority_falls_back_to_auto_and_releases_the_unused_host(
        cloud):
    sim = reserved_cloud(cloud, reserved={"memory_mb": 1024})
    execution, output = evacuate_host(cloud, recovery_method="rh_priority")
    assert execution.state == "SUCCESS", execution.state_info
    assert hosts_of(output) == ["compute2"]
    service = sim.cloud.hosts["compute3"].service
    assert service.disabled is True
    assert service.disabled_reason.startswith("instance-ha: reserved")


def test_auto_priority_uses_the_reserved_host_when_auto_fails(cloud):
    sim = reserved_cloud(cloud, ordinary={"memory_mb": 1024})
    execution, output = evacuate_host(cloud, recovery_method="auto_priority",
                                      reserved_hosts=["compute3"])
    assert execution.state == "SUCCESS", execution.state_info
    assert hosts_of(output) == ["compute3"]
    for vm in sim.cloud.servers_on("compute3"):
        assert vm.vm_state == "active"


def test_unknown_recovery_method_is_refused_and_changes_nothing(cloud):
    sim = reserved_cloud(cloud)
    execution, _ = evacuate_host(cloud, recovery_method="fastest")
    assert execution.state == "ERROR"
    assert "recovery_method must be one of" in execution.state_info
    assert [c for c in sim.cloud.calls.calls()
            if c.operation in MUTATIONS] == []


def test_two_hundred_vms_at_concurrency_ten(cloud):
    sim = cloud(servers=[{"name": f"vm{i:03d}"} for i in range(200)],
                other_hosts={"vcpus": 512, "memory_mb": 1024 * 1024,
                             "disk_gb": 65536},
                evacuation_time=0.5)
    cloud.sim = sim
    started = time.monotonic()
    execution, output = evacuate_host(cloud, concurrency=10,
                                      poll_interval=0.5, timeout=900)
    wall = time.monotonic() - started
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"] == {"moved": 200, "failed": 0, "skipped": 0,
                                "not_attempted": 0}
    accepted = sim.cloud.calls.accepted_evacuations()
    assert len(accepted) == 200 and set(accepted.values()) == {1}
    assert sim.cloud.servers_on("compute1") == []
    nova = nova_calls(sim)
    print(f"200 VMs, concurrency 10, 0.5 s evacuations: {wall:.1f} s "
          f"(ideal {200 / 10 * 0.5:.0f} s), "
          f"{len(nova) / 200:.2f} Nova calls per VM, host calls included")
    assert len(nova) <= 6 * 200


def nova_calls(sim):
    """Every compute API request the simulator answered (not Keystone's)."""
    return [c for c in sim.cloud.calls.calls()
            if not c.operation.startswith("keystone.")]


def test_at_most_six_nova_requests_per_vm_polling_included(cloud):
    """A whole host recovery, force-down, listings and every poll
    included, costs at most 6 compute API requests per evacuated VM: an
    active VM is locked, evacuated, read once where it landed and
    unlocked; the batch shares its reads of the host's evacuations."""
    sim = cloud(servers=[{"name": f"vm{i}"} for i in range(10)],
                evacuation_time=1.0)
    cloud.sim = sim
    execution, output = evacuate_host(cloud, poll_interval=2)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"]["moved"] == 10
    calls = nova_calls(sim)
    kinds = collections.Counter(
        c.operation if c.server_id is None else f"server {c.operation}"
        for c in calls)
    assert len(calls) <= 6 * 10, kinds
    for vm in sim.cloud.servers.values():
        mine = [c.operation for c in calls if c.server_id == vm.id]
        assert sorted(mine) == sorted(
            ["lock", "evacuate", "servers.show", "unlock"]), mine


def test_a_moved_vm_left_locked_by_a_stopped_run_is_unlocked(cloud):
    """A run the watchdog stopped never reached its per-VM unlock; the
    next run no longer sees the moved VM on the failed host, and unlocks
    it in its final sweep.  Someone else's lock stays."""
    from instance_ha.simcloud import testing

    sim = cloud(servers=[{"name": "ours"}, {"name": "theirs"}])
    cloud.sim = sim
    sim.cloud.kill_host("compute1")
    nova = testing.nova(sim, "2.73")
    reasons = {"ours": "instance-ha evacuation from compute1; case active",
               "theirs": "maintenance by the tenant"}
    moved = {}
    for vm in sim.cloud.servers_on("compute1"):
        nova.servers.evacuate(vm.id)
        testing.wait_for(lambda vm=vm: vm.host != "compute1"
                         and vm.task_state is None
                         and [m.status for m in sim.cloud.migrations
                              if m.instance_uuid == vm.id] == ["done"])
        nova.servers.lock(vm.id, reason=reasons[vm.name])
        moved[vm.name] = vm
    execution, output = evacuate_host(cloud, kill=False)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["servers"] == []
    assert not moved["ours"].locked
    assert moved["theirs"].locked
    assert moved["theirs"].locked_reason == reasons["theirs"]
    assert sim.cloud.calls.count(operation="unlock",
                                 server_id=moved["theirs"].id) == 0


def test_no_valid_host_then_capacity_back_recovers_every_vm(cloud):
    """NoValidHost leaves each VM in error on the failed host; the run
    reports them failed and keeps them under its lock, whose reason names
    each VM's case.  With capacity back the next run recovers every one
    to its state before the failure; none is skipped as an error VM."""
    sim = cloud(servers=[
        {"name": "was-active", "metadata": HA},
        {"name": "was-off", "vm_state": "stopped", "power_state": 4},
        {"name": "resized-off", "vm_state": "resized", "power_state": 4}])
    cloud.sim = sim
    others = [h for h in sim.cloud.hosts.values() if h.name != "compute1"]
    for host in others:
        host.service.disabled = True
    execution, output = evacuate_host(cloud, check_capacity=False)
    assert execution.state == "ERROR"
    assert output["counts"] == {"moved": 0, "failed": 3, "skipped": 0,
                                "not_attempted": 0}
    vms = {vm.name: vm for vm in sim.cloud.servers_on("compute1")}
    for record in output["servers"]:
        assert record["left_locked"] is True
        assert "No valid host" in record["reason"], record
    for vm in vms.values():
        assert (vm.host, vm.vm_state, vm.locked) == (
            "compute1", "error", True)
        assert vm.locked_reason.startswith(
            "instance-ha evacuation from compute1; case ")

    for host in others:
        host.service.disabled = False
    execution, output = evacuate_host(cloud, kill=False)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"] == {"moved": 3, "failed": 0, "skipped": 0,
                                "not_attempted": 0}
    assert {name: (vm.vm_state, vm.host != "compute1", vm.locked)
            for name, vm in vms.items()} == {
        "was-active": ("active", True, False),
        "was-off": ("stopped", True, False),
        "resized-off": ("stopped", True, False)}
    assert mutations(sim, vms["was-off"].id) == [
        "lock", "evacuate", "evacuate", "os-stop", "unlock"]


@pytest.mark.parametrize("workflow, wf_input, named", [
    ("instance_ha.host_evacuate", {"concurrency": 0}, "concurrency"),
    ("instance_ha.host_evacuate", {"concurrency": -3}, "concurrency"),
    ("instance_ha.host_evacuate", {"policy": {"evacuate": "some"}},
     "policy evacuate"),
    ("instance_ha.host_evacuate", {"recovery_method": "reserved_host",
                                   "reserved_hosts": "spare"},
     "reserved_hosts"),
    ("instance_ha.host_evacuate", {"evacuation_timeout": "ten"},
     "evacuation_timeout"),
    ("instance_ha.host_evacuate",
     {"search_opts": {"host": "compute1", "status": "ACTIVE"}},
     "search_opts"),
    ("instance_ha.host_evacuate", {"on_shared_storage": "yes"},
     "on_shared_storage"),
    ("instance_ha.host_evacuate", {"fencing": {"override": " "}},
     "fencing override"),
    ("instance_ha.host_evacuate", {"fencing": {"skip": True}}, "fencing"),
    ("instance_ha.host_evacuate",
     {"fencing": {"node": "rn1", "override": "powered off at the PDU"}},
     "fencing"),
    ("instance_ha.host_evacuate", {"fencing": "none"}, "fencing"),
    ("instance_ha.instance_restart", {"server": "", "window": "x"},
     "server"),
    ("instance_ha.process_down", {"host": ["compute1"]}, "host"),
])
def test_a_bad_input_changes_nothing_in_nova(cloud, workflow, wf_input,
                                             named):
    sim = cloud(servers=[{"name": "vm"}])
    cloud.sim = sim
    sim.cloud.kill_host("compute1")
    defaults = {"instance_ha.host_evacuate": {
                    "search_opts": {"host": "compute1"}},
                "instance_ha.instance_restart": {"server": "x"},
                "instance_ha.process_down": {"host": "compute1"}}
    execution, _ = run(cloud.client, workflow,
                       dict(defaults[workflow], **wf_input))
    assert execution.state == "ERROR"
    assert "bad input: " + named in execution.state_info
    assert "\n" not in execution.state_info
    assert "Traceback" not in execution.state_info
    assert len(execution.state_info) < 400, execution.state_info
    assert nova_changes(sim) == []
    (vm,) = sim.cloud.servers_on("compute1")
    assert not vm.locked
    assert not sim.cloud.hosts["compute1"].service.forced_down


def test_each_outcome_shows_before_a_slow_vm_ends_and_nothing_twice(cloud):
    """report_within: the fast VMs' outcomes are in Mistral while the slow
    one's evacuation still runs; the next pass only waits for it."""
    from actions_support import gate_evacuations

    from instance_ha import recovery_status

    sim = cloud(servers=[{"name": "fast1"}, {"name": "fast2"},
                         {"name": "slow"}], evacuation_time=0.2)
    cloud.sim = sim
    (gate,) = gate_evacuations(sim.cloud, "spawn", server="slow")
    sim.cloud.kill_host("compute1")
    execution = cloud.client.executions.create(
        "instance_ha.host_evacuate", workflow_input={
            "search_opts": {"host": "compute1"}, "report_within": 0.5,
            "poll_interval": 0.2}, description="functional test")
    deadline = time.monotonic() + 60
    recovery = recovery_status.read(cloud.client, execution.id)
    while recovery.counts()["moved"] < 2:
        assert time.monotonic() < deadline and not recovery.finished, \
            recovery
        time.sleep(0.2)
        recovery = recovery_status.read(cloud.client, execution.id)
    outcomes = {vm.name: vm.outcome for vm in recovery.vms}
    assert outcomes == {"fast1": "moved", "fast2": "moved",
                        "slow": "running"}, outcomes
    gate.set()
    execution, output = run(cloud.client, "instance_ha.host_evacuate",
                            None, execution=execution)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"] == {"moved": 3, "failed": 0, "skipped": 0,
                                "not_attempted": 0}
    assert sorted(r["name"] for r in output["servers"]) == [
        "fast1", "fast2", "slow"]
    assert sorted(sim.cloud.calls.accepted_evacuations().values()) == \
        [1, 1, 1]
    assert not [s for s in sim.cloud.servers.values() if s.locked]
    passes = [t for t in cloud.client.tasks.list(execution.id)
              if t.name == "evacuate_servers"]
    assert len(passes) == 2
