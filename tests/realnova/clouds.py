"""The two clouds the Nova contract (test_nova_contract.py) runs against,
behind one small interface: real Nova 34 (realnova.RealNova) and the
simulated cloud (instance_ha.simcloud).  Everything a contract case
asserts goes through the compute API over HTTP; only setting a server up
in a state and crashing or restarting a host go through each cloud's own
controls."""

import time

from instance_ha.simcloud import states
from instance_ha.simcloud import testing

LATEST = "2.96"
# A server in each state as Nova's own API leaves it on the fake driver:
# (vm_state, power_state); a resize keeps a stopped server off, and a
# reset to error keeps the power state.
SIM_STATES = {
    state: (state, states.POWER_STATE_FOR_VM_STATE[state])
    for state in ("active", "stopped", "paused", "suspended", "rescued")}
SIM_STATES.update({"error": ("error", states.RUNNING),
                   "resized": ("resized", states.RUNNING),
                   "resized_stopped": ("resized", states.SHUTDOWN)})


class Cloud:
    """What both clouds offer a contract case."""

    name = None

    def fresh_hosts(self, count):
        """``count`` new compute hosts nothing ran on; their names."""
        raise NotImplementedError

    def create_server(self, host, state="active", lock_reason=None):
        """A server of the default project on ``host`` in ``state``; its
        id."""
        raise NotImplementedError

    def crash(self, host):
        """The host dies: nova-compute stops, its guests stay defined."""
        raise NotImplementedError

    def restart(self, host):
        """The host boots again and nova-compute starts (init_host)."""
        raise NotImplementedError

    def nova(self, method, path, body=None, microversion=None, admin=True):
        """One compute API request: (status, decoded body)."""
        raise NotImplementedError

    # -- shared, on the API -------------------------------------------

    def server(self, server_id, microversion=LATEST):
        status, body = self.nova("GET", f"/servers/{server_id}",
                                 microversion=microversion)
        assert status == 200, (status, body)
        return body["server"]

    def service(self, host):
        status, body = self.nova(
            "GET", f"/os-services?host={host}&binary=nova-compute",
            microversion="2.53")
        assert status == 200, (status, body)
        (service,) = body["services"]
        return service

    def compute_hosts(self):
        status, body = self.nova("GET", "/os-services?binary=nova-compute",
                                 microversion="2.53")
        assert status == 200, (status, body)
        return [s["host"] for s in body["services"]]

    def update_service(self, host, **fields):
        service = self.service(host)
        return self.nova("PUT", f"/os-services/{service['id']}", fields,
                         microversion="2.53")

    def force_down(self, host):
        status, body = self.update_service(
            host, forced_down=True, status="disabled",
            disabled_reason="contract test")
        assert status == 200, (status, body)

    def evacuations(self, server_id):
        status, body = self.nova(
            "GET", f"/os-migrations?instance_uuid={server_id}"
                   "&migration_type=evacuation", microversion="2.59")
        assert status == 200, (status, body)
        return sorted(body["migrations"], key=lambda m: m["id"])

    def evacuate(self, server_id, microversion="2.94", **args):
        return self.nova("POST", f"/servers/{server_id}/action",
                         {"evacuate": args}, microversion=microversion)

    def wait_server(self, server_id, timeout=60, **expected):
        deadline = time.monotonic() + timeout
        while True:
            server = self.server(server_id)
            if all(server.get(k) == v for k, v in expected.items()):
                return server
            assert time.monotonic() < deadline, \
                f"{self.name}: {server_id} not {expected}: {server}"
            time.sleep(0.05)

    def wait_evacuation(self, server_id, timeout=60):
        """Until the newest evacuation migration is finished; it."""
        deadline = time.monotonic() + timeout
        while True:
            migrations = self.evacuations(server_id)
            if migrations and migrations[-1]["status"] in (
                    "done", "completed", "error", "failed"):
                return migrations[-1]
            assert time.monotonic() < deadline, migrations
            time.sleep(0.05)


class RealCloud(Cloud):
    name = "real-nova"

    def __init__(self, real_nova):
        self.real = real_nova

    def fresh_hosts(self, count):
        return [self.real.fresh_host("contract") for _ in range(count)]

    def create_server(self, host, state="active", lock_reason=None):
        lock = {"reason": lock_reason, "by": "owner"} if lock_reason \
            else None
        return self.real.create_server(host, state=state, lock=lock)["id"]

    def crash(self, host):
        self.real.crash(host)

    def restart(self, host):
        # A forced-down service reads down whatever its heartbeats say.
        self.real.restart(host, wait_up=False)

    def nova(self, method, path, body=None, microversion=None, admin=True):
        token = "admin:admin" if admin else "member:demo"
        return self.real.nova(method, path, body, token=token,
                              microversion=microversion)


class SimCloud(Cloud):
    name = "simcloud"

    def __init__(self, simcloud_factory):
        self.sim = simcloud_factory({
            "settings": {"evacuation_time": 0.5, "power_time": 0.05},
            "flavors": [{"name": "m1.small", "id": "1", "vcpus": 1,
                         "ram": 2048, "disk": 20}],
            "images": [{"name": "cirros"}], "hosts": []})
        self.model = self.sim.cloud
        self._hosts = 0

    def fresh_hosts(self, count):
        names = []
        for _ in range(count):
            self._hosts += 1
            names.append(f"compute{self._hosts}")
            self.model.add_host(names[-1])
        return names

    def create_server(self, host, state="active", lock_reason=None):
        vm_state, power_state = SIM_STATES[state]
        return self.model.add_server(
            f"vm-{state}", host, vm_state=vm_state, power_state=power_state,
            locked=bool(lock_reason), locked_reason=lock_reason).id

    def crash(self, host):
        self.model.kill_host(host)

    def restart(self, host):
        self.model.revive_host(host)

    def nova(self, method, path, body=None, microversion=None, admin=True):
        response = testing.request(self.sim, method, path,
                                   version=microversion, admin=admin,
                                   json=body)
        try:
            decoded = response.json() if response.content else None
        except ValueError:
            decoded = response.text
        return response.status_code, decoded
