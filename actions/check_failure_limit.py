"""Whether a failed host's recovery stays within its aggregates' limit of
failed hosts: aggregate metadata ``instance_ha:max_failures`` (an integer
>= 1; RHOSO InstanceHA's per-aggregate ``instanceha:max_failures``).

A host counts as failed when its nova-compute is forced down or its
state is down.  For each aggregate of the host with the key, more failed
hosts (this one included) than the limit refuses; so does a malformed
value of the key (safety: no limit is guessed).  No aggregate with the
key: not refused.  Reads only (GET /os-aggregates, GET
/os-services?binary=nova-compute); changes nothing."""

from instance_ha import capacity
from instance_ha.actions import base


class CheckFailureLimit(base.NovaAction):
    """``host``: the failed host.  Returns {"refused": null or one line
    naming the aggregate, its limit and its failed hosts, "aggregates":
    [{name, max_failures, failed: [hosts]}]} (the host's aggregates that
    carry the key)."""

    def __init__(self, host):
        self.host = host

    def check(self):
        base.require_text("host", self.host)

    def act(self, nova):
        return nova.retrying(
            f"reading the failure limits of {self.host}",
            lambda: self._attempt(nova), host=self.host)

    def _attempt(self, nova):
        client = nova.client()
        aggregates = nova.get("/os-aggregates", client).get(
            "aggregates", [])
        mine = [a for a in aggregates if self.host in (a.get("hosts") or ())]
        if not any(capacity.MAX_FAILURES_KEY in (a.get("metadata") or {})
                   for a in mine):
            return {"refused": None, "aggregates": []}
        services = nova.get("/os-services?binary=nova-compute", client).get(
            "services", [])
        failed = {s.get("host") for s in services
                  if s.get("binary") == "nova-compute"
                  and (s.get("forced_down") or s.get("state") == "down")}
        refused, checked = capacity.failure_limit(self.host, mine, failed)
        if refused:
            refused = f"recovery of {self.host} refused: {refused}"
            base.LOG.warning("%s", refused)
        return {"refused": refused, "aggregates": checked}
