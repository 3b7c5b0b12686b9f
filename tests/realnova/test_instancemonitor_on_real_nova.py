"""The instance monitor end to end against real Nova 34: a domain of the
test's libvirtd (tests/libvirt_support.py) carries the uuid of a server
that real Nova holds on compute2; ``kill -9`` of its qemu makes
``instance-ha instancemonitor`` start instance_ha.instance_restart, which
stops and starts that server in real Nova (its fake virt driver runs no
guest: the domain stands for it)."""

import json

import libvirt_support

WORKFLOW = "instance_ha.instance_restart"


def actions_of(nova, server_id):
    """Real Nova's instance actions of the server, newest first."""
    status, body = nova.nova("GET",
                             f"/servers/{server_id}/os-instance-actions")
    assert status == 200, body
    return [a["action"] for a in body["instanceActions"]]


def restart_of(client, server_id):
    """The one run of instance_restart for the server, once ended
    successfully: (execution, decoded output)."""
    (execution,) = libvirt_support.wait_for(
        lambda: [e for e in client.executions.list(workflow_name=WORKFLOW)
                 if server_id in (e.description or "")
                 and e.state in ("SUCCESS", "ERROR")],
        timeout=180, what="the restart's end")
    assert execution.state == "SUCCESS", execution.state_info
    return execution, json.loads(client.executions.get(execution.id).output)


def test_a_killed_domain_restarts_its_server_in_real_nova(
        nova_cloud, realnova_mistral, libvirtd, instance_monitors):
    nova = nova_cloud
    server_id = nova.create_server("compute2", "active")["id"]
    domain = libvirtd.define(server_id)
    libvirtd.start_domain(domain)
    url = realnova_mistral.client.workflows.http_client.base_url
    monitor = instance_monitors(url=url, host="compute2")
    libvirtd.kill_qemu(domain)
    execution, output = restart_of(realnova_mistral.client, server_id)
    assert (output["outcome"], output["vm_state"]) == ("restarted",
                                                       "active")
    assert actions_of(nova, server_id) == ["unlock", "start", "stop", "lock",
                                           "create"]
    server = nova.server(server_id)
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == (
        "ACTIVE", "compute2")
    monitor.wait_for_log(f"{execution.id} ended SUCCESS")


def test_a_crash_seen_on_another_host_leaves_the_server_alone(
        nova_cloud, realnova_mistral, libvirtd, instance_monitors):
    """The domain crashed on compute3, but real Nova places the server on
    compute2 (a leftover domain of a moved VM): nothing is sent to it."""
    nova = nova_cloud
    server_id = nova.create_server("compute2", "active")["id"]
    domain = libvirtd.define(server_id)
    libvirtd.start_domain(domain)
    url = realnova_mistral.client.workflows.http_client.base_url
    instance_monitors(url=url, host="compute3")
    libvirtd.kill_qemu(domain)
    execution, output = restart_of(realnova_mistral.client, server_id)
    assert output["outcome"] == "skipped"
    assert actions_of(nova, server_id) == ["create"]
