"""``instance-ha instancemonitor`` on a real libvirtd (Debian's, started
here, domains under TCG) against the module's embedded Mistral and the
simulated cloud: a VM whose qemu process is killed with ``kill -9`` gets
one run of instance_ha.instance_restart, whatever else happens."""

import copy
import uuid

import libvirt_support
import pytest

from instance_ha import server_process
from instance_ha import state_table

WORKFLOW = "instance_ha.instance_restart"


@pytest.fixture
def cloud(mistral_cloud):
    return mistral_cloud


def url_of(cloud):
    return cloud.client.workflows.http_client.base_url


def a_vm(cloud, libvirtd, start=True, **server):
    server_id = str(uuid.uuid4())
    sim = cloud(servers=[{"name": "vm", "id": server_id, **server}])
    (vm,) = sim.cloud.servers_on("compute1")
    domain = libvirtd.define(vm.id)
    if start:
        libvirtd.start_domain(domain)
    return sim, vm, domain


def restarts_of(client, server_id):
    return [e for e in client.executions.list(workflow_name=WORKFLOW)
            if server_id in (e.description or "")]


def ended(client, server_id, count=1):
    def check():
        found = restarts_of(client, server_id)
        done = [e for e in found if e.state in ("SUCCESS", "ERROR")]
        return done if len(done) >= count else None
    return libvirt_support.wait_for(check, timeout=120,
                                    what=f"{count} restart(s) of "
                                         f"{server_id} ended")


def nova_mutations(sim, server_id):
    kinds = ("lock", "unlock", "os-resetState", "os-stop", "os-start")
    return [c.operation for c in sim.cloud.calls.calls(server_id=server_id)
            if c.operation in kinds and c.status and c.status < 300]


def test_a_killed_vm_is_restarted_once(cloud, libvirtd, instance_monitors):
    sim, vm, domain = a_vm(cloud, libvirtd)
    monitor = instance_monitors(url=url_of(cloud))
    libvirtd.kill_qemu(domain)
    (execution,) = ended(cloud.client, vm.id)
    assert execution.state == "SUCCESS", execution.state_info
    # The state table's instance-down row of an active VM: stop, start.
    assert state_table.row(state_table.INSTANCE_DOWN, "active").steps == (
        "stop", "start")
    assert nova_mutations(sim, vm.id) == ["lock", "os-stop", "os-start",
                                          "unlock"]
    assert vm.vm_state == "active"
    assert "STOPPED_FAILED" in execution.description
    monitor.wait_for_log(f"{execution.id} ended SUCCESS")
    # Nova's libvirt driver starts the domain again for its os-start.
    libvirtd.start_domain(domain)
    monitor.wait_for_log("STARTED_BOOTED")
    # A restart of the monitor reconciles and finds nothing new.
    monitor.stop()
    monitor = instance_monitors(url=url_of(cloud))
    monitor.wait_for_log("reconciled")
    assert [e.id for e in restarts_of(cloud.client, vm.id)] == [execution.id]


def test_a_second_crash_is_a_second_run(cloud, libvirtd, instance_monitors):
    sim, vm, domain = a_vm(cloud, libvirtd)
    monitor = instance_monitors(url=url_of(cloud))
    libvirtd.kill_qemu(domain)
    (first,) = ended(cloud.client, vm.id)
    monitor.wait_for_log(f"{first.id} ended SUCCESS")
    libvirtd.start_domain(domain)
    monitor.wait_for_log("STARTED_BOOTED")
    libvirtd.kill_qemu(domain)
    runs = ended(cloud.client, vm.id, count=2)
    assert len(runs) == 2 and first.id in [e.id for e in runs]
    assert all(e.state == "SUCCESS" for e in runs)


def test_nova_s_own_stop_starts_nothing(cloud, libvirtd, instance_monitors):
    """Nova's stop: a graceful shutdown (which a guest that boots nothing
    ignores), then destroy."""
    sim, vm, domain = a_vm(cloud, libvirtd)
    monitor = instance_monitors(url=url_of(cloud))
    libvirtd.virsh("shutdown", domain)
    libvirtd.virsh("destroy", domain)
    monitor.wait_for_log("STOPPED_DESTROYED")
    monitor.wait_for_log("nothing to do")
    assert restarts_of(cloud.client, vm.id) == []
    assert nova_mutations(sim, vm.id) == []


def test_a_crash_while_the_monitor_was_down_is_found_at_its_start(
        cloud, libvirtd, instance_monitors):
    sim, vm, domain = a_vm(cloud, libvirtd)
    monitor = instance_monitors(url=url_of(cloud))
    monitor.wait_for_log("reconciled")
    monitor.stop()
    libvirtd.kill_qemu(domain)
    monitor = instance_monitors(url=url_of(cloud))
    (execution,) = ended(cloud.client, vm.id)
    assert execution.state == "SUCCESS", execution.state_info
    assert "SHUTOFF (CRASHED)" in execution.description
    monitor.wait_for_log(f"{execution.id} ended SUCCESS")
    # Still shut off (nothing started it): the same crash, not a new one.
    monitor.stop()
    monitor = instance_monitors(url=url_of(cloud))
    monitor.wait_for_log("reconciled")
    assert len(restarts_of(cloud.client, vm.id)) == 1


def test_a_crash_after_libvirtd_restarted_is_seen(
        cloud, libvirtd, instance_monitors):
    """libvirtd restarts under the monitor: it connects again (and
    reconciles), and the next crash is one run."""
    sim, vm, domain = a_vm(cloud, libvirtd)
    monitor = instance_monitors(url=url_of(cloud))
    libvirtd.restart()
    monitor.wait_for_log("connected to libvirt", count=2)
    libvirtd.kill_qemu(domain)
    (execution,) = ended(cloud.client, vm.id)
    assert execution.state == "SUCCESS", execution.state_info
    assert "STOPPED_FAILED" in execution.description


def test_a_domain_nova_did_not_create_is_ignored(cloud, libvirtd,
                                                 instance_monitors):
    cloud(servers=[])
    domain = libvirtd.define(nova=False)
    libvirtd.start_domain(domain)
    monitor = instance_monitors(url=url_of(cloud))
    monitor.wait_for_log("has no Nova instance metadata")
    libvirtd.kill_qemu(domain)
    monitor.wait_for_log("event STOPPED_FAILED ignored")
    assert [e for e in cloud.client.executions.list(workflow_name=WORKFLOW)
            if domain in (e.description or "")] == []


def test_a_crash_is_kept_while_mistral_is_unreachable(
        cloud, libvirtd, instance_monitors, tmp_path):
    sim, vm, domain = a_vm(cloud, libvirtd)
    port = server_process.free_port()
    later = f"http://127.0.0.1:{port}/v2"
    monitor = instance_monitors(url=later)
    libvirtd.kill_qemu(domain)
    monitor.wait_for_log("asking again later")
    server = server_process.ServerProcess(
        str(tmp_path), port=port,
        env=dict(server_process.cloud_env(str(cloud.clouds)),
                 **cloud.pacemaker.env))
    try:
        server.start()
        from instance_ha import mistral_client
        client = mistral_client.connect(mistral_url=server.url)
        (execution,) = ended(client, vm.id)
        assert execution.state == "SUCCESS", execution.state_info
        assert nova_mutations(sim, vm.id)[-1] == "unlock"
    finally:
        server.stop(timeout=20)
        server.kill()


def test_a_run_that_fails_is_attempted_again(cloud, libvirtd,
                                             instance_monitors):
    """Nova refuses the first run's credentials (a wrong password in the
    executor's clouds.yaml); corrected, the next attempt restarts the
    VM."""
    sim, vm, domain = a_vm(cloud, libvirtd)
    good = sim.clouds()
    bad = copy.deepcopy(good)
    for entry in bad["clouds"].values():
        entry["auth"]["password"] = "wrong"
    server_process.write_clouds_yaml(cloud.clouds, bad)
    monitor = instance_monitors(url=url_of(cloud))
    libvirtd.kill_qemu(domain)
    (first,) = ended(cloud.client, vm.id)
    assert first.state == "ERROR"
    server_process.write_clouds_yaml(cloud.clouds, good)
    monitor.wait_for_log("attempt 2")
    runs = ended(cloud.client, vm.id, count=2)
    assert sorted(e.state for e in runs) == ["ERROR", "SUCCESS"]
    assert vm.vm_state == "active"
