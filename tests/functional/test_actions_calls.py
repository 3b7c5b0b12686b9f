"""How many Nova calls a host recovery costs per VM, counted from the
simulator's call log (``pytest -s`` prints the tables; doc/actions.rst,
"Nova calls per VM", quotes them).  One recover_servers action does a
VM's whole recovery (lock, the row's steps, evacuation, wait, unlock):
its calls are counted per VM (a call naming the server) and shared (the
host's evacuations, listed once per poll for the whole pass)."""

import collections
import pathlib

import pytest
from actions_support import run
from actions_support import topology

from instance_ha.actions.host_servers import HostServers
from instance_ha.actions.recover_servers import RecoverServers
from instance_ha.actions.service_force_down import ServiceForceDown

pytest_plugins = ("actions_support",)

DOC = pathlib.Path(__file__).parents[2] / "doc" / "actions.rst"
VMS = 6
# host_evacuate's passes: up to concurrency (default 10) VMs an action.
PER_PASS = 10
# The most one VM's own calls may be in recover_servers, by its row:
# lock, evacuate, one read of where it ended, unlock; the resized VM that
# was stopped adds its reset to error, and its stop (os-stop, then the
# reads until Nova reports it stopped).
BUDGET = {"evacuate": 4, "reset_error,evacuate,stop": 8}


@pytest.fixture(autouse=True)
def fenced(pacemaker):
    """Pacemaker shows compute1 fenced (recover_servers reads it)."""
    return pacemaker


def test_nova_calls_per_vm(make_cloud):
    servers = [{"name": f"vm{i}"} for i in range(VMS - 2)]
    servers += [{"name": "off", "vm_state": "stopped"},
                {"name": "resized-off", "vm_state": "resized",
                 "power_state": 4}]
    cloud = make_cloud(topology({"compute1": servers, "compute2": [],
                                 "compute3": []}, evacuation_time=0.3))
    cloud.model.kill_host("compute1")
    calls = collections.defaultdict(list)
    per_vm = collections.defaultdict(collections.Counter)
    shared = collections.Counter()

    def counted(name, action):
        mark = cloud.mark()
        result = run(action)
        assert not hasattr(result, "error"), result.error
        made = cloud.nova_calls(mark)
        calls[name].append(len(made))
        return result, made

    counted("service_force_down", ServiceForceDown("compute1", "test"))
    listing, _ = counted("host_servers", HostServers({"host": "compute1"}))
    plans = listing["servers"]
    assert len(plans) == VMS
    assert {p["plan"] for p in plans} == {"evacuate"}
    for start in range(0, VMS, PER_PASS):
        servers = plans[start:start + PER_PASS]
        result, made = counted("recover_servers", RecoverServers(
            servers, "compute1", timeout=20, interval=0.1))
        assert [r["outcome"] for r in result["servers"]] == \
            ["moved"] * len(servers), result
        ids = {p["id"] for p in servers}
        for call in made:
            if call.server_id in ids:
                per_vm[call.server_id][call.operation] += 1
            else:
                shared[call.operation] += 1
    for plan in plans:
        server = cloud.model.servers[plan["id"]]
        assert server.vm_state == plan["expected_vm_state"]
        assert server.host != "compute1"
        assert not server.locked
    assert cloud.model.calls.accepted_evacuations() == {
        plan["id"]: 1 for plan in plans}
    # The resized VM that was stopped is reset to error, and Nova boots a
    # server evacuated from error: it is stopped again.
    resized = next(p for p in plans if p["name"] == "resized-off")
    assert resized["evacuated_vm_state"] == "active"
    assert resized["steps"] == ["reset_error", "evacuate", "stop"]
    assert cloud.model.calls.count(operation="os-stop") == 1

    printed = []

    def say(line):
        print(line)
        printed.extend(line.strip("\n").splitlines())

    say(f"\nNova calls, {VMS} VMs, evacuation 0.3 s, poll every 0.1 s")
    say(f"{'action':<20}{'runs':>5}{'calls':>7}{'per run':>9}")
    total = 0
    for name, counts in calls.items():
        total += sum(counts)
        say(f"{name:<20}{len(counts):>5}{sum(counts):>7}"
            f"{sum(counts) / len(counts):>9.2f}")
    say(f"{'total':<20}{'':>5}{total:>7}{total / VMS:>9.2f} per VM")
    say(f"\nrecover_servers, {VMS} VMs in {len(calls['recover_servers'])} "
        f"pass(es) (of {PER_PASS} at most)")
    say(f"{'VM':<13}{'steps':<27}{'calls':>5}  operations")
    for plan in plans:
        own = per_vm[plan["id"]]
        steps = ",".join(plan["steps"])
        say(f"{plan['name']:<13}{steps:<27}{sum(own.values()):>5}  "
            + ", ".join(f"{op} {n}" for op, n in sorted(own.items())))
        assert sum(own.values()) <= BUDGET[steps], (plan["name"], own)
        assert (own["lock"], own["evacuate"], own["unlock"]) == (1, 1, 1)
    listings = "the host's evacuations"
    say(f"{'shared':<13}{listings:<27}"
        f"{sum(shared.values()):>5}  "
        + ", ".join(f"{op} {n}" for op, n in sorted(shared.items())))
    # Each host-level action is paid once; the first also negotiates.
    assert calls["service_force_down"] == [3]
    assert calls["host_servers"] == [2]
    # What the VMs of a pass share is the host's evacuations: one listing
    # before the first evacuation and one per poll, whatever the number
    # of VMs.
    assert set(shared) == {"migrations.list"}
    # A VM evacuated as it is (active or stopped) costs four calls.
    for plan in plans:
        if plan["steps"] == ["evacuate"]:
            assert sorted(per_vm[plan["id"]].elements()) == \
                ["evacuate", "lock", "servers.show", "unlock"]
    # doc/actions.rst quotes the tables: every line that does not hang on
    # timing (the polls; the resized VM's reads while it stops) is there.
    doc = DOC.read_text(encoding="utf-8")
    section = doc[doc.index("\nNova calls per VM\n"):]
    steady = [line for line in printed if line.split()[0] in (
        "action", "service_force_down", "host_servers", "VM", "off", "vm0",
        "vm1", "vm2", "vm3") or line.startswith("recover_servers, ")]
    assert len(steady) == 10, printed
    for line in steady:
        assert f"\n   {line}\n" in section, line
