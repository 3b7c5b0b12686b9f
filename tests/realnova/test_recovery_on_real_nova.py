"""The pack's workflows on the embedded Mistral against real Nova 34: every
row of the state table (host down, instance down, process down), run
through the real workflows, checked on what Nova says afterwards (host,
status, vm_state, task_state, lock, the evacuation migration), not only on
our report."""

import collections
import re

import pytest
from realnova import last_seq
from realnova import mutations

HA = {"HA_Enabled": "True"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                  r"[0-9a-f]{12}")
OWNER_LOCK = {"reason": "tenant maintenance", "by": "owner"}

# state created -> (outcome, status after, vm_state after)
HOST_DOWN = {
    "active": ("moved", "ACTIVE", "active"),
    "stopped": ("moved", "SHUTOFF", "stopped"),
    "resized": ("moved", "ACTIVE", "active"),
    "resized_stopped": ("moved", "SHUTOFF", "stopped"),
    "paused": ("moved", "ACTIVE", "active"),
    "suspended": ("moved", "ACTIVE", "active"),
    "rescued": ("moved", "ACTIVE", "active"),
    "error": ("skipped", "ERROR", "error"),
}


def host_of(server):
    return server["OS-EXT-SRV-ATTR:host"]


def evacuations(nova, server_id):
    status, body = nova.nova(
        "GET", f"/os-migrations?instance_uuid={server_id}"
               "&migration_type=evacuation", microversion="2.59")
    assert status == 200
    return sorted(body["migrations"], key=lambda m: m["id"])


def fail_host(nova, host="compute1"):
    nova.crash(host)
    nova.wait_service_state(host, "down")


def evacuate_host(mistral, host="compute1", timeout=300, **wf_input):
    # Polls every 0.5 s but for the request count, which uses the default.
    wf_input.setdefault("poll_interval", 0.5)
    mistral.pacemaker.show(node=host)
    return mistral.run("instance_ha.host_evacuate",
                       {"search_opts": {"host": host}, **wf_input},
                       timeout=timeout)


def assert_moved(nova, server_id, status, vm_state, source="compute1",
                 locked=False):
    server = nova.server(server_id)
    assert host_of(server) != source, server
    assert (server["status"], server["OS-EXT-STS:vm_state"],
            server["OS-EXT-STS:task_state"], server["locked"]) == \
        (status, vm_state, None, locked), server
    migration = evacuations(nova, server_id)[-1]
    assert (migration["status"], migration["source_compute"],
            migration["dest_compute"]) == ("done", source, host_of(server))
    return server


def test_host_down_every_state_of_the_table(nova_cloud, realnova_mistral):
    """One host recovery of a VM in each state of the table, plus one
    locked by its owner and one shelved_offloaded (on no host)."""
    nova = nova_cloud
    ids = {state: nova.create_server("compute1", state, metadata=HA)["id"]
           for state in HOST_DOWN}
    ids["locked"] = nova.create_server("compute1", "active",
                                       lock=OWNER_LOCK)["id"]
    shelved = nova.create_server("compute2", "shelved_offloaded")["id"]
    fail_host(nova)
    since = last_seq(nova)
    execution, output = evacuate_host(realnova_mistral, poll_interval=2)
    assert execution.state == "SUCCESS", execution.state_info
    records = {r["id"]: r for r in output["servers"]}
    assert set(records) == set(ids.values())
    assert output["counts"] == {"moved": 8, "failed": 0, "skipped": 1,
                                "not_attempted": 0}
    for state, (outcome, status, vm_state) in HOST_DOWN.items():
        record = records[ids[state]]
        assert record["outcome"] == outcome, (state, record)
        if outcome == "moved":
            server = assert_moved(nova, ids[state], status, vm_state)
            assert (record["host"], record["vm_state"]) == (
                host_of(server), vm_state), (state, record)
    error = nova.server(ids["error"])
    assert (host_of(error), error["status"]) == ("compute1", "ERROR")
    assert evacuations(nova, ids["error"]) == []
    locked = assert_moved(nova, ids["locked"], "ACTIVE", "active",
                          locked=True)
    assert locked["locked_reason"] == OWNER_LOCK["reason"]
    assert nova.server(shelved)["status"] == "SHELVED_OFFLOADED"
    # One accepted evacuation per moved VM.
    posts = [r for r in mutations(nova, since)
             if r["path"].endswith("/action") and r["status"] == 200]
    evacuated = [i for s, i in ids.items() if s != "error"]
    for server_id in evacuated:
        assert len(evacuations(nova, server_id)) == 1
    requests = nova.requests(since)
    per_vm = len(requests) / len(evacuated)
    print(f"\nreal Nova: {len(requests)} compute API requests for "
          f"{len(evacuated)} evacuated VMs ({per_vm:.1f} per VM, host "
          f"requests included); {len(posts)} accepted actions")
    kinds = collections.Counter(
        f"{r['method']} {UUID.sub('{id}', r['path'].split('?')[0])}"
        for r in requests)
    for kind, count in kinds.most_common():
        print(f"  {count:4d}  {kind}")

    # A second run finds nothing to do and changes nothing.
    since = last_seq(nova)
    execution, output = evacuate_host(realnova_mistral)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"] == {"moved": 0, "failed": 0, "skipped": 1,
                                "not_attempted": 0}
    assert mutations(nova, since) == []


def test_error_vm_with_policy_evacuate_ends_in_error_elsewhere(
        nova_cloud, realnova_mistral):
    nova = nova_cloud
    server_id = nova.create_server("compute1", "error")["id"]
    fail_host(nova)
    execution, output = evacuate_host(
        realnova_mistral, policy={"error_servers": "evacuate"})
    assert execution.state == "SUCCESS", execution.state_info
    assert output["servers"][0]["outcome"] == "moved"
    assert_moved(nova, server_id, "ERROR", "error")


def test_tagged_policy_moves_tagged_vms_only(nova_cloud, realnova_mistral):
    nova = nova_cloud
    tagged = nova.create_server("compute1", metadata=HA)["id"]
    plain = nova.create_server("compute1")["id"]
    fail_host(nova)
    execution, output = evacuate_host(realnova_mistral,
                                      policy={"evacuate": "tagged"})
    assert execution.state == "SUCCESS", execution.state_info
    outcomes = {r["id"]: r["outcome"] for r in output["servers"]}
    assert outcomes == {tagged: "moved", plain: "skipped"}
    assert_moved(nova, tagged, "ACTIVE", "active")
    server = nova.server(plain)
    assert (host_of(server), server["status"]) == ("compute1", "ACTIVE")
    assert evacuations(nova, plain) == []


def test_no_valid_host_then_capacity_back(nova_cloud, realnova_mistral):
    """NoValidHost (the capacity estimate off) leaves the VMs in error on
    the failed host; the run reports each failed and keeps it under its
    lock.  With capacity back the next run recovers every VM to its state
    before the failure."""
    nova = nova_cloud
    states = ("active", "stopped", "resized_stopped")
    ids = {s: nova.create_server("compute1", s)["id"] for s in states}
    fail_host(nova)
    others = [h["host"] for h in nova.hosts() if h["host"] != "compute1"]
    for host in others:
        service = nova.service(host)
        nova.nova("PUT", f"/os-services/{service['id']}",
                  {"status": "disabled", "disabled_reason": "full"},
                  microversion="2.53")
    try:
        execution, output = evacuate_host(realnova_mistral,
                                          check_capacity=False)
    finally:
        for host in others:
            service = nova.service(host)
            nova.nova("PUT", f"/os-services/{service['id']}",
                      {"status": "enabled"}, microversion="2.53")
    assert execution.state == "ERROR"
    assert output["counts"] == {"moved": 0, "failed": 3, "skipped": 0,
                                "not_attempted": 0}
    for state, server_id in ids.items():
        server = nova.server(server_id)
        assert (host_of(server), server["status"], server["locked"]) == \
            ("compute1", "ERROR", True), (state, server)
        assert server["locked_reason"] == \
            f"instance-ha evacuation from compute1; case " \
            f"{'resized_was_stopped' if state == 'resized_stopped' else state}"
        assert evacuations(nova, server_id)[-1]["status"] == "error"

    execution, output = evacuate_host(realnova_mistral)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"] == {"moved": 3, "failed": 0, "skipped": 0,
                                "not_attempted": 0}
    assert_moved(nova, ids["active"], "ACTIVE", "active")
    assert_moved(nova, ids["stopped"], "SHUTOFF", "stopped")
    assert_moved(nova, ids["resized_stopped"], "SHUTOFF", "stopped")


def disable_all_but(nova, keep):
    """Every compute host but compute1 and ``keep`` disabled; the hosts
    disabled (to enable again)."""
    others = [h["host"] for h in nova.hosts()
              if h["host"] not in ("compute1", keep)]
    for host in others:
        service = nova.service(host)
        nova.nova("PUT", f"/os-services/{service['id']}",
                  {"status": "disabled", "disabled_reason": "full"},
                  microversion="2.53")
    return others


def enable(nova, hosts):
    for host in hosts:
        service = nova.service(host)
        nova.nova("PUT", f"/os-services/{service['id']}",
                  {"status": "enabled"}, microversion="2.53")


def test_priority_order_and_capacity_on_real_placement(nova_cloud,
                                                       realnova_mistral):
    """One host left to take the VMs, with room in placement for two
    2048 MB VMs (7680 MB, 2048 taken): the estimate from real placement
    places those of priority 9 and 5; the third is reported failed and
    never sent to Nova.  One at a time, the evacuations reach Nova in
    priority order (its migration records)."""
    nova = nova_cloud
    priority = "instance_ha:priority"
    nova.create_server("compute2", name="filler", flavor="m1.small")
    ids = {}
    for name, level in (("low", "0"), ("top", "9"), ("mid", "5")):
        ids[name] = nova.create_server("compute1", name=name,
                                       flavor="m1.small",
                                       metadata={priority: level})["id"]
    fail_host(nova)
    disabled = disable_all_but(nova, "compute2")
    since = last_seq(nova)
    try:
        execution, output = evacuate_host(realnova_mistral, concurrency=1)
    finally:
        enable(nova, disabled)
    assert execution.state == "ERROR"
    records = {r["name"]: r for r in output["servers"]}
    assert (records["top"]["outcome"], records["mid"]["outcome"],
            records["low"]["outcome"]) == ("moved", "moved", "failed")
    assert records["low"]["reason"].startswith("not evacuated: needs ")
    assert output["capacity"]["checked"] is True
    assert output["capacity"]["hosts"] == ["compute2"]
    assert_moved(nova, ids["top"], "ACTIVE", "active")
    assert_moved(nova, ids["mid"], "ACTIVE", "active")
    low = nova.server(ids["low"])
    assert (host_of(low), low["status"], low["locked"]) == \
        ("compute1", "ACTIVE", False), low
    assert evacuations(nova, ids["low"]) == []
    # Nova numbers its migrations as it creates them.
    assert evacuations(nova, ids["top"])[-1]["id"] < \
        evacuations(nova, ids["mid"])[-1]["id"]
    # No request at all names the VM that did not fit, but the reads.
    assert not [r for r in mutations(nova, since)
                if ids["low"] in r["path"]]


def test_an_unknown_host_is_refused_and_nothing_changes(
        nova_cloud, realnova_mistral):
    nova = nova_cloud
    since = last_seq(nova)
    execution, output = evacuate_host(realnova_mistral, host="nohost")
    assert execution.state == "ERROR"
    assert "no nova-compute service on host nohost" in \
        execution.state_info
    assert mutations(nova, since) == []


@pytest.mark.parametrize("state, status", [
    ("active", "ACTIVE"), ("stopped", "SHUTOFF"), ("resized", "ACTIVE")])
def test_instance_down_rows(nova_cloud, realnova_mistral, state, status):
    nova = nova_cloud
    server_id = nova.create_server("compute2", state)["id"]
    execution, output = realnova_mistral.run(
        "instance_ha.instance_restart", {"server": server_id})
    assert execution.state == "SUCCESS", execution.state_info
    assert output["outcome"] == "restarted", output
    server = nova.server(server_id)
    assert (host_of(server), server["status"],
            server["OS-EXT-STS:task_state"], server["locked"]) == \
        ("compute2", status, None, False), server


def test_instance_restart_steps_read_what_real_nova_records(
        nova_cloud, realnova_mistral):
    """instance_restart_steps after a crashed run that stopped and
    started the server sends nothing: real Nova records the stop and the
    start as instance actions, newest first, after the plan's mark."""
    nova = nova_cloud
    server_id = nova.create_server("compute2", "active")["id"]

    def action(name, **action_input):
        execution, output = realnova_mistral.run_action(
            name, dict(action_input, server=server_id))
        assert execution.state == "SUCCESS", output
        return output["result"]

    plan = action("instance_ha.instance_restart_plan")
    assert (plan["case"], plan["steps"]) == ("active", ["stop", "start"])
    assert plan["last_request_id"].startswith("req-")
    action("instance_ha.stop")  # the crashed run's steps
    action("instance_ha.start")
    since = last_seq(nova)
    result = action("instance_ha.instance_restart_steps", case="active",
                    after_request=plan["last_request_id"])
    assert result["steps"] == [
        {"step": "stop", "outcome": "done_before"},
        {"step": "start", "outcome": "already_active"}]
    assert mutations(nova, since) == []
    server = nova.server(server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == \
        ("ACTIVE", None)


def test_instance_restart_from_the_monitor_checks_the_host(
        nova_cloud, realnova_mistral):
    """The instance monitor names the host where the crash was seen: a VM
    that real Nova places elsewhere is left alone, the one it places
    there is stopped and started."""
    nova = nova_cloud
    server_id = nova.create_server("compute2", "active")["id"]
    since = last_seq(nova)
    execution, output = realnova_mistral.run(
        "instance_ha.instance_restart",
        {"server": server_id, "host": "compute3"})
    assert execution.state == "SUCCESS", execution.state_info
    assert output["outcome"] == "skipped"
    assert "not on compute3" in output["reason"]
    assert mutations(nova, since) == []
    execution, output = realnova_mistral.run(
        "instance_ha.instance_restart",
        {"server": server_id, "host": "compute2"})
    assert execution.state == "SUCCESS", execution.state_info
    assert (output["outcome"], output["vm_state"]) == ("restarted",
                                                       "active")
    server = nova.server(server_id)
    assert (host_of(server), server["status"]) == ("compute2", "ACTIVE")


def test_process_down_disables_the_service_and_leaves_the_vms(
        nova_cloud, realnova_mistral):
    nova = nova_cloud
    server_id = nova.create_server("compute3")["id"]
    since = last_seq(nova)
    execution, output = realnova_mistral.run("instance_ha.process_down",
                                             {"host": "compute3"})
    assert execution.state == "SUCCESS", execution.state_info
    service = nova.service("compute3")
    assert service["status"] == "disabled"
    assert service["disabled_reason"].startswith("instance-ha: ")
    assert [r["method"] for r in mutations(nova, since)] == ["PUT"]
    server = nova.server(server_id)
    assert (host_of(server), server["status"]) == ("compute3", "ACTIVE")


def test_at_most_six_requests_per_vm_on_real_nova(nova_cloud,
                                                  realnova_mistral):
    """A host of 10 active VMs recovered at the default poll interval:
    force-down, listings and every poll included, at most 6 compute API
    requests per VM; the capacity estimate reads placement once, then two
    reads per candidate host (inventories, usages)."""
    nova = nova_cloud
    ids = [nova.create_server("compute1", "active")["id"]
           for _ in range(10)]
    fail_host(nova)
    since = last_seq(nova)
    execution, output = evacuate_host(realnova_mistral, poll_interval=2)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["counts"] == {"moved": 10, "failed": 0, "skipped": 0,
                                "not_attempted": 0}
    recorded = nova.requests(since)  # the recovery's, not the checks'
    for server_id in ids:
        assert_moved(nova, server_id, "ACTIVE", "active")
    placement = [r for r in recorded if r["path"].startswith("/placement")]
    requests = [r for r in recorded if r not in placement]
    kinds = collections.Counter(
        f"{r['method']} {UUID.sub('{id}', r['path'].split('?')[0])}"
        for r in requests)
    print(f"\nreal Nova: {len(requests)} compute API requests for 10 VMs "
          f"({len(requests) / 10:.1f} per VM): {dict(kinds)}; "
          f"{len(placement)} placement requests")
    assert len(requests) <= 6 * 10, kinds
    candidates = output["capacity"]["hosts"]
    assert len(placement) == 1 + 2 * len(candidates), placement
