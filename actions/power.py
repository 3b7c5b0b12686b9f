"""What stop and start share: look, act once, wait for Nova's answer."""

import time

from instance_ha import nova_client
from instance_ha.actions import base


class PowerAction(base.NovaAction):
    """Subclasses name Nova's action, the vm_state it leaves, the
    task_state it runs under and the two outcomes."""

    nova_action = None
    target = None
    task_state = None
    done_outcome = None
    already_outcome = None

    def __init__(self, server, timeout=300, interval=1):
        self.server = server
        self.timeout = timeout
        self.interval = interval

    def check(self):
        base.require_text("server", self.server)
        base.require_number("timeout", self.timeout)
        base.require_number("interval", self.interval)

    def act(self, nova):
        sent = []
        server = nova.retrying(f"{self.nova_action} of server "
                               f"{self.server}",
                               lambda: self._attempt(nova, sent),
                               server=self.server)
        waited = server is None
        if waited:
            server = self._wait(nova)
        # A request whose answer was lost may have done the work before
        # the next look: it still counts as ours.
        outcome = self.done_outcome if sent or waited \
            else self.already_outcome
        return {"server": self.server, "outcome": outcome,
                "vm_state": nova_client.vm_state_of(server),
                "host": nova_client.host_of(server)}

    def _attempt(self, nova, sent):
        """The server when it needs nothing; None once the action is sent
        or found under way.  Nova refuses what it cannot do (409), and a
        409 for a task in progress is retried by nova.retrying."""
        client = nova.client()
        server = nova.server(self.server, client)
        vm_state = nova_client.vm_state_of(server)
        task_state = nova_client.task_state_of(server)
        if vm_state == self.target and not task_state:
            return server
        if task_state != self.task_state:
            sent.append(self.nova_action)
            nova.post(f"/servers/{self.server}/action",
                      {self.nova_action: None}, client)
            base.LOG.info("server %s: %s sent", self.server,
                          self.nova_action)
        return None

    def _wait(self, nova):
        deadline = time.monotonic() + self.timeout
        while True:
            server = nova.retrying(f"reading server {self.server}",
                                   lambda: nova.server(self.server),
                                   server=self.server)
            vm_state = nova_client.vm_state_of(server)
            task_state = nova_client.task_state_of(server)
            if vm_state == self.target and not task_state:
                return server
            if vm_state == "error" and not task_state:
                fault = nova_client.fault_of(server) or "no fault recorded"
                raise nova_client.NovaError(
                    f"server {self.server} went to error: {fault}",
                    server=self.server, host=nova_client.host_of(server))
            if time.monotonic() >= deadline:
                raise nova_client.NovaError(
                    f"server {self.server} not {self.target} after "
                    f"{self.timeout} s: vm_state {vm_state}, task_state "
                    f"{task_state}", server=self.server,
                    host=nova_client.host_of(server))
            time.sleep(self.interval)
