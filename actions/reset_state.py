"""Reset a server's state, as the state table's reset steps do."""

import time

from instance_ha import nova_client
from instance_ha.actions import base

STATES = ("active", "error", "stopped")


class ResetState(base.NovaAction):
    """``active`` and ``error`` are Nova's os-resetState (it accepts only
    those two: its schema's enum, admin_actions.py).  Nova has no way to
    set ``stopped``; the state table's reset('stopped') is done the way
    Nova itself reaches it: reset to error (which also clears a stuck
    task_state), then os-stop, which Nova accepts from error, and wait
    until the compute reports the server stopped (bounded by ``timeout``
    seconds).  Nothing is sent when the server already is in ``state``
    with no task under way."""

    def __init__(self, server, state, timeout=300, interval=1):
        self.server = server
        self.state = state
        self.timeout = timeout
        self.interval = interval

    def check(self):
        base.require_text("server", self.server)
        if self.state not in STATES:
            raise nova_client.NovaError(
                f"bad input: state must be one of {', '.join(STATES)}, not "
                f"{self.state!r}")
        base.require_number("timeout", self.timeout)
        base.require_number("interval", self.interval)

    def act(self, nova):
        return nova.retrying(f"resetting server {self.server} to "
                             f"{self.state}", lambda: self._attempt(nova),
                             server=self.server)

    def _attempt(self, nova):
        client = nova.client()
        server = nova.server(self.server, client)
        if self._settled(server):
            return self._result(server, changed=False)
        action = f"/servers/{self.server}/action"
        if self.state != "stopped":
            nova.post(action, {"os-resetState": {"state": self.state}},
                      client)
            base.LOG.info("server %s reset to %s", self.server, self.state)
            return {"server": self.server, "vm_state": self.state,
                    "task_state": None, "changed": True}
        if (nova_client.vm_state_of(server) not in ("active", "error")
                or nova_client.task_state_of(server)):
            nova.post(action, {"os-resetState": {"state": "error"}}, client)
        nova.post(action, {"os-stop": None}, client)
        base.LOG.info("server %s stopped to reset it to stopped",
                      self.server)
        return self._result(self._wait_stopped(nova, client),
                            changed=True)

    def _settled(self, server):
        return (nova_client.vm_state_of(server) == self.state
                and not nova_client.task_state_of(server))

    def _wait_stopped(self, nova, client):
        deadline = time.monotonic() + self.timeout
        while True:
            server = nova.server(self.server, client)
            if self._settled(server):
                return server
            if time.monotonic() >= deadline:
                raise nova_client.NovaError(
                    f"server {self.server} not stopped after "
                    f"{self.timeout} s: vm_state "
                    f"{nova_client.vm_state_of(server)}, task_state "
                    f"{nova_client.task_state_of(server)}",
                    server=self.server)
            time.sleep(self.interval)

    def _result(self, server, changed):
        return {"server": self.server,
                "vm_state": nova_client.vm_state_of(server),
                "task_state": nova_client.task_state_of(server),
                "changed": changed}
