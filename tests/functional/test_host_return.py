"""instance_ha.host_return on the embedded Mistral, the simulated cloud
and a fake Pacemaker (tests/fake_pacemaker.py): a host that
host_evacuate left forced down and disabled is returned to service once
Pacemaker shows it online, its nova-compute runs again and every
evacuation from it is completed; each refusal changes nothing in Nova
(the service as Nova's API lists it, and no mutating request).  Then
``instance-ha host-return``."""

import datetime
import json
import logging
import os
import time

import fake_pacemaker
import pytest
from click.testing import CliRunner
from workflow_runs import run

from instance_ha import cli
from instance_ha import server_process
from instance_ha.agent import config as config_module
from instance_ha.agent import handoff
from instance_ha.agent import monitor
from instance_ha.agent import statefile
from instance_ha.hostmonitor import crm_mon
from instance_ha.simcloud import testing

WORKFLOW = "instance_ha.host_return"
# tests/unit/hostmonitor/fixtures/live: rn1's daemon restarted and
# reconnected after its fencing.
BACK_ONLINE = "crm_mon_rn1_back_online.xml"
# rn1 fenced, the cluster retrying the connection: online="true" in
# crm_mon, connection Starting.
RECONNECTING = "crm_mon_rn1_fenced_reconnecting.xml"


@pytest.fixture
def cloud(mistral_cloud):
    """A simulated cloud that the module's embedded Mistral acts on."""
    return mistral_cloud


def host_return(cloud, **wf_input):
    return run(cloud.client, WORKFLOW, {"host": "compute1", **wf_input})


def service(sim, host="compute1"):
    """nova-compute of ``host`` as Nova's API lists it: the fields an
    update would change, and Nova's state."""
    (svc,) = testing.nova(sim, "2.53").services.list(
        host=host, binary="nova-compute")
    return {"status": svc.status, "forced_down": svc.forced_down,
            "disabled_reason": svc.disabled_reason, "state": svc.state}


def nova_changes(sim):
    return [c for c in sim.cloud.calls.calls()
            if c.method in ("POST", "PUT", "DELETE")
            and not c.operation.startswith("keystone.")]


def evacuated(cloud, servers=({"name": "vm0"}, {"name": "vm1"}),
              revive=True, **settings):
    """compute1 failed, fenced and evacuated by host_evacuate (forced
    down, disabled); then, with ``revive``, repaired: its nova-compute
    runs again (the simulated cloud completes the done evacuations) and
    Pacemaker shows it back online."""
    sim = cloud(servers=[dict(s) for s in servers], **settings)
    sim.cloud.kill_host("compute1")
    execution, _ = run(cloud.client, "instance_ha.host_evacuate",
                       {"search_opts": {"host": "compute1"}})
    assert execution.state == "SUCCESS", execution.state_info
    before = service(sim)
    assert (before["status"], before["forced_down"]) == ("disabled", True)
    if revive:
        sim.cloud.revive_host("compute1")
        cloud.pacemaker.show(BACK_ONLINE, node="compute1")
    return sim


def assert_refused(execution, output, sim, before, changes, why):
    assert execution.state == "ERROR"
    assert execution.state_info.startswith(
        "refusing to return compute1 to service: " + why), \
        execution.state_info
    assert execution.state_info.endswith("; nothing was changed")
    assert "\n" not in execution.state_info
    assert "Traceback" not in execution.state_info
    assert output["changed"] is None
    assert output["error"] == execution.state_info
    assert service(sim) == before
    assert nova_changes(sim) == changes


def test_a_repaired_host_is_enabled_and_no_longer_forced_down(cloud):
    sim = evacuated(cloud)
    changes = nova_changes(sim)
    execution, output = host_return(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    assert service(sim) == {"status": "enabled", "forced_down": False,
                            "disabled_reason": None, "state": "up"}
    (put,) = nova_changes(sim)[len(changes):]
    assert (put.operation, put.status) == ("services.update", 200)
    assert output["host"] == "compute1"
    assert output["changed"] == {"forced_down_unset": True,
                                 "enabled": True}
    checked = output["checked"]
    assert (checked["pacemaker"]["node"],
            checked["pacemaker"]["decision"]) == ("compute1", "online")
    assert checked["compute"]["forced_down"] is True
    assert checked["compute"]["evidence"].startswith(
        "a heartbeat while forced down (updated_at ")
    assert checked["evacuations"]["by_status"] == {"completed": 2}
    assert output["service"]["disabled"] is False

    # Run again: the checks pass, nothing is sent.
    changes = nova_changes(sim)
    execution, output = host_return(cloud)
    assert execution.state == "SUCCESS", execution.state_info
    assert output["changed"] == {"forced_down_unset": False,
                                 "enabled": False}
    assert output["checked"]["compute"]["evidence"] == "Nova reports it up"
    assert nova_changes(sim) == changes


def test_leave_disabled_only_unsets_forced_down(cloud):
    sim = evacuated(cloud)
    reason = service(sim)["disabled_reason"]
    assert reason.startswith("instance-ha: host recovery ")
    execution, output = host_return(cloud, leave_disabled=True)
    assert execution.state == "SUCCESS", execution.state_info
    assert service(sim) == {"status": "disabled", "forced_down": False,
                            "disabled_reason": reason, "state": "up"}
    assert output["changed"] == {"forced_down_unset": True,
                                 "enabled": False}
    assert (output["service"]["disabled"],
            output["service"]["disabled_reason"]) == (True, reason)


def test_the_pacemaker_node_can_be_named_apart_from_the_nova_host(cloud):
    sim = evacuated(cloud)
    cloud.pacemaker.show(BACK_ONLINE, node="rn7")
    execution, output = host_return(cloud, node="rn7")
    assert execution.state == "SUCCESS", execution.state_info
    assert output["checked"]["pacemaker"]["node"] == "rn7"
    assert service(sim)["status"] == "enabled"


@pytest.mark.parametrize("fixture, why", [
    (fake_pacemaker.FENCED, "Pacemaker does not show compute1 online "
                            "(failed_fenced: offline (connection compute1 "
                            "failed); fenced (reboot) at "),
    (fake_pacemaker.UNCLEAN, "Pacemaker does not show compute1 online "
                             "(failed_unfenced: offline (connection compute1 "
                             "failed), unclean: fencing under way"),
    (RECONNECTING, "Pacemaker does not show compute1 online "
                   "(failed_fenced: online in crm_mon but its connection "
                   "compute1 is Starting"),
    (None, "cannot read Pacemaker on this executor"),
], ids=["fenced", "unclean", "reconnecting", "unreadable"])
def test_refused_unless_pacemaker_shows_the_node_online(cloud, fixture,
                                                        why):
    sim = evacuated(cloud)
    if fixture:
        cloud.pacemaker.show(fixture, node="compute1")
    else:
        cloud.pacemaker.unreadable()
    before, changes = service(sim), nova_changes(sim)
    execution, output = host_return(cloud)
    assert_refused(execution, output, sim, before, changes, why)
    assert output["checked"] == {"pacemaker": None, "compute": None,
                                 "evacuations": None}


def test_refused_while_nova_compute_sends_no_heartbeat(cloud):
    """Pacemaker shows the node online, but nova-compute is not running:
    forced down, Nova says down whatever it does, and its updated_at
    stays where the force-down left it."""
    sim = evacuated(cloud, revive=False)
    cloud.pacemaker.show(BACK_ONLINE, node="compute1")
    before, changes = service(sim), nova_changes(sim)
    execution, output = host_return(cloud, heartbeat_wait=3)
    assert_refused(execution, output, sim, before, changes,
                   "nova-compute on compute1 sent no heartbeat within 3 s "
                   "(forced down, so Nova shows it down whatever it does; "
                   "updated_at still ")
    assert output["checked"]["pacemaker"]["decision"] == "online"
    assert output["checked"]["compute"] is None
    # Nova itself would refuse too: the evacuations are still done.
    assert {m.status for m in sim.cloud.migrations} == {"done"}


def evacuate_by_hand(sim, server_id):
    answer = testing.request(sim, "POST", f"/servers/{server_id}/action",
                             version="2.53", json={"evacuate": {}})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("evacuation_time, statuses", [
    (0.3, ("done",)), (60, ("accepted", "pre-migrating"))],
    ids=["done", "under-way"])
def test_refused_while_an_evacuation_is_not_completed(
        cloud, evacuation_time, statuses):
    """After the restart, an evacuation from the host (still forced down)
    by hand, of a VM in error that host_evacuate skipped: under way, or
    done and waiting for the next restart of the host's nova-compute."""
    sim = evacuated(cloud, servers=[{"name": "broken",
                                     "vm_state": "error"}],
                    evacuation_time=evacuation_time)
    (broken,) = sim.cloud.servers_on("compute1")
    assert sim.cloud.migrations == []
    evacuate_by_hand(sim, broken.id)
    (migration,) = sim.cloud.migrations
    if statuses == ("done",):
        testing.wait_for(lambda: migration.status == "done", timeout=30,
                         what="the evacuation to be done")
    before, changes = service(sim), nova_changes(sim)
    execution, output = host_return(cloud)
    named = (f"1 evacuation(s) from compute1 not completed (migration "
             f"{migration.id} of server {broken.id} ")
    assert_refused(execution, output, sim, before, changes, named)
    shown = execution.state_info[len(
        "refusing to return compute1 to service: " + named):]
    assert shown.split(")")[0] in statuses, execution.state_info
    assert shown.endswith("): restart nova-compute on the host, which "
                          "completes them, or wait for those under way; "
                          "nothing was changed"), execution.state_info
    assert output["checked"]["compute"]["evidence"].startswith(
        "a heartbeat while forced down")
    assert output["checked"]["evacuations"] is None


@pytest.mark.parametrize("wf_input, named", [
    ({"host": ""}, "host must be a non-empty string"),
    ({"node": ""}, "node must be null or a non-empty string"),
    ({"leave_disabled": "yes"}, "leave_disabled must be true or false"),
    ({"leave_disabled": None}, "leave_disabled must be true or false"),
    ({"heartbeat_wait": 0}, "heartbeat_wait must be a number of seconds "
                            "from 1 to 600"),
])
def test_a_bad_input_is_one_line_and_changes_nothing(cloud, wf_input,
                                                      named):
    sim = evacuated(cloud)
    before, changes = service(sim), nova_changes(sim)
    execution, output = host_return(cloud, **wf_input)
    assert execution.state == "ERROR"
    assert execution.state_info.startswith("bad input: " + named), \
        execution.state_info
    assert "\n" not in execution.state_info
    assert "Traceback" not in execution.state_info
    assert service(sim) == before
    assert nova_changes(sim) == changes


def test_an_unknown_host_is_refused_in_one_line(cloud):
    sim = cloud(servers=[])
    cloud.pacemaker.show(BACK_ONLINE, node="compute9")
    execution, _ = run(cloud.client, WORKFLOW, {"host": "compute9"})
    assert execution.state == "ERROR"
    assert execution.state_info == (
        "refusing to return compute9 to service: no nova-compute service "
        "on host compute9; nothing was changed")
    assert nova_changes(sim) == []


# -- instance-ha host-return ---------------------------------------------

def host_return_command(cloud, *args):
    url = cloud.client.workflows.http_client.base_url
    return CliRunner().invoke(cli.main,
                              ["host-return", *args, "--mistral-url", url])


def test_the_command_returns_the_host_and_says_what_changed(cloud):
    sim = evacuated(cloud)
    cloud.pacemaker.show(BACK_ONLINE, node="rn1")
    result = host_return_command(cloud, "compute1", "--pacemaker-node",
                                 "rn1", "--wait")
    assert result.exit_code == 0, result.output
    execution_id, outcome = result.stdout.splitlines()
    assert outcome == ("host-return of compute1: SUCCESS: forced_down "
                       "unset, enabled")
    execution = cloud.client.executions.get(execution_id)
    assert json.loads(execution.input) == {
        "host": "compute1", "node": "rn1", "leave_disabled": False,
        "heartbeat_wait": 30}
    assert service(sim)["status"] == "enabled"


def test_the_command_with_leave_disabled_names_the_reason(cloud):
    sim = evacuated(cloud)
    reason = service(sim)["disabled_reason"]
    result = host_return_command(cloud, "compute1", "--leave-disabled",
                                 "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"host-return of compute1: SUCCESS: forced_down unset, left "
        f"disabled ({reason})")
    assert service(sim)["forced_down"] is False


def test_the_command_shows_a_refusal_in_one_line(cloud):
    sim = evacuated(cloud)
    cloud.pacemaker.show(fake_pacemaker.FENCED, node="compute1")
    before = service(sim)
    result = host_return_command(cloud, "compute1", "--wait")
    assert result.exit_code == 1
    (execution_id,) = result.stdout.splitlines()
    (error,) = result.stderr.splitlines()
    assert error.startswith(
        f"Error: host-return of compute1 ({execution_id}): ERROR: "
        "refusing to return compute1 to service: Pacemaker does not show "
        "compute1 online (failed_fenced")
    assert service(sim) == before


@pytest.mark.parametrize("args, error", [
    ([""], 'Error: host must be a non-empty string, not ""'),
    (["compute1", "--pacemaker-node", " "],
     'Error: node must be null or a non-empty string, not " "'),
])
def test_the_command_refuses_a_bad_input_before_mistral_is_asked(args,
                                                                 error):
    url = f"http://127.0.0.1:{server_process.free_port()}/v2"
    result = CliRunner().invoke(cli.main, ["host-return", *args,
                                           "--mistral-url", url])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == error
    assert result.stdout == ""


# -- the agent with return_hosts -----------------------------------------

def test_the_agent_with_return_hosts_returns_the_host_it_recovered(
        cloud, caplog, monkeypatch):
    """The agent's monitor pass on the live captures of rn1 (Nova's
    compute1, host_map), against the embedded Mistral: it hands rn1's
    failure to host_evacuate, sees it end in SUCCESS, then sees rn1 back
    online and starts host_return under the failure's return id with
    the Nova host and the Pacemaker node, and logs its success."""
    monkeypatch.setenv("TZ", "UTC")  # the captures' local times
    time.tzset()
    fenced_at = datetime.datetime(2026, 11, 21, 6, 19, 38,
                                  tzinfo=datetime.timezone.utc)
    sim = cloud(servers=[{"name": "vm0"}, {"name": "vm1"}])
    sim.cloud.kill_host("compute1")
    cloud.pacemaker.show(fake_pacemaker.FENCED, node="rn1")
    config = config_module.AgentConfig(
        mistral_url="http://unused/v2", host_map=(("rn1", "compute1"),),
        return_hosts=True)
    caplog.set_level(logging.INFO, logger="test.agent.return")
    clock = [fenced_at + datetime.timedelta(seconds=2)]
    state = statefile.empty()

    def monitor_pass(capture):
        clock[0] += datetime.timedelta(seconds=10)
        status = crm_mon.read_file(os.path.join(fake_pacemaker.LIVE,
                                                capture))
        deps = monitor.Dependencies(
            config, logging.getLogger("test.agent.return"),
            clock=lambda: clock[0], read=lambda: status, store=store,
            connect=lambda: cloud.client, origin="functional test")
        monitor.run(state, deps)

    store = fake_pacemaker.CibRecords()
    try:
        monitor_pass("crm_mon_fencing_succeeded.xml")
        (entry,) = state["watch"].values()
        evacuation, _ = run(cloud.client, None, None,
                            execution=cloud.client.executions.get(
                                entry["execution_id"]))
        assert evacuation.state == "SUCCESS", evacuation.state_info
        monitor_pass("crm_mon_fencing_succeeded.xml")
        assert entry["execution_id"] == evacuation.id
        assert state["watch"][entry["failure"]]["outcome"] == "SUCCESS"
        assert service(sim)["forced_down"] is True

        # Repaired: nova-compute runs again, Pacemaker shows rn1 online.
        sim.cloud.revive_host("compute1")
        cloud.pacemaker.show(BACK_ONLINE, node="rn1")
        monitor_pass(BACK_ONLINE)
        return_id = handoff.return_execution_id("rn1", fenced_at)
        (noted,) = state["returns"].values()
        assert noted["execution_id"] == return_id
        returned, output = run(cloud.client, None, None,
                               execution=cloud.client.executions.get(
                                   return_id))
        assert returned.state == "SUCCESS", returned.state_info
        assert json.loads(returned.input) == {
            "host": "compute1", "node": "rn1", "leave_disabled": False,
            "heartbeat_wait": 30}
        assert output["checked"]["pacemaker"]["node"] == "rn1"
        for _ in range(2):
            monitor_pass(BACK_ONLINE)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert service(sim) == {"status": "enabled", "forced_down": False,
                            "disabled_reason": None, "state": "up"}
    assert noted["outcome"] == "SUCCESS"
    said = [r.getMessage() for r in caplog.records
            if r.name == "test.agent.return"]
    assert [m for m in said if "returned to service" in m] == [
        f"rn1: returned to service: host_return execution {return_id} "
        "SUCCESS (forced_down unset, enabled)"]
    assert len([m for m in said if "returning it to service" in m]) == 1
    returns = [e for e in cloud.client.executions.list(
        workflow_name=WORKFLOW, limit=1000) if e.id == return_id]
    assert len(returns) == 1
