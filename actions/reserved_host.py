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
disables it again with the reserved reason and takes the record back.

Two recoveries at once.  Nova's os-services API has no compare-and-swap
(every field is last-writer-wins), so the claim of failed host A on a
candidate S is:

1. read: S is up, disabled, reason ``RESERVED...``, and named in the
   record of no other down host;
2. write the mark ``claimed for A`` on S;
3. if another compute is down or forced down (only then may another
   recovery be claiming), wait SETTLE seconds: a mark written from the
   same stale read lands before step 4;
4. read again: if S no longer carries A's mark, another recovery wrote
   last: try the next candidate.  If another down host's record names S,
   that recovery had read its own mark back before A's landed: A's mark
   is a late overwrite.  Put that recovery's mark back (only when one
   recovery has recorded S), and enable S for it if, a SETTLE later, it
   still holds S (it may have enabled S before); try the next candidate;
5. write the record ``; reserved host S`` on A's own service (only A's
   recovery writes there);
6. read again: A owns S if S still carries A's mark.  Otherwise take
   A's record back and try the next candidate.

At most one recovery owns S, whatever the timing.  An owner never takes
its record back, wrote it after its step 4 and read its own mark after
it; so of two owners, the one whose mark (its own, or one put back for
it) was written later would have found the other's record at its step 4,
or the one who put its mark back would have found two records.  This
needs Nova's reads to see every write answered before them (one
database primary, as usual behind Galera) and nobody else to rewrite a
failed host's disabled reason during its claim.

Timing decides only who wins (the last mark written within the settle)
and how smoothly.  Residual window: a mark that lands more than SETTLE
after the read that found S reserved (a very slow API, or a request Nova
carries out after the client gave up on it) lands after the winner's
step 4.  It never makes a second owner, but it disables S again: the
loser's step 4 puts the winner's mark back and, a SETTLE later, enables
S again, so for about 2 x SETTLE the winner's evacuations to S are
refused (those VMs are reported failed, or go to the scheduler with
rh_priority; the next run of that recovery finds its claim again).  A
claim that stalls for more than SETTLE between two of its steps can make
both lose S: it is left disabled and marked for one of them, unused
until that recovery runs again or an operator reserves it again.
"""

import time

from instance_ha import nova_client
from instance_ha.actions import base

RESERVED = "instance-ha: reserved"
CLAIMED = "instance-ha: claimed for "
RECORDED = "; reserved host "
# Nova's services.disabled_reason is a String(255), at least 1 character.
REASON_MAX = 255
# Seconds a contended claim waits between writing its mark and reading it
# back: longer than a competitor's read-then-write (two API calls).
SETTLE = 2.0


def _disable(nova, client, service, host, reason):
    """Disable ``host``'s nova-compute (again) with ``reason``."""
    if client.api_version >= nova_client.SERVICE_UUID_MIN:
        nova.put(f"/os-services/{service['id']}",
                 {"status": "disabled", "disabled_reason": reason}, client)
    else:
        nova.put("/os-services/disable-log-reason",
                 {"host": host, "binary": "nova-compute",
                  "disabled_reason": reason}, client)


def _enable(nova, client, service, host):
    if client.api_version >= nova_client.SERVICE_UUID_MIN:
        nova.put(f"/os-services/{service['id']}", {"status": "enabled"},
                 client)
    else:
        nova.put("/os-services/enable",
                 {"host": host, "binary": "nova-compute"}, client)


def _compute_services(nova, client):
    return {s["host"]: s for s in nova.get(
        "/os-services?binary=nova-compute", client)["services"]}


class _Lost(Exception):
    """This claim does not own the candidate; ``note`` says why."""

    def __init__(self, note):
        super().__init__(note)
        self.note = note


class ClaimReservedHost(base.NovaAction):
    """Choose the reserved host a failed host's VMs go to, and mark it
    claimed for ``failed_host`` (the workflow enables it next).

    Candidates: ``candidates`` (host names, in order of preference), else
    the hosts of the Nova aggregate ``aggregate``, else every compute.
    Look first: a candidate that already received evacuations from
    ``failed_host``, or that still carries this recovery's claim mark, was
    claimed by an earlier attempt or run and is chosen again (unless
    another recovery has claimed it since).  Otherwise the first candidate
    that is up and reserved is claimed (see the module's protocol for
    recoveries that claim at the same time).  ``host`` is null when none
    is available."""

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

    @property
    def mark(self):
        return CLAIMED + self.failed_host

    def _failed(self, services):
        failed = services.get(self.failed_host)
        if failed is None:
            raise nova_client.NovaError(
                f"no nova-compute service on host {self.failed_host}",
                host=self.failed_host, code=404)
        return failed

    def _attempt(self, nova):
        client = nova.client()
        services = _compute_services(nova, client)
        failed = self._failed(services)
        mark = self.mark
        recorded = _recorded_host(failed)
        if recorded in services and not _claimants(
                services, recorded, self.failed_host):
            service = services[recorded]
            if service.get("status") == "enabled" or \
                    service.get("disabled_reason") == mark:
                return {"host": recorded, "claimed": True,
                        "reason": f"reserved host {recorded} was claimed "
                                  f"for {self.failed_host} (an earlier "
                                  "attempt or run)"}
        names = self._candidate_names(nova, client, services)
        used = self._already_used(nova, client, names, services)
        if used:
            return {"host": used, "claimed": False,
                    "reason": f"{used} already received VMs of "
                              f"{self.failed_host} (an earlier run)"}
        contended = _contended(services, self.failed_host)
        notes = []
        for name in names:
            service = services.get(name)
            if service and service.get("status") == "disabled" and \
                    service.get("disabled_reason") == mark:
                try:
                    self._confirm(nova, client, name, contended)
                except _Lost as lost:
                    notes.append(lost.note)
                    break
                return {"host": name, "claimed": True,
                        "reason": f"reserved host {name} was claimed for "
                                  f"{self.failed_host} (an earlier attempt)"}
        tried = set()
        while True:
            services = _compute_services(nova, client)
            name, skipped = self._next_reserved(services, names, tried)
            notes.extend(n for n in skipped if n not in notes)
            if name is None:
                break
            tried.add(name)
            _disable(nova, client, services[name], name, mark)
            try:
                self._confirm(nova, client, name,
                              _contended(services, self.failed_host))
            except _Lost as lost:
                notes.append(lost.note)
                continue
            base.LOG.info("reserved host %s claimed for the VMs of %s",
                          name, self.failed_host)
            return {"host": name, "claimed": True,
                    "reason": f"reserved host {name} claimed"}
        self._withdraw(nova, client, self._failed(services), None)
        why = f" ({'; '.join(notes)})" if notes else ""
        return {"host": None, "claimed": False,
                "reason": "no reserved host is available among "
                          f"{', '.join(names) or 'no candidates'} (one must "
                          f"be up and disabled with reason '{RESERVED}')"
                          + why}

    def _next_reserved(self, services, names, tried):
        """The first candidate not tried yet that may be claimed, and why
        reserved ones before it may not."""
        skipped = []
        for name in names:
            service = services.get(name)
            if name in tried or not (service and _is_reserved(service)):
                continue
            others = _claimants(services, name, self.failed_host)
            if others:
                skipped.append(
                    f"{name} is named in the disabled reason of "
                    f"{', '.join(others)}, still down: clear that reason "
                    "to reserve it again")
                continue
            return name, skipped
        return None, skipped

    def _confirm(self, nova, client, name, contended):
        """Steps 3-6 of the protocol for the candidate ``name``, which
        carried this recovery's mark when last read; _Lost unless this
        recovery owns it now."""
        mark = self.mark
        if contended:
            time.sleep(SETTLE)
        services = _compute_services(nova, client)
        service = services.get(name) or {}
        if service.get("disabled_reason") != mark:
            raise _Lost(f"{name} was claimed by another recovery at the "
                        f"same time ({_state(service)})")
        others = _claimants(services, name, self.failed_host)
        if others:
            # Their recovery read its own mark back before ours landed.
            if len(others) == 1:
                self._hand_back(nova, client, service, name, others[0])
            raise _Lost(f"{name} was claimed for {', '.join(others)} "
                        "first")
        self._record(nova, client, self._failed(services), name)
        services = _compute_services(nova, client)
        service = services.get(name) or {}
        if service.get("status") != "disabled" or \
                service.get("disabled_reason") != mark:
            self._withdraw(nova, client, self._failed(services), name)
            raise _Lost(f"{name} was claimed by another recovery at the "
                        f"same time ({_state(service)})")

    def _hand_back(self, nova, client, service, name, owner):
        """Our mark landed after ``owner``'s recovery read its own back:
        put its mark back; if it still holds the host a SETTLE later, it
        may have enabled the host before that, so enable it again."""
        base.LOG.warning("reserved host %s: the claim for %s overwrote the "
                         "claim for %s, which is put back", name,
                         self.failed_host, owner)
        _disable(nova, client, service, name, CLAIMED + owner)
        time.sleep(SETTLE)
        services = _compute_services(nova, client)
        service = services.get(name) or {}
        if service.get("status") == "disabled" and \
                service.get("disabled_reason") == CLAIMED + owner and \
                _claimants(services, name, self.failed_host) == [owner]:
            _enable(nova, client, service, name)

    def _record(self, nova, client, failed, host):
        """Name ``host`` in the failed host's disabled reason."""
        if _recorded_host(failed) == host:
            return
        suffix = RECORDED + host
        _disable(nova, client, failed, self.failed_host,
                 _unrecorded(failed)[:REASON_MAX - len(suffix)] + suffix)

    def _withdraw(self, nova, client, failed, host):
        """Take back the failed host's record of ``host`` (of any host
        when None)."""
        _withdraw(nova, client, failed, self.failed_host, host)

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

    def _already_used(self, nova, client, names, services):
        body = nova.get("/os-migrations?migration_type=evacuation&"
                        f"source_compute={self.failed_host}", client)
        destinations = {m.get("dest_compute")
                        for m in body.get("migrations", [])
                        if m.get("source_compute") == self.failed_host
                        and m.get("status") in ("done", "completed")}
        return next((n for n in names if n in destinations
                     and not _taken_by_another(services, n,
                                               self.failed_host)), None)


class ReleaseReservedHost(base.NovaAction):
    """Make ``host`` reserved again when no VM runs there: the recovery
    that claimed it could not use it.  Nothing changes when any server is
    on it or it is disabled for another reason than this recovery's
    claim.  A host not used is no longer named in ``failed_host``'s
    disabled reason either (so that another recovery may claim it)."""

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
            self._withdraw(nova, client)
            return {"host": self.host, "released": False,
                    "reason": f"{self.host} is already disabled"}
        _disable(nova, client, service, self.host,
                 f"{RESERVED} (unused by the recovery of {self.failed_host})")
        self._withdraw(nova, client)
        base.LOG.info("reserved host %s released", self.host)
        return {"host": self.host, "released": True,
                "reason": f"no VM used {self.host}; reserved again"}

    def _withdraw(self, nova, client):
        failed = _compute_services(nova, client).get(self.failed_host)
        if failed is not None:
            _withdraw(nova, client, failed, self.failed_host, self.host)


def _withdraw(nova, client, failed, failed_host, host):
    recorded = _recorded_host(failed)
    if recorded is None or host is not None and recorded != host:
        return
    _disable(nova, client, failed, failed_host,
             _unrecorded(failed) or "instance-ha: no reserved host")


def _recorded_host(service):
    reason = service.get("disabled_reason") or ""
    if RECORDED not in reason:
        return None
    return reason[reason.index(RECORDED) + len(RECORDED):]


def _unrecorded(service):
    """The disabled reason without its record."""
    reason = service.get("disabled_reason") or ""
    if RECORDED in reason:
        reason = reason[:reason.index(RECORDED)]
    return reason


def _is_down(service):
    return bool(service.get("forced_down")) or service.get("state") == "down"


def _claimants(services, host, failed_host):
    """The other down hosts whose disabled reason records ``host``: the
    recoveries that claimed it (a repaired host that is up claims
    nothing)."""
    return sorted(name for name, service in services.items()
                  if name != failed_host and _is_down(service)
                  and _recorded_host(service) == host)


def _taken_by_another(services, host, failed_host):
    service = services.get(host) or {}
    reason = service.get("disabled_reason") or ""
    return bool(_claimants(services, host, failed_host)) or (
        reason.startswith(CLAIMED) and reason != CLAIMED + failed_host)


def _contended(services, failed_host):
    """Whether another recovery may be claiming now: only a recovery of a
    down host claims, and it forces its host down first."""
    return any(_is_down(service) for name, service in services.items()
               if name != failed_host)


def _state(service):
    if not service:
        return "no longer listed"
    if service.get("status") == "enabled":
        return "now enabled"
    return f"now '{service.get('disabled_reason')}'"


def _is_reserved(service):
    return (service.get("status") == "disabled"
            and service.get("state") == "up"
            and not service.get("forced_down")
            and (service.get("disabled_reason") or "").startswith(RESERVED))
