"""The operator commands evacuate, status, restart-instance and demo, run
as an operator runs them, against the embedded Mistral and the simulated
cloud."""

import subprocess

import fake_pacemaker
import pytest

from instance_ha import server_process


@pytest.fixture
def cloud(mistral_cloud):
    """A simulated cloud that the module's embedded Mistral acts on."""
    return mistral_cloud


def cli(*args, url=None, timeout=180):
    extra = ["--mistral-url", url] if url else []
    return subprocess.run(
        [*server_process.instance_ha_command(), *args, *extra],
        capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL)


def url_of(cloud):
    return cloud.client.workflows.http_client.base_url


def test_evacuate_wait_prints_the_id_progress_and_table(cloud):
    sim = cloud(servers=[{"name": "web"}, {"name": "db",
                                           "vm_state": "stopped",
                                           "power_state": 4}])
    sim.cloud.kill_host("compute1")
    result = cli("evacuate", "compute1", "--wait", url=url_of(cloud))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    execution_id = lines[0]
    assert lines[1] == ("fencing: Pacemaker: compute1 fenced at "
                        "2026-11-21T06:19:38+00:00")
    execution = cloud.client.executions.get(execution_id)
    assert execution.state == "SUCCESS"
    assert "compute1" in execution.description
    table = "\n".join(lines)
    assert f"recovery {execution_id} of compute1: SUCCESS" in table
    assert ("2 moved, 0 failed, 0 skipped, 0 not_attempted, 0 pending"
            in table)
    assert ("\n  fencing: Pacemaker: compute1 fenced at "
            "2026-11-21T06:19:38+00:00\n") in table
    for vm in sim.cloud.servers_on("compute2") + \
            sim.cloud.servers_on("compute3"):
        assert f"{vm.id}  {vm.name}" in table


def test_evacuate_of_a_host_already_being_recovered_starts_nothing(cloud):
    sim = cloud(servers=[{"name": "web"}], evacuation_time=3.0)
    sim.cloud.kill_host("compute1")
    first = cli("evacuate", "compute1", url=url_of(cloud))
    assert first.returncode == 0, first.stderr
    execution_id = first.stdout.splitlines()[0]
    second = cli("evacuate", "compute1", url=url_of(cloud))
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == (
        f"a recovery of compute1 is already running: {execution_id}")
    followed = cli("status", execution_id, "--watch", url=url_of(cloud))
    assert followed.returncode == 0, followed.stderr
    assert "1 moved" in followed.stdout
    assert list(sim.cloud.calls.accepted_evacuations().values()) == [1]


def test_status_lists_recent_recoveries_and_reports_failures(cloud):
    sim = cloud(servers=[{"name": "bad"}])
    (bad,) = sim.cloud.servers_on("compute1")
    sim.cloud.faults.add("evacuate", server=bad.id, outcome="error")
    sim.cloud.kill_host("compute1")
    result = cli("evacuate", "compute1", "--wait", url=url_of(cloud))
    assert result.returncode == 1
    execution_id = result.stdout.splitlines()[0]
    assert "1 failed" in result.stdout
    listing = cli("status", url=url_of(cloud))
    assert listing.returncode == 0, listing.stderr
    assert execution_id in listing.stdout
    shown = cli("status", execution_id, url=url_of(cloud))
    assert shown.returncode == 0
    assert [bad.id, "bad", "failed"] in [
        line.split()[:3] for line in shown.stdout.splitlines()]
    assert "1 VM(s) not recovered" in shown.stdout


@pytest.mark.parametrize("shown", [fake_pacemaker.ONLINE, None])
def test_evacuate_refuses_a_host_pacemaker_does_not_show_fenced(cloud,
                                                                shown):
    """Pacemaker (where the workflow runs) shows compute1 up, or cannot be
    read: the run refuses at its first step, the command exits 1 and Nova
    gets no change."""
    sim = cloud(servers=[{"name": "web"}])
    if shown:
        cloud.pacemaker.show(shown, node="compute1")
    else:
        cloud.pacemaker.unreadable()
    result = cli("evacuate", "compute1", url=url_of(cloud))
    assert result.returncode == 1
    assert "Error: refusing to evacuate compute1: " in result.stderr
    assert "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not sim.cloud.hosts["compute1"].service.forced_down
    assert sim.cloud.calls.accepted_evacuations() == {}


def test_evacuate_with_an_override_says_so_in_nova(cloud):
    sim = cloud(servers=[{"name": "web"}])
    cloud.pacemaker.show(fake_pacemaker.ONLINE, node="compute1")
    sim.cloud.kill_host("compute1")
    why = "not in Pacemaker; powered off by hand"
    result = cli("evacuate", "compute1", "--fencing-override", why,
                 "--wait", url=url_of(cloud))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == (
        f"fencing: fencing NOT checked, operator override: {why}")
    assert sim.cloud.hosts["compute1"].service.disabled_reason.endswith(why)


@pytest.mark.parametrize("args, words", [
    (["--fencing-override", "off"], "fencing override must say why"),
    (["--fencing-override", "powered off by hand", "--pacemaker-node", "n"],
     "exclude each other"),
])
def test_evacuate_checks_its_input_before_calling_mistral(args, words):
    url = f"http://127.0.0.1:{server_process.free_port()}/v2"
    result = cli("evacuate", "compute1", *args, url=url)
    assert result.returncode == 2
    assert words in result.stderr
    assert "connection refused" not in result.stderr


def test_restart_instance_starts_the_workflow(cloud):
    sim = cloud(servers=[{"name": "web"}])
    (vm,) = sim.cloud.servers_on("compute1")
    result = cli("restart-instance", vm.id, url=url_of(cloud))
    assert result.returncode == 0, result.stderr
    execution = cloud.client.executions.get(result.stdout.strip())
    assert execution.workflow_name == "instance_ha.instance_restart"


def test_status_of_an_unknown_execution_is_a_clear_error(cloud):
    cloud(servers=[])
    result = cli("status", "00000000-0000-0000-0000-000000000000",
                 url=url_of(cloud))
    assert result.returncode == 1
    assert "Mistral answered 404" in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_refuse_an_unreachable_mistral():
    url = f"http://127.0.0.1:{server_process.free_port()}/v2"
    for args in (("evacuate", "compute1"), ("status",),
                 ("restart-instance", "x")):
        result = cli(*args, url=url)
        assert result.returncode == 1, args
        assert "connection refused or host unreachable" in result.stderr
        assert "Traceback" not in result.stderr


def test_demo_recovers_the_failed_host():
    result = subprocess.run(
        [*server_process.instance_ha_command(), "demo",
         "--evacuation-time", "0.3"],
        capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "of compute1: SUCCESS" in result.stdout
    assert ("9 moved, 0 failed, 1 skipped, 0 not_attempted, 0 pending"
            in result.stdout)
    assert "server stopped" not in result.stderr


def test_status_mid_run_shows_every_planned_vm_and_each_finished_batch(
        cloud):
    """What status --watch reads while a recovery runs: every VM the
    listing planned (pending or running) from the start, and each batch's
    outcomes as soon as that batch ends, before the run does."""
    from instance_ha import recovery_status

    sim = cloud(servers=[{"name": f"vm{i}"} for i in range(3)],
                evacuation_time=1.0)
    sim.cloud.kill_host("compute1")
    execution = cloud.client.executions.create(
        "instance_ha.host_evacuate", workflow_input={
            "search_opts": {"host": "compute1"},
            "concurrency": 1, "poll_interval": 0.2})
    seen_planned, seen_early = False, False
    recovery = recovery_status.read(cloud.client, execution.id)
    while not recovery.finished:
        counts = recovery.counts()
        if recovery.vms:
            assert len(recovery.vms) == 3, recovery.vms
            seen_planned = True
        if counts["moved"] and counts["pending"]:
            seen_early = True
        recovery = recovery_status.read(cloud.client, execution.id)
    assert recovery.state == "SUCCESS", recovery.state_info
    assert recovery.counts() == {"moved": 3, "failed": 0, "skipped": 0,
                                 "not_attempted": 0, "pending": 0}
    assert seen_planned and seen_early
