"""Unlock a server after its recovery, only if the lock is ours."""

from instance_ha import nova_client
from instance_ha.actions import base
from instance_ha.actions import lock


class Unlock(base.NovaAction):
    """``locked_by_us``: what the lock action reported.  Where Nova shows
    locked_reason (>= 2.73) the lock must also carry ours: a lock someone
    set after ours, or instead of it, stays.  ``keep_on_host``: a server
    still on that host (its evacuation failed) keeps our lock, so that the
    next recovery of the host knows it as its own unfinished work
    (state_table: the resume rows) and Nova shows who holds it."""

    def __init__(self, server, locked_by_us, keep_on_host=None):
        self.server = server
        self.locked_by_us = locked_by_us
        self.keep_on_host = keep_on_host

    def check(self):
        base.require_text("server", self.server)
        if not isinstance(self.locked_by_us, bool):
            raise nova_client.NovaError(
                "bad input: locked_by_us must be true or false, not "
                f"{self.locked_by_us!r}")
        if self.keep_on_host is not None:
            base.require_text("keep_on_host", self.keep_on_host)

    def act(self, nova):
        if not self.locked_by_us:
            return {"server": self.server, "unlocked": False,
                    "changed": False, "kept": False,
                    "reason": "not locked by instance-ha: left alone"}
        return nova.retrying(f"unlocking server {self.server}",
                             lambda: self._attempt(nova),
                             server=self.server)

    def _attempt(self, nova):
        client = nova.client(at_least=nova_client.LOCKED_MIN,
                             what="unlock")
        server = nova.server(self.server, client)
        result = {"server": self.server, "changed": False, "kept": False}
        if not server.get("locked"):
            return dict(result, unlocked=True, reason="not locked")
        if (client.api_version >= nova_client.LOCKED_REASON_MIN
                and not lock.locked_by_us(server)):
            return dict(result, unlocked=False,
                        reason="locked by someone else "
                               f"({server.get('locked_reason')!r}): left "
                               "alone")
        if (self.keep_on_host
                and nova_client.host_of(server) == self.keep_on_host):
            return dict(result, unlocked=False, kept=True,
                        reason=f"kept locked by instance-ha: still on "
                               f"{self.keep_on_host}, where the next "
                               "recovery of the host takes it up again")
        nova.post(f"/servers/{self.server}/action", {"unlock": None},
                  client)
        base.LOG.info("server %s unlocked", self.server)
        return dict(result, unlocked=True, changed=True,
                    reason="unlocked the lock instance-ha set")
