"""Unlock every server a recovery of a host moved but left locked."""

from instance_ha import nova_client
from instance_ha import state_table
from instance_ha.actions import base

MOVED = ("done", "completed")


class UnlockEvacuated(base.NovaAction):
    """Level-triggered clean-up at the end of a host recovery: a server
    evacuated from ``source_host`` (Nova's evacuation migrations) that
    now runs elsewhere and still holds the lock a recovery of that host
    set is unlocked.  A run stopped by the watchdog never reaches its
    per-VM unlock, and the next run no longer sees a moved server on the
    failed host; this is where its lock is released.  Locks with any
    other reason are left alone; below microversion 2.73 Nova shows no
    reason, so nothing is unlocked.  ``settled``: ids of servers this
    run moved and unlocked itself, not read again.  ``release``: ids of
    servers still on the failed host whose lock the run kept (an aborted
    run hands them to the operator): each is unlocked if it still holds
    the lock a recovery of that host set."""

    def __init__(self, source_host, settled=None, release=None):
        self.source_host = source_host
        self.settled = settled
        self.release = release

    def check(self):
        base.require_text("source_host", self.source_host)
        for name in ("settled", "release"):
            ids = getattr(self, name) or []
            if not isinstance(ids, list) or not all(
                    isinstance(i, str) and i for i in ids):
                raise nova_client.NovaError(
                    f"bad input: {name} must be a list of server ids")

    def act(self, nova):
        return nova.retrying(f"unlocking the servers evacuated from "
                             f"{self.source_host}",
                             lambda: self._attempt(nova),
                             host=self.source_host)

    def _attempt(self, nova):
        client = nova.client()
        result = {"host": self.source_host, "unlocked": [], "checked": 0}
        if client.api_version < nova_client.LOCKED_REASON_MIN:
            return dict(result, reason="Nova shows no lock reason below "
                                       "2.73: nothing unlocked")
        settled = set(self.settled or [])
        for server_id in self._moved_servers(nova, client):
            if server_id in settled:
                continue
            result["checked"] += 1
            server = nova.server(server_id, client)
            if (self._ours(server)
                    and nova_client.host_of(server) != self.source_host):
                self._unlock(nova, client, server_id,
                             "evacuated and left locked", result)
        result["released"] = []
        for server_id in self.release or []:
            server = nova.server(server_id, client)
            if self._ours(server) and server_id not in result["unlocked"]:
                self._unlock(nova, client, server_id,
                             "still on the failed host; the recovery was "
                             "aborted", result)
                result["released"].append(server_id)
        return result

    def _ours(self, server):
        return bool(server.get("locked")) and state_table.is_evacuation_lock(
            server.get("locked_reason"), self.source_host)

    def _unlock(self, nova, client, server_id, why, result):
        nova.post(f"/servers/{server_id}/action", {"unlock": None}, client)
        base.LOG.info("server %s unlocked (%s, from %s)", server_id, why,
                      self.source_host)
        result["unlocked"].append(server_id)

    def _moved_servers(self, nova, client):
        query = ("/os-migrations?source_compute="
                 f"{self.source_host}")
        if client.api_version >= nova_client.MIGRATION_TYPE_MIN:
            query += "&migration_type=evacuation"
        migrations = nova.get(query, client).get("migrations", [])
        return sorted({m["instance_uuid"] for m in migrations
                       if m.get("source_compute") == self.source_host
                       and m.get("migration_type", "evacuation")
                       == "evacuation"
                       and m.get("status") in MOVED})
