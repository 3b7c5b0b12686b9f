"""``instance-ha processmonitor`` as a process, against the module's
embedded Mistral and the simulated cloud, watching a nova-compute
stand-in (tests/stand_ins.py) that the tests kill with SIGKILL: down for
good, it starts instance_ha.process_down once, however often the monitor
restarts; flapping within its budget, nothing."""

import daemons
import pytest
from stand_ins import StandIns
from stand_ins import wait_until

from instance_ha import server_process
from instance_ha.simcloud import testing

WORKFLOW = "instance_ha.process_down"


@pytest.fixture
def cloud(mistral_cloud):
    return mistral_cloud


@pytest.fixture
def stand_ins(tmp_path):
    started = StandIns(tmp_path)
    yield started
    started.teardown()


@pytest.fixture
def monitors(tmp_path, cloud):
    """start(restart) -> a running processmonitor of compute1 for the
    stand-in, its restart command ``restart``; stopped by PID at
    teardown."""
    started = []

    def start(stand_ins, restart, max_restarts=2):
        config = tmp_path / "processmonitor.yaml"
        config.write_text(
            f"max_restarts: {max_restarts}\nwindow: 600\ninterval: 0.2\n"
            "processes:\n  - name: nova-compute\n"
            f"    match: '{stand_ins.marker}'\n"
            f"    restart: {list(restart)!r}\n")
        monitor = daemons.Daemon(
            [*server_process.instance_ha_command(), "processmonitor",
             "--config", str(config), "--host", "compute1",
             "--state-file", str(tmp_path / "processmonitor.json"),
             "--mistral-url", cloud.client.workflows.http_client.base_url],
            tmp_path / "processmonitor.log", ready="watching")
        started.append(monitor)
        return monitor.start()

    yield start
    for monitor in started:
        monitor.stop()


def runs(cloud):
    return [e for e in cloud.client.executions.list(workflow_name=WORKFLOW)
            if "compute1" in (e.description or "")]


def compute_service(sim):
    (service,) = testing.nova(sim, "2.53").services.list(
        host="compute1", binary="nova-compute")
    return service


def test_a_process_that_cannot_be_restarted_disables_the_host_once(
        cloud, stand_ins, monitors):
    sim = cloud(servers=[{"name": "web"}])
    before = {e.id for e in runs(cloud)}
    stand_ins.start()
    monitor = monitors(stand_ins, ["false"])
    stand_ins.kill_all_running()
    wait_until(lambda: [e for e in runs(cloud) if e.state == "SUCCESS"
                        and e.id not in before],
               "process_down ended", timeout=60)
    service = compute_service(sim)
    assert service.status == "disabled"
    assert "nova-compute down on compute1" in service.disabled_reason
    # The monitor restarted: the same outage, the same execution.
    monitor.stop()
    monitor = monitors(stand_ins, ["false"])
    monitor.wait_for_log("instance_ha.process_down")
    (execution,) = [e for e in runs(cloud) if e.id not in before]
    assert execution.id in monitor.log().splitlines()[-1]
    (vm,) = sim.cloud.servers_on("compute1")
    assert vm.vm_state == "active"


def test_a_flapping_process_restarted_within_its_budget_reports_nothing(
        cloud, stand_ins, monitors):
    sim = cloud(servers=[])
    before = runs(cloud)
    stand_ins.start()
    monitor = monitors(stand_ins, stand_ins.restart, max_restarts=3)
    for restart in (1, 2):
        stand_ins.kill_all_running()
        wait_until(lambda n=restart: len(stand_ins.restarted()) == n
                   and stand_ins.pids(), f"restart {restart} running")
    monitor.wait_for_log("restart 2 of 3")
    assert [e.id for e in runs(cloud)] == [e.id for e in before]
    assert compute_service(sim).status == "enabled"
