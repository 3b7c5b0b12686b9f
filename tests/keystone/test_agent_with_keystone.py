"""The OCF agent's monitor pass configured as in production with Keystone:
``cloud=`` and ``clouds_yaml=``, no ``mistral_url``.  It finds Mistral in
the catalog, authenticates, and hands a failure Pacemaker shows (a live
capture) to the authenticated Mistral, whose host_evacuate then recovers
the host on the execution's security context."""

import datetime
import logging
import os
import time

import fake_pacemaker

from instance_ha.agent import config as config_module
from instance_ha.agent import monitor
from instance_ha.agent import statefile
from instance_ha.hostmonitor import crm_mon

# crm_mon_fencing_succeeded.xml: rn1 fenced at this time.
FENCED_AT = datetime.datetime(2026, 11, 21, 6, 19, 38,
                              tzinfo=datetime.timezone.utc)
CAPTURE = "crm_mon_fencing_succeeded.xml"
HOST = "compute6"


def test_the_agent_with_cloud_starts_the_recovery_through_keystone(
        auth_mistral, monkeypatch):
    vms = auth_mistral.add_servers(HOST, 2)
    auth_mistral.sim.cloud.kill_host(HOST)
    # What confirm_fencing reads on the executor.
    auth_mistral.pacemaker.show(fake_pacemaker.FENCED, node="rn1")
    config = config_module.AgentConfig(
        cloud="keystone-admin", clouds_yaml=str(auth_mistral.clouds_yaml),
        host_map=(("rn1", HOST),))
    assert config.mistral_url == ""
    state = statefile.empty()
    monkeypatch.setenv("TZ", "UTC")  # the capture's local times
    time.tzset()
    try:
        status = crm_mon.read_file(os.path.join(fake_pacemaker.LIVE,
                                                CAPTURE))
        deps = monitor.Dependencies(
            config, logging.getLogger("test.agent.keystone"),
            clock=lambda: FENCED_AT + datetime.timedelta(seconds=12),
            read=lambda: status, store=fake_pacemaker.CibRecords(),
            origin="keystone test")
        monitor.run(state, deps)
    finally:
        monkeypatch.undo()
        time.tzset()
    (entry,) = state["watch"].values()
    client = auth_mistral.client("admin")
    started = client.executions.get(entry["execution_id"])
    assert started.workflow_name == "instance_ha.host_evacuate"
    assert started.project_id == auth_mistral.keystone.projects["admin"]
    execution, output = auth_mistral.run(client, None, None,
                                         execution=started)
    assert execution.state == "SUCCESS", execution.state_info
    assert sorted(r["id"] for r in output["servers"]
                  if r["outcome"] == "moved") == sorted(v.id for v in vms)
    for vm in vms:
        assert vm.host not in (HOST, None) and not vm.locked, vm
