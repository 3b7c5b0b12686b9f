"""Plan the recovery of one crashed VM (the state table's instance_down
rows), with a guard against restarting a VM that keeps crashing."""

import datetime

from instance_ha import nova_client
from instance_ha import state_table
from instance_ha.actions import base


class InstanceRestartPlan(base.NovaAction):
    """Read-only: the server's row of the instance_down table and how
    often Nova started it within the last ``window`` seconds (its
    instance actions, whoever asked).  ``plan`` is ``restart`` when the
    row has steps and the server was started fewer than ``max_restarts``
    times in the window, else ``skip`` with the reason.  ``case``: the
    row (its ``before``), for instance_restart_steps, which reads the
    row's steps from the table; ``last_request_id``: the request id of
    the newest of the server's instance actions (null: none), after which
    instance_restart_steps counts what Nova records as its progress.
    ``host``: where the crash was seen; ``skip`` when Nova places the
    server elsewhere (the crashed domain is a leftover of a move)."""

    def __init__(self, server, max_restarts=3, window=3600, host=None):
        self.server = server
        self.host = host
        self.max_restarts = max_restarts
        self.window = window

    def check(self):
        base.require_text("server", self.server)
        if self.host is not None:
            base.require_text("host", self.host)
        base.require_number("max_restarts", self.max_restarts, minimum=1)
        base.require_number("window", self.window)

    def act(self, nova):
        return nova.retrying(f"planning the restart of {self.server}",
                             lambda: self._attempt(nova),
                             server=self.server)

    def _attempt(self, nova):
        client = nova.client()
        server = nova.server(self.server, client)
        vm_state = nova_client.vm_state_of(server)
        actions = nova.get(f"/servers/{self.server}/os-instance-actions",
                           client)["instanceActions"]
        plan = {"id": self.server, "name": server.get("name"),
                "vm_state": vm_state,
                "host": nova_client.host_of(server),
                "recent_starts": self._recent_starts(actions),
                "last_request_id": actions[0].get("request_id")
                if actions else None,
                "case": None, "steps": [], "expected_vm_state": None,
                "plan": "skip"}
        if self.host is not None and plan["host"] != self.host:
            return {**plan, "reason": (
                f"Nova places it on {plan['host']}, not on {self.host} "
                "where the crash was seen; left alone")}
        try:
            row = state_table.row(state_table.INSTANCE_DOWN, vm_state)
        except KeyError:
            rows = ", ".join(r.before for r in state_table.TABLE
                             if r.event == state_table.INSTANCE_DOWN)
            return {**plan, "reason": f"{vm_state}: no instance_down row "
                                      f"({rows}); left alone"}
        starts = plan["recent_starts"]
        if starts >= self.max_restarts:
            return {**plan, "reason": (
                f"started {starts} times in the last {self.window} s "
                f"(limit {self.max_restarts}): a crash loop, not "
                "restarting it; an operator must look at it")}
        return {**plan, "case": row.before, "steps": list(row.steps),
                "expected_vm_state": row.after, "plan": "restart",
                "reason": row.note}

    def _recent_starts(self, actions):
        since = (datetime.datetime.now(datetime.timezone.utc)
                 - datetime.timedelta(seconds=self.window))
        return sum(1 for action in actions
                   if action.get("action") == "start"
                   and _utc(action.get("start_time")) >= since)


def _utc(text):
    when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when
