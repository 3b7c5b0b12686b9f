"""Before a repaired host goes back to work: no evacuation from it is
under way or waiting for its nova-compute to restart."""

from urllib import parse

from instance_ha import nova_client
from instance_ha.actions import base

# Nova leaves these alone: the compute's restart completes accepted,
# pre-migrating and done evacuations (it deletes the evacuated guests);
# failed and error ones are evacuations that did not move the server.
SETTLED = ("completed", "failed", "error")
PAGINATED_MIN = nova_client.V("2.59")
PAGE = 1000
MAX_PAGES = 100
NAMED = 5


class CheckEvacuations(base.NovaAction):
    """Reads only: every evacuation migration from ``host`` (GET
    /os-migrations?source_compute=HOST&migration_type=evacuation, each
    page).  Fails, naming them, unless each is completed, failed or
    error: an evacuation still accepted or pre-migrating is under way,
    and a done one waits for the host's nova-compute to restart (Nova
    refuses to unset forced_down while one is done)."""

    def __init__(self, host):
        self.host = host

    def check(self):
        base.require_text("host", self.host)

    def act(self, nova):
        return nova.retrying(f"listing the evacuations from {self.host}",
                             lambda: self._attempt(nova), host=self.host)

    def _attempt(self, nova):
        client = nova.client()
        migrations = self._evacuations(nova, client)
        by_status = {}
        for migration in migrations:
            status = migration.get("status")
            by_status[status] = by_status.get(status, 0) + 1
        pending = [m for m in migrations if m.get("status") not in SETTLED]
        if pending:
            pending.sort(key=lambda m: m.get("id") or 0)
            named = ", ".join(
                f"migration {m.get('id')} of server "
                f"{m.get('instance_uuid')} {m.get('status')}"
                for m in pending[:NAMED])
            more = len(pending) - NAMED
            raise nova_client.NovaError(
                f"refusing to return {self.host} to service: "
                f"{len(pending)} evacuation(s) from {self.host} not "
                f"completed ({named}"
                + (f" and {more} more" if more > 0 else "")
                + "): restart nova-compute on the host, which completes "
                "them, or wait for those under way; nothing was changed",
                host=self.host)
        return {"host": self.host, "evacuations": len(migrations),
                "by_status": by_status,
                "not_moved": sorted(
                    m.get("instance_uuid") for m in migrations
                    if m.get("status") in ("failed", "error")),
                "microversion": client.api_version.get_string()}

    def _evacuations(self, nova, client):
        query = "/os-migrations?source_compute=" + parse.quote(
            self.host, safe="")
        if client.api_version >= nova_client.MIGRATION_TYPE_MIN:
            query += "&migration_type=evacuation"
        paginated = client.api_version >= PAGINATED_MIN
        if paginated:
            query += f"&limit={PAGE}"
        found, marker = [], None
        for _ in range(MAX_PAGES):
            page = query + (f"&marker={parse.quote(marker, safe='')}"
                            if marker else "")
            body = nova.get(page, client)
            found += [m for m in body.get("migrations", [])
                      if m.get("source_compute") == self.host
                      and m.get("migration_type", "evacuation")
                      == "evacuation"]
            marker = _next_marker(body.get("migrations_links"))
            if not paginated or not marker:
                return found
        raise nova_client.NovaError(
            f"more than {MAX_PAGES * PAGE} migrations from {self.host}",
            host=self.host)


def _next_marker(links):
    """The marker of the next page, if Nova says there is one (followed
    with our own filters, not taken as it is)."""
    for link in links or ():
        if link.get("rel") == "next":
            query = parse.parse_qs(parse.urlsplit(link["href"]).query)
            return (query.get("marker") or [None])[-1]
    return None
