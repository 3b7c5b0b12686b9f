"""Evacuate one server from a failed host, at most once per failure."""

from instance_ha import nova_client
from instance_ha.actions import base

REBUILD_TASK_STATES = ("rebuilding", "rebuild_block_device_mapping",
                       "rebuild_spawning")
# An evacuation migration in any other status is still under way.
FINISHED_MIGRATIONS = ("done", "completed", "failed", "error", "cancelled")


def running_evacuation(migrations, source_host, task_state):
    """The evacuation from source_host still under way, if any.  An
    `accepted` one while the server has no rebuild task is an orphan:
    Nova sets the task with the migration, and the loser of two racing
    evacuations stays `accepted` for good."""
    for migration in migrations:
        if migration.get("source_compute") != source_host:
            continue
        status = migration.get("status")
        if status in FINISHED_MIGRATIONS:
            continue
        if status == "accepted" and task_state not in REBUILD_TASK_STATES:
            continue
        return migration
    return None


class Evacuate(base.NovaAction):
    """Look before acting: a server no longer on ``source_host`` is
    ``already_moved``; one already rebuilding, or with an evacuation from
    ``source_host`` under way (Nova clears task_state before it moves the
    host), is ``in_progress``.  Only otherwise is one evacuate sent.

    Microversion: min(negotiated, 2.94), because from 2.95 Nova stops
    every evacuated server that was not in error.  Below it Nova brings a
    stopped server back stopped (spawned, then powered off at once) and
    every other one active (instance_ha.state_table: what an evacuation
    leaves).  ``on_shared_storage`` is sent only below 2.14 (None:
    false); from 2.14 Nova finds out itself whether the disks are on
    shared storage."""

    def __init__(self, server, source_host, target_host=None,
                 on_shared_storage=None):
        self.server = server
        self.source_host = source_host
        self.target_host = target_host
        self.on_shared_storage = on_shared_storage

    def check(self):
        base.require_text("server", self.server)
        base.require_text("source_host", self.source_host)
        if self.target_host is not None:
            base.require_text("target_host", self.target_host)
            if self.target_host == self.source_host:
                raise nova_client.NovaError(
                    "bad input: target_host is the source host")
        if self.on_shared_storage not in (None, True, False):
            raise nova_client.NovaError(
                "bad input: on_shared_storage must be true, false or null")

    def act(self, nova):
        sent = []
        result = nova.retrying(
            f"evacuating server {self.server} from {self.source_host}",
            lambda: self._attempt(nova, sent), server=self.server,
            host=self.source_host)
        if sent:
            # Our request reached Nova even if its answer was lost.
            result["outcome"] = "evacuated"
            result["microversion"] = sent[-1]
            if result["migration_id"] is None:
                result["migration_id"] = nova.retrying(
                    f"finding the evacuation of server {self.server}",
                    lambda: self._latest_migration_id(nova),
                    server=self.server, host=self.source_host)
        return result

    def _latest_migration_id(self, nova):
        for migration in nova.evacuations(self.server):
            if migration.get("source_compute") == self.source_host:
                return migration.get("id")
        return None

    def _attempt(self, nova, sent):
        client = nova.client()
        server = nova.server(self.server, client)
        host = nova_client.host_of(server)
        if host != self.source_host:
            return self._result("already_moved", host, None, client)
        task_state = nova_client.task_state_of(server)
        migrations = nova.evacuations(self.server, client)
        running = running_evacuation(migrations, self.source_host,
                                     task_state)
        if task_state in REBUILD_TASK_STATES or running:
            return self._result("in_progress", host,
                                (running or {}).get("id"), client)
        at = min(nova.version(), nova_client.EVACUATE_MAX)
        sent.append(at.get_string())
        nova.post(f"/servers/{self.server}/action",
                  {"evacuate": self._body(at)}, nova.client(at_most=at))
        base.LOG.info("server %s: evacuation from %s accepted (compute API "
                      "%s)", self.server, self.source_host,
                      at.get_string())
        migration = running_evacuation(
            nova.evacuations(self.server, client), self.source_host,
            "rebuilding")
        return self._result("evacuated", host,
                            (migration or {}).get("id"), client, at)

    def _body(self, at):
        body = {}
        if self.target_host:
            body["host"] = self.target_host
        if at <= nova_client.SHARED_STORAGE_MAX:
            body["onSharedStorage"] = bool(self.on_shared_storage)
        return body

    def _result(self, outcome, host, migration_id, client, at=None):
        return {"server": self.server, "outcome": outcome, "host": host,
                "source_host": self.source_host,
                "migration_id": migration_id,
                "microversion": (at or client.api_version).get_string()}
