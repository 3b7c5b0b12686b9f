"""Carry out the instance-down row of one crashed server: the row's steps
as instance_ha.state_table has them, each by the code STEPS names, then
check the vm_state the row ends in.

Look before acting, as every action of the pack: each step is the pack's
own stop, start or reset_state action, which reads the server first and
sends nothing when its work is done or under way.  A server's state alone
cannot say whether the active row's stop is still to come or was followed
by its start (active before and after), so Nova's instance actions are the
progress record: the steps Nova records after ``after_request`` (the
newest of the server's instance actions when instance_restart_plan read
them), in the row's order, were sent; those followed by a later one are
not looked at again.  A run again after a crash, or after a result lost
with its executor, sends nothing already done.
"""

import dataclasses

from instance_ha import nova_client
from instance_ha import state_table
from instance_ha.actions import base
from instance_ha.actions import reset_state
from instance_ha.actions import start
from instance_ha.actions import stop


@dataclasses.dataclass(frozen=True)
class Step:
    """``make(server, timeout, interval)``: the action that carries the
    step out; ``recorded_as``: the instance action Nova records for the
    last request it sends."""

    make: object
    recorded_as: str


# Every step an instance-down row may have.  state_table.KNOWN_STEPS names
# the same steps (a row with another one is refused at import), and
# tests/unit check that every row's steps are here.
STEPS = {
    state_table.STOP: Step(stop.Stop, "stop"),
    state_table.START: Step(start.Start, "start"),
    state_table.RESET_ERROR: Step(
        lambda server, **wait: reset_state.ResetState(
            server, state_table.ERROR, **wait), "resetState"),
    state_table.RESET_STOPPED: Step(
        lambda server, **wait: reset_state.ResetState(
            server, state_table.STOPPED, **wait), "stop"),
}


def recorded_steps(steps, actions, after_request):
    """How many of ``steps``, from the first, Nova records in order
    after the instance action ``after_request`` (None: every one counts).
    ``actions``: the server's instance actions, newest first, as Nova
    lists them.  A mark Nova no longer lists counts nothing."""
    newer = []
    for action in actions:
        if after_request is not None and \
                action.get("request_id") == after_request:
            break
        newer.append(action.get("action"))
    else:
        if after_request is not None:
            return 0
    done = 0
    for name in reversed(newer):
        if done < len(steps) and name == STEPS[steps[done]].recorded_as:
            done += 1
    return done


def _outcome(result):
    if "outcome" in result:  # stop, start
        return result["outcome"]
    return "reset" if result["changed"] else "already_" + result["vm_state"]


class InstanceRestartSteps(base.NovaAction):
    """``case``: the server's instance_down row (instance_restart_plan's
    ``case``); ``after_request``: the plan's ``last_request_id``.  Each
    step waits at most ``timeout`` seconds for Nova, reading the server
    every ``interval`` seconds.  Returns server, case, vm_state (the
    row's ``after``) and steps: one {step, outcome} per step in the row's
    order, outcome as the step's action reports it (stopped,
    already_stopped, started, already_active, reset, already_error,
    already_stopped) or ``done_before`` (Nova records it and a later step
    since the plan).  A step that fails is the error, named after the
    step; so is an end state other than the row's."""

    def __init__(self, server, case, after_request=None, timeout=300,
                 interval=1):
        self.server = server
        self.case = case
        self.after_request = after_request
        self.timeout = timeout
        self.interval = interval

    def check(self):
        base.require_text("server", self.server)
        rows = [r.before for r in state_table.TABLE
                if r.event == state_table.INSTANCE_DOWN and r.steps]
        if self.case not in rows:
            raise nova_client.NovaError(
                f"bad input: case must be an instance_down row "
                f"({', '.join(rows)}), not {self.case!r}")
        if self.after_request is not None:
            base.require_text("after_request", self.after_request)
        base.require_number("timeout", self.timeout)
        base.require_number("interval", self.interval)

    def act(self, nova):
        row = state_table.row(state_table.INSTANCE_DOWN, self.case)
        actions = nova.retrying(
            f"reading the instance actions of server {self.server}",
            lambda: nova.get(f"/servers/{self.server}/os-instance-actions")
            ["instanceActions"], server=self.server)
        sent = recorded_steps(row.steps, actions, self.after_request)
        steps = []
        for index, name in enumerate(row.steps):
            if index < sent - 1:
                steps.append({"step": name, "outcome": "done_before"})
                continue
            action = STEPS[name].make(self.server, timeout=self.timeout,
                                      interval=self.interval)
            try:
                action.check()
                result = action.act(nova)
            except nova_client.NovaError as exc:
                exc.reason = f"{name}: {exc.reason}"
                raise
            steps.append({"step": name, "outcome": _outcome(result)})
            base.LOG.info("server %s: %s: %s", self.server, name,
                          steps[-1]["outcome"])
        # The last step always runs, and reports the state it left.
        if result["vm_state"] != row.after:
            raise nova_client.NovaError(
                f"ended {result['vm_state']}, expected {row.after}",
                server=self.server)
        return {"server": self.server, "case": row.before,
                "vm_state": result["vm_state"], "steps": steps}
