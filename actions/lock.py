"""Lock a server for the time of its recovery."""

from instance_ha import nova_client
from instance_ha import state_table
from instance_ha.actions import base


def our_reason(reason):
    """The locked_reason we set: it always starts with the mark unlock
    and host_servers recognise."""
    if reason.startswith(state_table.LOCK_MARK):
        return reason
    return f"{state_table.LOCK_MARK}: {reason}"


def locked_by_us(server):
    return bool(server.get("locked")) and (
        server.get("locked_reason") or "").startswith(state_table.LOCK_MARK)


class Lock(base.NovaAction):
    """Lock the server unless it is locked already.  A lock someone else
    set is left as it is (locked_by_us false); a lock carrying our reason
    (an earlier run of this recovery) counts as ours."""

    def __init__(self, server, reason="instance-ha recovery"):
        self.server = server
        self.reason = reason

    def check(self):
        base.require_text("server", self.server)
        base.require_text("reason", self.reason)

    def act(self, nova):
        return nova.retrying(f"locking server {self.server}",
                             lambda: self._attempt(nova),
                             server=self.server)

    def _attempt(self, nova):
        client = nova.client(at_least=nova_client.LOCKED_MIN, what="lock")
        server = nova.server(self.server, client)
        with_reason = client.api_version >= nova_client.LOCKED_REASON_MIN
        result = {"server": self.server, "changed": False,
                  "locked_reason": server.get("locked_reason")}
        if server.get("locked"):
            ours = with_reason and locked_by_us(server)
            return dict(result, locked_by_us=ours, was_locked=not ours)
        body = {"lock": None}
        if with_reason:
            body = {"lock": {"locked_reason": our_reason(self.reason)}}
        nova.post(f"/servers/{self.server}/action", body, client)
        base.LOG.info("server %s locked", self.server)
        return dict(result, locked_by_us=True, was_locked=False,
                    changed=True,
                    locked_reason=body["lock"] and
                    body["lock"]["locked_reason"])
