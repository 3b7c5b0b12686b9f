"""Reserved hosts: spare computes kept empty for recoveries (Masakari's
``reserved_host`` recovery methods).

A reserved host is a nova-compute service that is up, disabled, and whose
disabled reason starts with ``RESERVED``; an operator reserves one with::

    openstack compute service set --disable \\
        --disable-reason "instance-ha: reserved" HOST nova-compute

Nova holds that state, so it survives any crash of ours.  A claim is
recorded in Nova, step by step, before the host is used: the claim marks
the host (still disabled, reason ``instance-ha: claimed for FAILED_HOST``:
no other recovery takes it), then appends ``; reserved host HOST`` to the
failed host's own disabled reason (which survives the enable: Nova clears
the reason of a service it enables), and the workflow then enables it
(``service_enable``).  Every later attempt or run of the recovery finds
its host again from either record.  Releasing a host that no VM used
disables it again with the reserved reason.
"""

from instance_ha import nova_client
from instance_ha.actions import base

RESERVED = "instance-ha: reserved"
CLAIMED = "instance-ha: claimed for "
RECORDED = "; reserved host "
# Nova's services.disabled_reason is a String(255).
REASON_MAX = 255


def _disable(nova, client, service, host, reason):
    """Disable ``host``'s nova-compute (again) with ``reason``."""
    if client.api_version >= nova_client.SERVICE_UUID_MIN:
        nova.put(f"/os-services/{service['id']}",
                 {"status": "disabled", "disabled_reason": reason}, client)
    else:
        nova.put("/os-services/disable-log-reason",
                 {"host": host, "binary": "nova-compute",
                  "disabled_reason": reason}, client)


class ClaimReservedHost(base.NovaAction):
    """Choose the reserved host a failed host's VMs go to, and mark it
    claimed for ``failed_host`` (the workflow enables it next).

    Candidates: ``candidates`` (host names, in order of preference), else
    the hosts of the Nova aggregate ``aggregate``, else every compute.
    Look first: a candidate that already received evacuations from
    ``failed_host``, or that still carries this recovery's claim mark, was
    claimed by an earlier attempt or run and is chosen again.  Otherwise
    the first candidate that is up and reserved is marked.  ``host`` is
    null when none is available."""

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
        failed = services.get(self.failed_host)
        if failed is None:
            raise nova_client.NovaError(
                f"no nova-compute service on host {self.failed_host}",
                host=self.failed_host, code=404)
        mark = CLAIMED + self.failed_host
        recorded = _recorded_host(failed)
        if recorded in services:
            service = services[recorded]
            if service.get("status") == "enabled" or \
                    service.get("disabled_reason") == mark:
                return {"host": recorded, "claimed": True,
                        "reason": f"reserved host {recorded} was claimed "
                                  f"for {self.failed_host} (an earlier "
                                  "attempt or run)"}
        names = self._candidate_names(nova, client, services)
        used = self._already_used(nova, client, names)
        if used:
            return {"host": used, "claimed": False,
                    "reason": f"{used} already received VMs of "
                              f"{self.failed_host} (an earlier run)"}
        for name in names:
            service = services.get(name)
            if service and service.get("status") == "disabled" and \
                    service.get("disabled_reason") == mark:
                self._record(nova, client, failed, name)
                return {"host": name, "claimed": True,
                        "reason": f"reserved host {name} was claimed for "
                                  f"{self.failed_host} (an earlier attempt)"}
        for name in names:
            service = services.get(name)
            if service and _is_reserved(service):
                _disable(nova, client, service, name, mark)
                self._record(nova, client, failed, name)
                base.LOG.info("reserved host %s claimed for the VMs of %s",
                              name, self.failed_host)
                return {"host": name, "claimed": True,
                        "reason": f"reserved host {name} claimed"}
        return {"host": None, "claimed": False,
                "reason": "no reserved host is available among "
                          f"{', '.join(names) or 'no candidates'} (one must "
                          f"be up and disabled with reason '{RESERVED}')"}

    def _record(self, nova, client, failed, host):
        """Name ``host`` in the failed host's disabled reason."""
        if _recorded_host(failed) == host:
            return
        reason = failed.get("disabled_reason") or ""
        if RECORDED in reason:
            reason = reason[:reason.index(RECORDED)]
        suffix = RECORDED + host
        _disable(nova, client, failed, self.failed_host,
                 reason[:REASON_MAX - len(suffix)] + suffix)

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
    on it or it is disabled for another reason than this recovery's
    claim."""

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
        claim = CLAIMED + self.failed_host
        if service.get("status") == "disabled" and \
                service.get("disabled_reason") != claim:
            return {"host": self.host, "released": False,
                    "reason": f"{self.host} is already disabled"}
        _disable(nova, client, service, self.host,
                 f"{RESERVED} (unused by the recovery of {self.failed_host})")
        base.LOG.info("reserved host %s released", self.host)
        return {"host": self.host, "released": True,
                "reason": f"no VM used {self.host}; reserved again"}


def _recorded_host(service):
    reason = service.get("disabled_reason") or ""
    if RECORDED not in reason:
        return None
    return reason[reason.index(RECORDED) + len(RECORDED):]


def _is_reserved(service):
    return (service.get("status") == "disabled"
            and service.get("state") == "up"
            and not service.get("forced_down")
            and (service.get("disabled_reason") or "").startswith(RESERVED))
