"""Aborting a running host recovery (instance-ha abort, and the same two
updates through Mistral's API): no new evacuation starts, those under way
are waited for, the locks the run kept are released, and the report says
which VMs were not attempted.  Real embedded Mistral, simulated cloud."""

import json
import time

import pytest
from click.testing import CliRunner
from workflow_runs import run

from instance_ha import abort
from instance_ha import cli

PRIORITY = "instance_ha:priority"


@pytest.fixture
def cloud(mistral_cloud):
    return mistral_cloud


def start(cloud, **wf_input):
    cloud.sim.cloud.kill_host("compute1")
    return cloud.client.executions.create(
        "instance_ha.host_evacuate",
        workflow_input={"search_opts": {"host": "compute1"},
                        "poll_interval": 0.2, **wf_input},
        description="functional test")


def wait_for_evacuations(sim, count, timeout=60):
    deadline = time.monotonic() + timeout
    while len(sim.cloud.calls.accepted_evacuations()) < count:
        assert time.monotonic() < deadline, "no evacuation started"
        time.sleep(0.02)


def six_vms(cloud, **settings):
    """compute1 with six VMs, vm1 the most important; evacuations slow
    enough that an abort lands while the first pass runs."""
    sim = cloud(servers=[{"name": f"vm{i}", "metadata": {PRIORITY: str(9 - i)}}
                         for i in range(1, 7)],
                evacuation_time=3, **settings)
    cloud.sim = sim
    return sim


def mistral_url(cloud):
    return cloud.client.workflows.http_client.base_url


def test_abort_command_stops_new_evacuations_and_reports_the_rest(cloud):
    sim = six_vms(cloud)
    execution = start(cloud, concurrency=2)
    wait_for_evacuations(sim, 2)
    result = CliRunner().invoke(cli.main, [
        "abort", execution.id, "--reason", "storage array under repair",
        "--mistral-url", mistral_url(cloud)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        f"abort of {execution.id} requested (storage array under repair): "
        "no new evacuation starts; RUNNING")
    execution, output = run(cloud.client, None, None, execution=execution)
    assert execution.state == "ERROR"
    assert execution.state_info.startswith(
        "host compute1: recovery aborted (storage array under repair): 2 "
        "moved, 0 failed, 4 not attempted")
    assert output["aborted"] == "storage array under repair"
    assert output["counts"] == {"moved": 2, "failed": 0, "skipped": 0,
                                "not_attempted": 4}
    records = {r["name"]: r for r in output["servers"]}
    # The pass under way when the abort came finished its two VMs: the
    # two most important ones.
    assert {n for n, r in records.items() if r["outcome"] == "moved"} == \
        {"vm1", "vm2"}
    for name in ("vm3", "vm4", "vm5", "vm6"):
        assert records[name]["outcome"] == "not_attempted"
        assert records[name]["reason"] == (
            "not attempted: the recovery was aborted: storage array "
            "under repair")
        assert records[name]["host"] == "compute1"
    evacuated = sim.cloud.calls.accepted_evacuations()
    assert sorted(sim.cloud.servers[i].name for i in evacuated) == \
        ["vm1", "vm2"]
    # Nothing of ours stays: the moved VMs unlocked, the others never
    # locked.
    assert not [s.name for s in sim.cloud.servers.values() if s.locked]


def test_abort_through_mistral_api_releases_the_locks_the_run_kept(cloud):
    """The two execution updates, made with Mistral's own client; a VM
    whose evacuation failed (no valid host: the capacity estimate off)
    keeps our lock in a run that goes on, and an aborted run releases
    it."""
    sim = cloud(servers=[
        {"name": "huge", "flavor": "m1.xlarge", "metadata": {PRIORITY: "9"}},
        {"name": "slow", "metadata": {PRIORITY: "5"}},
        {"name": "last"}], hosts=2, other_hosts={"memory_mb": 8192},
        evacuation_time=3)
    cloud.sim = sim
    execution = start(cloud, concurrency=1, check_capacity=False)
    wait_for_evacuations(sim, 2)  # huge (failed at once), then slow
    cloud.client.executions.update(execution.id, "PAUSED")
    cloud.client.executions.update(execution.id, "RUNNING",
                                   env={abort.ENV_KEY: "maintenance"})
    execution, output = run(cloud.client, None, None, execution=execution)
    assert execution.state == "ERROR"
    records = {r["name"]: r for r in output["servers"]}
    assert records["huge"]["outcome"] == "failed"
    assert records["huge"]["left_locked"] is True
    assert records["slow"]["outcome"] == "moved"
    assert records["last"]["outcome"] == "not_attempted"
    huge = next(s for s in sim.cloud.servers.values() if s.name == "huge")
    assert huge.host == "compute1" and not huge.locked
    assert not [s.name for s in sim.cloud.servers.values() if s.locked]


def test_a_run_without_abort_keeps_the_lock_of_a_failed_vm(cloud):
    sim = cloud(servers=[{"name": "huge", "flavor": "m1.xlarge"}],
                hosts=2, other_hosts={"memory_mb": 8192})
    cloud.sim = sim
    execution, output = run(cloud.client, None, None,
                            execution=start(cloud, check_capacity=False))
    assert execution.state == "ERROR"
    assert output["aborted"] is None
    (huge,) = sim.cloud.servers.values()
    assert huge.locked


@pytest.mark.parametrize("args, message", [
    (["--reason", ""], "--reason: the reason must be a non-empty text"),
    (["--reason", "x" * 201],
     "--reason: the reason must be at most 200 characters"),
])
def test_bad_reason_is_refused_before_mistral_is_asked(cloud, args, message):
    result = CliRunner().invoke(cli.main, [
        "abort", "0b1c2d3e-0000-4000-8000-000000000000", *args,
        "--mistral-url", "http://127.0.0.1:9/v2"])
    assert result.exit_code == 2
    assert message in result.output


def test_abort_of_an_ended_or_other_execution_changes_nothing(cloud):
    sim = cloud(servers=[{"name": "vm"}])
    cloud.sim = sim
    ended, _ = run(cloud.client, None, None, execution=start(cloud))
    assert ended.state == "SUCCESS"
    other, _ = run(cloud.client, "instance_ha.process_down",
                   {"host": "compute1"})
    url = mistral_url(cloud)
    for execution, message in (
            (ended, f"execution {ended.id} has ended (SUCCESS): nothing "
                    "to abort"),
            (other, f"execution {other.id} runs instance_ha.process_down; "
                    "only host recoveries (instance_ha.host_evacuate) can "
                    "be aborted"),
            (None, "no execution 0b1c2d3e-0000-4000-8000-000000000000 in "
                   "Mistral")):
        execution_id = execution.id if execution else \
            "0b1c2d3e-0000-4000-8000-000000000000"
        result = CliRunner().invoke(cli.main, ["abort", execution_id,
                                               "--mistral-url", url])
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {message}\n"
    after = cloud.client.executions.get(ended.id)
    assert after.state == "SUCCESS"
    assert json.loads(after.params).get("env") in (None, {})
