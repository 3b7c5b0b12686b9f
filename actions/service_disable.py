"""Disable a host's nova-compute service (process down: nothing new is
scheduled there; its VMs are left alone)."""

from instance_ha import nova_client
from instance_ha.actions import base


class ServiceDisable(base.NovaAction):
    """Disable the host's nova-compute with ``reason``; nothing is sent
    when it is already disabled (its reason is kept)."""

    def __init__(self, host, reason):
        self.host = host
        self.reason = reason

    def check(self):
        base.require_text("host", self.host)
        base.require_text("reason", self.reason)

    def act(self, nova):
        return nova.retrying(f"disabling nova-compute on {self.host}",
                             lambda: self._attempt(nova), host=self.host)

    def _attempt(self, nova):
        client = nova.client()
        service = nova.compute_service(self.host, client)
        changed = service.get("status") != "disabled"
        if changed:
            if client.api_version >= nova_client.SERVICE_UUID_MIN:
                nova.put(f"/os-services/{service['id']}",
                         {"status": "disabled",
                          "disabled_reason": self.reason}, client)
            else:
                nova.put("/os-services/disable-log-reason",
                         {"host": self.host, "binary": "nova-compute",
                          "disabled_reason": self.reason}, client)
            base.LOG.info("nova-compute on %s disabled", self.host)
        return {"host": self.host, "service_id": service["id"],
                "disabled": True, "changed": changed,
                "state": service.get("state"),
                "disabled_reason": (self.reason if changed
                                    else service.get("disabled_reason")),
                "microversion": client.api_version.get_string()}
