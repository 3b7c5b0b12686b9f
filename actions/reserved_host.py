"""Reserved hosts: spare computes kept empty for recoveries (Masakari's
``reserved_host`` recovery methods).

A reserved host is a nova-compute service that is up, disabled, and whose
disabled reason starts with ``RESERVED``; an operator reserves one with::

    openstack compute service set --disable \\
        --disable-reason "instance-ha: reserved" HOST nova-compute

Nova holds that state, so it survives any crash of ours.  Claiming a host
enables it (it is then no longer reserved); releasing one that no VM used
disables it again with the reason.
"""

from instance_ha import nova_client
from instance_ha.actions import base

RESERVED = "instance-ha: reserved"


def _set_service(nova, client, service, host, enabled, reason=None):
    if client.api_version >= nova_client.SERVICE_UUID_MIN:
        body = {"status": "enabled" if enabled else "disabled"}
        if not enabled:
            body["disabled_reason"] = reason
        nova.put(f"/os-services/{service['id']}", body, client)
    elif enabled:
        nova.put("/os-services/enable",
                 {"host": host, "binary": "nova-compute"}, client)
    else:
        nova.put("/os-services/disable-log-reason",
                 {"host": host, "binary": "nova-compute",
                  "disabled_reason": reason}, client)


class ClaimReservedHost(base.NovaAction):
    """Choose the reserved host a failed host's VMs go to, and enable it.

    Candidates: ``candidates`` (host names, in order of preference), else
    the hosts of the Nova aggregate ``aggregate``, else every compute.
    Look first: a candidate that already received evacuations from
    ``failed_host`` was claimed by an earlier run of this recovery and is
    chosen again.  Otherwise the first candidate that is up and reserved
    is enabled.  ``host`` is null when none is available."""

    def __init__(self, failed_host, candidates=None, aggregate=None):
        self.failed_host = failed_host
        self.candidates = candidates
        self.aggregate = aggregate

    def check(self):
        base.require_text("failed_host", self.failed_host)
        if self.candidates is not None and (
                not isinstance(self.candidates, list)
                or not all(isinstance(c, str) for c in self.candidates)):
            raise nova_client.NovaError(
                "bad input: candidates must be a list of host names, not "
                f"{self.candidates!r}")
        if self.aggregate is not None:
            base.require_text("aggregate", self.aggregate)

    def _subject(self):
        return None, self.failed_host

    def act(self, nova):
        return nova.retrying("choosing a reserved host for "
                             f"{self.failed_host}",
                             lambda: self._attempt(nova),
                             host=self.failed_host)

    def _attempt(self, nova):
        client = nova.client()
        services = {s["host"]: s for s in nova.get(
            "/os-services?binary=nova-compute", client)["services"]}
        names = self._candidate_names(nova, client, services)
        used = self._already_used(nova, client, names)
        if used:
            return {"host": used, "claimed": False,
                    "reason": f"{used} already received VMs of "
                              f"{self.failed_host} (an earlier run)"}
        for name in names:
            service = services.get(name)
            if service and _is_reserved(service):
                _set_service(nova, client, service, name, enabled=True)
                base.LOG.info("reserved host %s enabled for the VMs of %s",
                              name, self.failed_host)
                return {"host": name, "claimed": True,
                        "reason": f"reserved host {name} enabled"}
        return {"host": None, "claimed": False,
                "reason": "no reserved host is available among "
                          f"{', '.join(names) or 'no candidates'} (one must "
                          f"be up and disabled with reason '{RESERVED}')"}

    def _candidate_names(self, nova, client, services):
        if self.candidates:
            names = list(self.candidates)
        elif self.aggregate:
            aggregates = nova.get("/os-aggregates", client)["aggregates"]
            found = [a for a in aggregates if a["name"] == self.aggregate]
            if not found:
                raise nova_client.NovaError(
                    f"no Nova aggregate named {self.aggregate}",
                    host=self.failed_host, code=404)
            names = list(found[0].get("hosts") or [])
        else:
            names = sorted(services)
        return [n for n in names if n != self.failed_host]

    def _already_used(self, nova, client, names):
        body = nova.get("/os-migrations?migration_type=evacuation&"
                        f"source_compute={self.failed_host}", client)
        destinations = {m.get("dest_compute")
                        for m in body.get("migrations", [])
                        if m.get("source_compute") == self.failed_host
                        and m.get("status") in ("done", "completed")}
        return next((n for n in names if n in destinations), None)


class ReleaseReservedHost(base.NovaAction):
    """Make ``host`` reserved again when no VM runs there: the recovery
    that claimed it could not use it.  Nothing changes when any server is
    on it or it is already disabled."""

    def __init__(self, host, failed_host):
        self.host = host
        self.failed_host = failed_host

    def check(self):
        base.require_text("host", self.host)
        base.require_text("failed_host", self.failed_host)

    def act(self, nova):
        return nova.retrying(f"releasing reserved host {self.host}",
                             lambda: self._attempt(nova), host=self.host)

    def _attempt(self, nova):
        client = nova.client()
        service = nova.compute_service(self.host, client)
        servers = nova.get("/servers?all_tenants=1&host="
                           f"{self.host}&limit=1", client)["servers"]
        if servers:
            return {"host": self.host, "released": False,
                    "reason": f"{self.host} runs servers; it stays enabled"}
        if service.get("status") == "disabled":
            return {"host": self.host, "released": False,
                    "reason": f"{self.host} is already disabled"}
        _set_service(nova, client, service, self.host, enabled=False,
                     reason=f"{RESERVED} (unused by the recovery of "
                            f"{self.failed_host})")
        base.LOG.info("reserved host %s released", self.host)
        return {"host": self.host, "released": True,
                "reason": f"no VM used {self.host}; reserved again"}


def _is_reserved(service):
    return (service.get("status") == "disabled"
            and service.get("state") == "up"
            and not service.get("forced_down")
            and (service.get("disabled_reason") or "").startswith(RESERVED))
