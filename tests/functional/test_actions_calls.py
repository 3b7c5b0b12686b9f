"""How many Nova calls a host recovery costs per VM, counted from the
simulator's call log (``pytest -s`` prints the table; doc/actions.rst,
"Nova calls per VM", quotes it)."""

import collections

from actions_support import run
from actions_support import topology

from instance_ha.actions.evacuate import Evacuate
from instance_ha.actions.host_servers import HostServers
from instance_ha.actions.lock import Lock
from instance_ha.actions.reset_state import ResetState
from instance_ha.actions.service_force_down import ServiceForceDown
from instance_ha.actions.stop import Stop
from instance_ha.actions.unlock import Unlock
from instance_ha.actions.wait_for_server import WaitForServer

pytest_plugins = ("actions_support",)

VMS = 6
# The most each action may cost one VM, once the microversion is known.
BUDGET = {"lock": 2, "reset_state": 2, "evacuate": 4, "stop": None,
          "unlock": 2}


def test_nova_calls_per_vm(make_cloud):
    servers = [{"name": f"vm{i}"} for i in range(VMS - 2)]
    servers += [{"name": "off", "vm_state": "stopped"},
                {"name": "resized-off", "vm_state": "resized",
                 "power_state": 4}]
    cloud = make_cloud(topology({"compute1": servers, "compute2": [],
                                 "compute3": []}, evacuation_time=0.3))
    cloud.model.kill_host("compute1")
    calls = collections.defaultdict(list)

    def counted(name, action):
        mark = cloud.mark()
        result = run(action)
        assert not hasattr(result, "error"), result.error
        calls[name].append(len(cloud.nova_calls(mark)))
        return result

    counted("service_force_down", ServiceForceDown("compute1", "test"))
    listing = counted("host_servers", HostServers({"host": "compute1"}))
    plans = listing["servers"]
    assert len(plans) == VMS
    for plan in plans:
        counted("lock", Lock(plan["id"]))
        if "reset_error" in plan["steps"]:
            counted("reset_state", ResetState(plan["id"], "error"))
        counted("evacuate", Evacuate(plan["id"], "compute1"))
    for plan in plans:
        counted("wait_for_server", WaitForServer(
            plan["id"], "compute1", plan["evacuated_vm_state"], timeout=20,
            interval=0.1))
        if "stop" in plan["steps"]:
            counted("stop", Stop(plan["id"], interval=0.02))
        counted("unlock", Unlock(plan["id"], True))
    for plan in plans:
        server = cloud.model.servers[plan["id"]]
        assert server.vm_state == plan["expected_vm_state"]
        assert server.host != "compute1"
    assert cloud.model.calls.accepted_evacuations() == {
        plan["id"]: 1 for plan in plans}
    # The resized VM that was stopped is reset to error, and Nova boots a
    # server evacuated from error: it is stopped again.
    resized = next(p for p in plans if p["name"] == "resized-off")
    assert resized["evacuated_vm_state"] == "active"
    assert cloud.model.calls.count(operation="os-stop") == 1

    print(f"\nNova calls, {VMS} VMs, evacuation 0.3 s, poll every 0.1 s")
    print(f"{'action':<20}{'runs':>5}{'calls':>7}{'per run':>9}")
    total = 0
    for name, counts in calls.items():
        total += sum(counts)
        print(f"{name:<20}{len(counts):>5}{sum(counts):>7}"
              f"{sum(counts) / len(counts):>9.2f}")
        if BUDGET.get(name):
            assert max(counts) <= BUDGET[name], (name, counts)
    print(f"{'total':<20}{'':>5}{total:>7}{total / VMS:>9.2f} per VM")
    # Each host-level action is paid once; the first also negotiates.
    assert calls["service_force_down"] == [3]
    assert calls["host_servers"] == [2]
    # The first evacuate chooses its version (no call); every one reads
    # the server and its migrations, posts, and finds its migration.
    assert set(calls["evacuate"]) == {4}
