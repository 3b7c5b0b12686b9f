"""Bring a repaired host's nova-compute service back."""

from instance_ha import nova_client
from instance_ha.actions import base


class ServiceEnable(base.NovaAction):
    """Unset forced_down, then enable (with ``leave_disabled``: only
    unset forced_down; the service stays disabled with its reason).  Nova
    refuses to unset forced_down while `done` evacuation records remain
    (the compute has not restarted since); its message is the error's
    reason and nothing is enabled."""

    def __init__(self, host, leave_disabled=False):
        self.host = host
        self.leave_disabled = leave_disabled

    def check(self):
        base.require_text("host", self.host)
        if not isinstance(self.leave_disabled, bool):
            raise nova_client.NovaError(
                f"bad input: leave_disabled must be true or false, not "
                f"{self.leave_disabled!r}")

    def act(self, nova):
        return nova.retrying(f"enabling nova-compute on {self.host}",
                             lambda: self._attempt(nova), host=self.host)

    def _attempt(self, nova):
        client = nova.client()
        service = nova.compute_service(self.host, client)
        forced_down = bool(service.get("forced_down"))
        disabled = service.get("status") == "disabled"
        # leave_disabled: the service stays disabled, with Nova's reason.
        kept = disabled and self.leave_disabled
        enable = disabled and not kept
        if client.api_version >= nova_client.SERVICE_UUID_MIN:
            # One request: Nova checks the evacuation records before it
            # saves anything, so a refusal leaves the service disabled.
            body = {}
            if forced_down:
                body["forced_down"] = False
            if enable:
                body["status"] = "enabled"
            if body:
                nova.put(f"/os-services/{service['id']}", body, client)
        else:
            host_binary = {"host": self.host, "binary": "nova-compute"}
            if forced_down:
                nova.put("/os-services/force-down",
                         dict(host_binary, forced_down=False), client)
            if enable:
                nova.put("/os-services/enable", host_binary, client)
        changed = forced_down or enable
        if changed:
            base.LOG.info("nova-compute on %s %s", self.host,
                          "no longer forced down, left disabled" if kept
                          else "enabled")
        return {"host": self.host, "service_id": service["id"],
                "forced_down": False, "disabled": kept, "changed": changed,
                "state": service.get("state"),
                "disabled_reason": (service.get("disabled_reason") if kept
                                    else None),
                "microversion": client.api_version.get_string()}
