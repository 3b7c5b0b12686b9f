"""Host recoveries through the Keystone-authenticated Mistral on the
simulated cloud, whose Nova takes the real Keystone's tokens only: the
executor has no credentials of its own, so every Nova call is made with
the execution's security context (its token and catalog, and Mistral's
service token).  Roles: what another project and a user without Nova's
admin rights can do (nothing)."""

import os
import subprocess
import sys

import pytest
import requests
from mistralclient.api import base as mistral_base

from instance_ha import mistral_client
from instance_ha import server_process

MUTATIONS = ("lock", "unlock", "os-resetState", "evacuate", "os-stop",
             "os-start", "services.update")


def nova_mutations(sim, since=0):
    """The compute API calls that changed something, after call ``since``
    of the simulated cloud's call log."""
    return [c for c in sim.cloud.calls.calls()[since:]
            if c.method in ("POST", "PUT", "DELETE")
            and not c.operation.startswith("keystone.")
            and c.status is not None and c.status < 300]


def calls_so_far(sim):
    return len(sim.cloud.calls.calls())


def evacuate(mistral, client, host, **wf_input):
    return mistral.run(client, "instance_ha.host_evacuate",
                       {"search_opts": {"host": host}, "poll_interval": 0.5,
                        **wf_input})


@pytest.fixture(scope="module")
def admin_recovery(auth_mistral):
    """compute1's VMs recovered by the admin user: two made here (project
    demo) and any that earlier tests' recoveries moved there.
    (execution, output, the two VMs, compute1's VM count, the call log
    index before the run)."""
    vms = auth_mistral.add_servers("compute1", 2)
    on_host = len(auth_mistral.sim.cloud.servers_on("compute1"))
    auth_mistral.fail_host("compute1")
    before = calls_so_far(auth_mistral.sim)
    execution, output = evacuate(auth_mistral, auth_mistral.client("admin"),
                                 "compute1")
    return execution, output, vms, on_host, before


def test_the_executor_has_no_credentials(auth_mistral, tmp_path):
    """No OS_* variable, no clouds.yaml where openstacksdk looks: the
    same loader the actions would fall back on finds nothing there."""
    pid = auth_mistral.server.pid
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(item.decode().split("=", 1)
                   for item in f.read().split(b"\0") if b"=" in item)
    assert [k for k in env if k.startswith("OS_")] == []
    assert "INSTANCE_HA_CLOUD" not in env
    cwd = os.readlink(f"/proc/{pid}/cwd")
    for directory in (cwd, os.path.join(env["HOME"], ".config", "openstack"),
                      os.path.join(env["XDG_CONFIG_HOME"], "openstack"),
                      "/etc/openstack"):
        for name in ("clouds.yaml", "clouds.yml", "secure.yaml"):
            assert not os.path.exists(os.path.join(directory, name))
    done = subprocess.run(
        [sys.executable, "-c",
         "from instance_ha import cloud_session\n"
         "try:\n    cloud_session.get()\n"
         "except cloud_session.CredentialsError as exc:\n"
         "    print('refused:', exc)\n"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith((
        "refused: no cloud credentials",
        "refused: cannot load the cloud credentials (OS_* variables)")), \
        done.stdout + done.stderr


def test_a_recovery_runs_on_the_executions_security_context(
        auth_mistral, admin_recovery):
    execution, output, vms, on_host, before = admin_recovery
    assert execution.state == "SUCCESS", (execution.state_info, output)
    assert output["counts"]["moved"] == on_host, output
    for vm in vms:
        assert vm.host not in ("compute1", None), vm
        assert not vm.locked
    keystone, sim = auth_mistral.keystone, auth_mistral.sim
    changes = nova_mutations(sim, before)
    assert {c.operation for c in changes} >= {"lock", "evacuate", "unlock",
                                               "services.update"}
    # Every change was made in the name of the admin's project, on a token
    # that the real Keystone validated.
    assert {c.project_id for c in changes} == {keystone.projects["admin"]}
    assert sim.cloud.identity.validations > 0


def test_a_token_that_expires_during_the_recovery(auth_mistral):
    """The recovery is started with a token that expires 40 s later
    (it comes from an application credential that expires then: Keystone
    caps its tokens at that time), and its one evacuation takes 50 s: the
    calls after the 40 s carry an expired token, and Nova lets them in on
    Mistral's service token.  Without the service token, Nova refuses the
    same token (401)."""
    keystone, sim = auth_mistral.keystone, auth_mistral.sim
    credential = keystone.application_credential("admin", 40, "expiry")
    clouds = server_process.write_clouds_yaml(
        str(auth_mistral.workdir / "expiring.yaml"),
        {"clouds": {"expiring": keystone.app_credential_entry(*credential)}})
    starter = mistral_client.connect(cloud="expiring", clouds_yaml=clouds)
    token = starter.executions.http_client.session.get_token()
    (vm,) = auth_mistral.add_servers("compute5", 1)
    # compute1's VMs may have landed there
    on_host = len(sim.cloud.servers_on("compute5"))
    auth_mistral.fail_host("compute5")
    accepted_before = sim.cloud.identity.expired_accepted
    settings = sim.cloud.settings
    saved = settings.evacuation_time
    settings.evacuation_time = 50.0
    try:
        execution = starter.executions.create(
            "instance_ha.host_evacuate", workflow_input={
                "search_opts": {"host": "compute5"}, "poll_interval": 2},
            description="keystone test: token expiry")
        # Followed by the admin (the starter's credential expires).
        execution, output = auth_mistral.run(
            auth_mistral.client("admin"), None, None, execution=execution)
    finally:
        settings.evacuation_time = saved
    assert execution.state == "SUCCESS", (execution.state_info, output)
    assert output["counts"]["moved"] == on_host, output
    assert vm.host not in ("compute5", None) and not vm.locked, vm
    assert sim.cloud.identity.expired_accepted > accepted_before
    answer = requests.get(sim.compute_url + "/servers",
                          headers={"X-Auth-Token": token}, timeout=30)
    assert answer.status_code == 401


def test_another_project_neither_sees_nor_touches_a_recovery(
        auth_mistral, admin_recovery):
    execution = admin_recovery[0]
    tenant = auth_mistral.client("tenant")
    assert execution.id not in {e.id for e in tenant.executions.list()}
    for attempt in (lambda: tenant.executions.get(execution.id),
                    lambda: tenant.executions.update(execution.id,
                                                     "CANCELLED"),
                    lambda: tenant.executions.delete(execution.id),
                    lambda: tenant.tasks.list(execution.id)):
        with pytest.raises(mistral_base.APIException) as refused:
            attempt()
        assert refused.value.error_code in (403, 404), refused.value
    admin = auth_mistral.client("admin")
    assert admin.executions.get(execution.id).state == "SUCCESS"


def test_another_project_cannot_start_a_recovery(auth_mistral):
    """The pack's workflows are the admin project's: another project's
    user cannot start host_evacuate, and Nova gets nothing."""
    sim = auth_mistral.sim
    auth_mistral.add_servers("compute4", 1)
    auth_mistral.fail_host("compute4")
    before = calls_so_far(sim)
    tenant = auth_mistral.client("tenant")
    with pytest.raises(mistral_base.APIException) as refused:
        tenant.executions.create(
            "instance_ha.host_evacuate",
            workflow_input={"search_opts": {"host": "compute4"}})
    # Mistral 23 answers 500 for a workflow it does not find, with
    # "DBEntityNotFoundError: 404: Workflow not found" as the message.
    assert "Workflow not found" in refused.value.error_message, \
        refused.value
    assert "instance_ha.host_evacuate" in refused.value.error_message
    assert nova_mutations(sim, before) == []


def test_a_user_without_novas_admin_rights_gets_a_clear_error(
        auth_mistral):
    """observer: a member of the admin project without the admin role.
    Its host_evacuate fails on Nova's policy, says so, and changes
    nothing in Nova."""
    sim = auth_mistral.sim
    vms = auth_mistral.add_servers("compute3", 2)
    auth_mistral.fail_host("compute3")
    before = calls_so_far(sim)
    execution, output = evacuate(auth_mistral,
                                 auth_mistral.client("observer"),
                                 "compute3")
    assert execution.state == "ERROR", (execution.state, output)
    message = execution.state_info or ""
    # The first admin-only call of a recovery: the failure limits.
    assert "HTTP 403: Policy doesn't allow os_compute_api:" in message, \
        message
    assert "\n" not in message.strip(), message
    assert nova_mutations(sim, before) == []
    for vm in vms:
        assert (vm.host, vm.locked) == ("compute3", False)
