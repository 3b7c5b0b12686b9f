"""Wait until a server's evacuation is really over."""

import time

from instance_ha import nova_client
from instance_ha.actions import base
from instance_ha.actions import evacuate

SUCCEEDED = ("done", "completed")
FAILED = ("failed", "error")
VM_STATES = ("active", "stopped", "error")
# Seconds a server may still read as on the source host after its
# evacuation migration is done, before that is taken as final.
SETTLE_SECONDS = 30


class WaitForServer(base.NovaAction):
    """Done when the server is off ``source_host``, has no task, its
    evacuation migration from ``source_host`` is done (or completed) and
    vm_state is ``expected_vm_state``.  task_state None alone is not
    enough: Nova clears it before it moves the host.  Nova moves the host
    and then marks the migration done, so a server read just before a
    migration read can show the old host beside a done migration: the
    server is read again then, and only a server still on the source host
    ``SETTLE_SECONDS`` after its migration was seen done fails.  Fails at
    once when the server ends in error (with Nova's fault message), when the
    evacuation failed, or when it ends in another state; else after
    ``timeout`` seconds.  A poll is one read of the server while it is
    rebuilding; the migrations are read only once it looks finished.

    ``timeout=0`` checks once and reports ``done`` true or false, for a
    workflow that polls with a retry loop instead."""

    def __init__(self, server, source_host, expected_vm_state, timeout=600,
                 interval=2):
        self.server = server
        self.source_host = source_host
        self.expected_vm_state = expected_vm_state
        self.timeout = timeout
        self.interval = interval

    def check(self):
        base.require_text("server", self.server)
        base.require_text("source_host", self.source_host)
        if self.expected_vm_state not in VM_STATES:
            raise nova_client.NovaError(
                "bad input: expected_vm_state must be one of "
                f"{', '.join(VM_STATES)}, not {self.expected_vm_state!r}")
        base.require_number("timeout", self.timeout)
        base.require_number("interval", self.interval)

    def act(self, nova):
        started = time.monotonic()
        deadline = started + self.timeout
        self._done_on_source_since = None
        polls = 0
        while True:
            polls += 1
            server, done = nova.retrying(
                f"waiting for server {self.server}",
                lambda: self._poll(nova), server=self.server,
                host=self.source_host)
            now = time.monotonic()
            if done or self.timeout == 0 or now >= deadline:
                break
            time.sleep(min(self.interval, max(deadline - now, 0)))
        result = {"server": self.server,
                  "host": nova_client.host_of(server),
                  "vm_state": nova_client.vm_state_of(server),
                  "task_state": nova_client.task_state_of(server),
                  "done": done, "polls": polls,
                  "seconds": round(time.monotonic() - started, 3)}
        if not done and self.timeout:
            raise nova_client.NovaError(
                f"server {self.server} still not evacuated from "
                f"{self.source_host} after {self.timeout} s (host "
                f"{result['host']}, vm_state {result['vm_state']}, "
                f"task_state {result['task_state']})",
                server=self.server, host=self.source_host)
        return result

    def _poll(self, nova):
        """(server, done); NovaError when the evacuation failed."""
        client = nova.client()
        server = nova.server(self.server, client)
        vm_state = nova_client.vm_state_of(server)
        task_state = nova_client.task_state_of(server)
        if task_state:
            return server, False
        if vm_state == "error" and self.expected_vm_state != "error":
            self._fail(server, "ended in error")
        migrations = [m for m in nova.evacuations(self.server, client)
                      if m.get("source_compute") == self.source_host]
        if evacuate.running_evacuation(migrations, self.source_host,
                                       task_state):
            return server, False
        newest = (migrations[0] if migrations else {}).get("status")
        moved = nova_client.host_of(server) != self.source_host
        if newest not in SUCCEEDED:
            if newest in FAILED:
                self._fail(server, "its evacuation failed")
            if not moved:
                self._fail(server, "no evacuation from this host is under "
                                   "way")
        if not moved:
            server = nova.server(self.server, client)
            vm_state = nova_client.vm_state_of(server)
            if nova_client.task_state_of(server):
                return server, False
            if nova_client.host_of(server) == self.source_host:
                return server, self._still_on_source(server)
        if vm_state != self.expected_vm_state:
            self._fail(server, f"ended {vm_state}, expected "
                               f"{self.expected_vm_state}")
        return server, True

    def _still_on_source(self, server):
        """False while the settle time runs; then the evacuation fails."""
        now = time.monotonic()
        if self._done_on_source_since is None:
            self._done_on_source_since = now
        if now - self._done_on_source_since < SETTLE_SECONDS:
            return False
        self._fail(server, "its evacuation finished but it is still on "
                           "the source host")

    def _fail(self, server, what):
        fault = nova_client.fault_of(server)
        reason = f"server {self.server} {what}"
        if fault:
            reason += f": {fault}"
        raise nova_client.NovaError(reason, server=self.server,
                                    host=nova_client.host_of(server))
