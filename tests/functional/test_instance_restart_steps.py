"""instance_restart_steps against the simulated cloud: every instance-down
row's steps carried out, in the row's order, each looking at Nova first;
a run again after a crash sends only what was not done (Nova's instance
actions since the plan are the progress record)."""

import pytest
from actions_support import error_of
from actions_support import run
from actions_support import topology

from instance_ha import state_table
from instance_ha.actions.instance_restart_plan import InstanceRestartPlan
from instance_ha.actions.instance_restart_steps import InstanceRestartSteps
from instance_ha.actions.reset_state import ResetState
from instance_ha.actions.start import Start
from instance_ha.actions.stop import Stop

pytest_plugins = ("actions_support",)

FAST = {"interval": 0.02, "timeout": 5}
MUTATIONS = ("os-resetState", "os-stop", "os-start", "lock", "unlock")
INSTANCE_DOWN = [r for r in state_table.TABLE
                 if r.event == state_table.INSTANCE_DOWN]
# The Nova mutations each row sends to a server in its state.
SENT = {"active": ["os-stop", "os-start"],
        "stopped": [],  # reset_stopped: stopped already
        "resized": ["os-resetState", "os-stop", "os-start"]}


def one_server(make_cloud, vm_state):
    cloud = make_cloud(topology(
        {"compute1": [{"name": "vm", "vm_state": vm_state}]},
        power_time=0.05))
    return cloud, cloud.server("vm")


def mutations(cloud, since):
    return [op for op in cloud.operations(since) if op in MUTATIONS]


def plan_of(server):
    plan = run(InstanceRestartPlan(server.id))
    assert plan["plan"] == "restart", plan
    return plan


def steps_of(plan):
    return run(InstanceRestartSteps(plan["id"], plan["case"],
                                    plan["last_request_id"], **FAST))


def test_every_instance_down_row_is_here():
    assert sorted(SENT) == sorted(r.before for r in INSTANCE_DOWN)


@pytest.mark.parametrize("row", INSTANCE_DOWN, ids=lambda r: r.before)
def test_every_row_is_carried_out_then_a_run_again_sends_nothing(
        make_cloud, row):
    cloud, server = one_server(make_cloud, row.before)
    plan = plan_of(server)
    assert (plan["case"], plan["steps"]) == (row.before, list(row.steps))
    mark = cloud.mark()
    result = steps_of(plan)
    assert result["vm_state"] == server.vm_state == row.after
    assert [s["step"] for s in result["steps"]] == list(row.steps)
    assert mutations(cloud, mark) == SENT[row.before]
    mark = cloud.mark()
    again = steps_of(plan)
    assert again["vm_state"] == row.after
    assert [s["step"] for s in again["steps"]] == list(row.steps)
    assert mutations(cloud, mark) == []


def test_an_active_server_restarted_by_a_crashed_run_is_not_stopped_again(
        make_cloud):
    """Active before and after: only Nova's record of the stop and the
    start since the plan tells that the work is done."""
    cloud, server = one_server(make_cloud, "active")
    plan = plan_of(server)
    run(Stop(server.id, **FAST))
    run(Start(server.id, **FAST))
    mark = cloud.mark()
    result = steps_of(plan)
    assert result["steps"] == [{"step": "stop", "outcome": "done_before"},
                               {"step": "start",
                                "outcome": "already_active"}]
    assert mutations(cloud, mark) == []


@pytest.mark.parametrize("case, done, sent, outcomes", [
    ("active", [Stop], ["os-start"], ["already_stopped", "started"]),
    ("resized", [lambda s, **w: ResetState(s, "error", **w)],
     ["os-stop", "os-start"], ["already_error", "stopped", "started"]),
    ("resized", [lambda s, **w: ResetState(s, "error", **w), Stop],
     ["os-start"], ["done_before", "already_stopped", "started"]),
])
def test_a_run_after_a_crash_sends_only_what_is_left(make_cloud, case, done,
                                                    sent, outcomes):
    cloud, server = one_server(make_cloud, case)
    plan = plan_of(server)
    for step in done:  # what the crashed run had sent
        run(step(server.id, **FAST))
    mark = cloud.mark()
    result = steps_of(plan)
    assert [s["outcome"] for s in result["steps"]] == outcomes
    assert mutations(cloud, mark) == sent
    assert server.vm_state == "active"


def test_a_step_that_fails_is_the_error_named_after_the_step(make_cloud):
    cloud, server = one_server(make_cloud, "active")
    plan = plan_of(server)
    cloud.model.kill_host("compute1")  # its stop never finishes
    error = error_of(run(InstanceRestartSteps(
        server.id, "active", plan["last_request_id"], interval=0.02,
        timeout=0.5)))
    assert error["reason"].startswith("stop: "), error
    assert "not stopped after 0.5 s" in error["reason"]
    assert error["server"] == server.id
