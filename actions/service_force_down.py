"""Force a host's nova-compute service down and disable it."""

from instance_ha import nova_client
from instance_ha.actions import base

# Nova's os-services API takes a disabled_reason of at most 255 characters.
DISABLED_REASON_MAX = 255


class ServiceForceDown(base.NovaAction):
    """Mark the host's nova-compute forced down and disabled, with
    ``reason`` (say who and when).  Once both are set nothing is sent, and
    an existing disabled reason is kept."""

    def __init__(self, host, reason):
        self.host = host
        self.reason = reason[:DISABLED_REASON_MAX] \
            if isinstance(reason, str) else reason

    def check(self):
        base.require_text("host", self.host)
        base.require_text("reason", self.reason)

    def act(self, nova):
        what = f"forcing down nova-compute on {self.host}"
        return nova.retrying(what, lambda: self._attempt(nova),
                             host=self.host)

    def _attempt(self, nova):
        client = nova.client(at_least=nova_client.FORCE_DOWN_MIN,
                             what="force_down")
        service = nova.compute_service(self.host, client)
        changed = not (service.get("forced_down")
                       and service.get("status") == "disabled")
        reason = service.get("disabled_reason")
        if changed:
            if (client.api_version >= nova_client.SERVICE_UUID_MIN
                    or service.get("status") != "disabled"):
                reason = self.reason
            if client.api_version >= nova_client.SERVICE_UUID_MIN:
                nova.put(f"/os-services/{service['id']}",
                         {"forced_down": True, "status": "disabled",
                          "disabled_reason": self.reason}, client)
            else:
                body = {"host": self.host, "binary": "nova-compute"}
                if not service.get("forced_down"):
                    nova.put("/os-services/force-down",
                             dict(body, forced_down=True), client)
                if service.get("status") != "disabled":
                    nova.put("/os-services/disable-log-reason",
                             dict(body, disabled_reason=self.reason),
                             client)
            base.LOG.info("nova-compute on %s forced down and disabled",
                          self.host)
        return {"host": self.host, "service_id": service["id"],
                "forced_down": True, "disabled": True, "changed": changed,
                "state": service.get("state"),
                "disabled_reason": reason,
                "microversion": client.api_version.get_string()}
