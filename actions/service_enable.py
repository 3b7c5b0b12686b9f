"""Bring a repaired host's nova-compute service back."""

from instance_ha import nova_client
from instance_ha.actions import base


class ServiceEnable(base.NovaAction):
    """Unset forced_down, then enable.  Nova refuses to unset forced_down
    while `done` evacuation records remain (the compute has not restarted
    since); its message is the error's reason and nothing is enabled."""

    def __init__(self, host):
        self.host = host

    def check(self):
        base.require_text("host", self.host)

    def act(self, nova):
        return nova.retrying(f"enabling nova-compute on {self.host}",
                             lambda: self._attempt(nova), host=self.host)

    def _attempt(self, nova):
        client = nova.client()
        service = nova.compute_service(self.host, client)
        forced_down = bool(service.get("forced_down"))
        disabled = service.get("status") == "disabled"
        if client.api_version >= nova_client.SERVICE_UUID_MIN:
            # One request: Nova checks the evacuation records before it
            # saves anything, so a refusal leaves the service disabled.
            body = {}
            if forced_down:
                body["forced_down"] = False
            if disabled:
                body["status"] = "enabled"
            if body:
                nova.put(f"/os-services/{service['id']}", body, client)
        else:
            host_binary = {"host": self.host, "binary": "nova-compute"}
            if forced_down:
                nova.put("/os-services/force-down",
                         dict(host_binary, forced_down=False), client)
            if disabled:
                nova.put("/os-services/enable", host_binary, client)
        changed = forced_down or disabled
        if changed:
            base.LOG.info("nova-compute on %s enabled", self.host)
        return {"host": self.host, "service_id": service["id"],
                "forced_down": False, "disabled": False, "changed": changed,
                "state": service.get("state"),
                "disabled_reason": None,
                "microversion": client.api_version.get_string()}
