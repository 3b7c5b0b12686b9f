"""Before a repaired host goes back to work: its nova-compute runs again,
also while it is still forced down."""

import time

from instance_ha import nova_client
from instance_ha.actions import base

POLL_INTERVAL = 1.0
# An API update of the service changes one of these; a heartbeat none.
SET_BY_THE_API = ("forced_down", "status", "disabled_reason")


class CheckComputeUp(base.NovaAction):
    """Reads only.  Nova shows a forced-down service ``down`` whatever it
    does (its servicegroup API answers down for forced_down before it
    looks at heartbeats), so then the proof is a heartbeat: the service's
    ``updated_at`` moving on between two reads while forced_down, status
    and disabled reason stay as they were.  A running nova-compute saves
    its service record every report_interval (10 s by default), forced
    down or not; a dead one saves nothing, and an API update (the
    force-down itself) changes one of those fields.  Not forced down:
    Nova's own ``state`` must be ``up``.  Fails, changing nothing, when
    no proof comes within ``wait`` seconds."""

    def __init__(self, host, wait=30):
        self.host = host
        self.wait = wait

    def check(self):
        base.require_text("host", self.host)
        base.require_number("wait", self.wait)

    def act(self, nova):
        started = time.monotonic()
        deadline = started + self.wait
        first = baseline = current = self._read(nova)
        while True:
            evidence = _evidence(baseline, current)
            if evidence:
                base.LOG.info("nova-compute on %s runs: %s", self.host,
                              evidence)
                return {"host": self.host,
                        "forced_down": bool(first.get("forced_down")),
                        "status": first.get("status"),
                        "disabled_reason": first.get("disabled_reason"),
                        "state": current.get("state"),
                        "updated_at": baseline.get("updated_at"),
                        "heartbeat_at": current.get("updated_at"),
                        "evidence": evidence,
                        "waited_s": round(time.monotonic() - started, 1)}
            if _fields(current) != _fields(baseline):
                # Someone updated the service meanwhile: not a heartbeat.
                baseline = current
            left = deadline - time.monotonic()
            if left <= 0:
                raise nova_client.NovaError(
                    f"refusing to return {self.host} to service: "
                    + _why_not(self.host, current, self.wait)
                    + "; nothing was changed", host=self.host)
            time.sleep(min(POLL_INTERVAL, left))
            current = self._read(nova)

    def _read(self, nova):
        return nova.retrying(
            f"reading nova-compute on {self.host}",
            lambda: nova.compute_service(self.host), host=self.host)


def _evidence(baseline, current):
    if not current.get("forced_down"):
        if current.get("state") == "up":
            return "Nova reports it up"
        return None
    if not baseline.get("forced_down") or \
            _fields(current) != _fields(baseline):
        return None
    before = _timestamp(baseline.get("updated_at"))
    after = _timestamp(current.get("updated_at"))
    if before and after and after > before:
        return (f"a heartbeat while forced down (updated_at "
                f"{baseline.get('updated_at')}, then "
                f"{current.get('updated_at')})")
    return None


def _why_not(host, service, wait):
    if not service.get("forced_down"):
        return (f"Nova reports nova-compute on {host} "
                f"{service.get('state')} (last report "
                f"{service.get('updated_at')}): start nova-compute on "
                f"{host} first")
    return (f"nova-compute on {host} sent no heartbeat within {wait:g} s "
            f"(forced down, so Nova shows it down whatever it does; "
            f"updated_at still {service.get('updated_at')}): start "
            f"nova-compute on {host} first")


def _fields(service):
    return tuple(service.get(name) for name in SET_BY_THE_API)


def _timestamp(text):
    """A Nova timestamp (naive UTC ISO 8601) as a comparable string."""
    if not text:
        return None
    return str(text).replace(" ", "T").rstrip("Z").split("+")[0][:26]
