"""``instance-ha process-down HOST``, run through click against the
embedded Mistral and the simulated cloud: nova-compute of HOST disabled
(as Nova's API shows it), its VMs left alone; a bad HOST is refused
before Mistral is asked, an unknown one fails the run, each in one
line."""

import json

import pytest
from click.testing import CliRunner

from instance_ha import cli
from instance_ha import server_process
from instance_ha.simcloud import testing

WORKFLOW = "instance_ha.process_down"


@pytest.fixture
def cloud(mistral_cloud):
    """A simulated cloud that the module's embedded Mistral acts on."""
    return mistral_cloud


def process_down(cloud, *args):
    url = cloud.client.workflows.http_client.base_url
    return CliRunner().invoke(cli.main,
                              ["process-down", *args, "--mistral-url", url])


def compute_service(sim, host):
    """nova-compute of ``host`` as Nova's API lists it."""
    (service,) = testing.nova(sim, "2.53").services.list(
        host=host, binary="nova-compute")
    return service


def runs_of(cloud):
    return [e.id for e in cloud.client.executions.list(
        workflow_name=WORKFLOW)]


def test_process_down_disables_nova_compute_and_leaves_the_vms(cloud):
    sim = cloud(servers=[{"name": "web"}])
    (vm,) = sim.cloud.servers_on("compute1")
    reason = "instance-ha: nova-compute down on compute1 (3 restarts)"
    result = process_down(cloud, "compute1", "--reason", reason, "--wait")
    assert result.exit_code == 0, result.output
    execution_id, outcome = result.stdout.splitlines()
    assert outcome == (f"process-down of compute1: SUCCESS: nova-compute "
                       f"disabled ({reason})")
    execution = cloud.client.executions.get(execution_id)
    assert (execution.workflow_name, execution.state) == (WORKFLOW,
                                                          "SUCCESS")
    assert json.loads(execution.input) == {"host": "compute1",
                                           "reason": reason}
    service = compute_service(sim, "compute1")
    assert (service.status, service.disabled_reason, service.forced_down,
            service.state) == ("disabled", reason, False, "up")
    assert [compute_service(sim, h).status
            for h in ("compute2", "compute3")] == ["enabled", "enabled"]
    assert (vm.host, vm.vm_state) == ("compute1", "active")


def test_without_a_reason_nova_names_the_run(cloud):
    sim = cloud(servers=[])
    result = process_down(cloud, "compute2", "--wait")
    assert result.exit_code == 0, result.output
    execution_id = result.stdout.splitlines()[0]
    service = compute_service(sim, "compute2")
    assert service.status == "disabled"
    assert service.disabled_reason.startswith(
        f"instance-ha: nova-compute down, disabled by {execution_id} at ")


def test_without_wait_it_prints_the_run_and_returns(cloud):
    sim = cloud(servers=[])
    result = process_down(cloud, "compute3")
    assert result.exit_code == 0, result.output
    (execution_id,) = result.stdout.splitlines()
    testing.wait_for(
        lambda: cloud.client.executions.get(execution_id).state
        == "SUCCESS", timeout=60, what="the run to succeed")
    assert compute_service(sim, "compute3").status == "disabled"


@pytest.mark.parametrize("args, error", [
    ([""], 'Error: host must be a non-empty string, not ""'),
    (["  "], 'Error: host must be a non-empty string, not "  "'),
    (["compute1", "--reason", ""],
     'Error: reason must be null or a non-empty string, not ""'),
])
def test_a_bad_input_is_one_line_and_starts_nothing(cloud, args, error):
    sim = cloud(servers=[])
    before = runs_of(cloud)
    result = process_down(cloud, *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == error
    assert result.stdout == ""
    assert runs_of(cloud) == before
    assert compute_service(sim, "compute1").status == "enabled"


def test_a_bad_host_is_refused_before_mistral_is_asked():
    url = f"http://127.0.0.1:{server_process.free_port()}/v2"
    result = CliRunner().invoke(cli.main, ["process-down", "",
                                           "--mistral-url", url])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        'Error: host must be a non-empty string, not ""')
    assert "connection refused" not in result.stderr


def test_an_unknown_host_fails_the_run_in_one_line(cloud):
    sim = cloud(servers=[])
    result = process_down(cloud, "compute9", "--wait")
    assert result.exit_code == 1
    (execution_id,) = result.stdout.splitlines()
    (error,) = result.stderr.splitlines()
    assert error.startswith(f"Error: process-down of compute9 "
                            f"({execution_id}): ERROR: cannot disable "
                            "nova-compute on compute9: ")
    assert "no nova-compute service on host compute9" in error
    assert "Traceback" not in result.output
    assert [compute_service(sim, h).status
            for h in ("compute1", "compute2", "compute3")] == [
        "enabled"] * 3
