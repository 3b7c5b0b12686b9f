"""instance_ha.capacity without a cloud: a flavor's placement resources as
Nova's scheduler computes them, the greedy estimate, the failure limit."""

import pytest

from instance_ha import capacity

FLAVOR = {"vcpus": 2, "ram": 4096, "disk": 20, "ephemeral": 0, "swap": 0}


def inventory(total, reserved=0, ratio=1.0, max_unit=None, step=1):
    return {"total": total, "reserved": reserved, "min_unit": 1,
            "max_unit": total if max_unit is None else max_unit,
            "step_size": step, "allocation_ratio": ratio}


def host(vcpus=8, ram=8192, disk=100, used=None, ram_reserved=0,
         cpu_ratio=1.0):
    return {"inventories": {"VCPU": inventory(vcpus, ratio=cpu_ratio),
                            "MEMORY_MB": inventory(ram, ram_reserved),
                            "DISK_GB": inventory(disk)},
            "usages": dict({"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0},
                           **(used or {}))}


def server(name, ram, vcpus=1, disk=0, priority=0):
    resources = {"VCPU": vcpus, "MEMORY_MB": ram}
    if disk:
        resources["DISK_GB"] = disk
    return {"id": f"id-{name}", "name": name, "priority": priority,
            "resources": resources}


# -- resources_from_flavor ---------------------------------------------

@pytest.mark.parametrize("flavor, bfv, expected", [
    (FLAVOR, False, {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20}),
    # Booted from volume: the root disk is not on the host.
    (FLAVOR, True, {"VCPU": 2, "MEMORY_MB": 4096}),
    # Ephemeral and swap (MB, rounded up to GB) are, whatever the root.
    (dict(FLAVOR, ephemeral=5, swap=1025), True,
     {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 7}),
    (dict(FLAVOR, ephemeral=5, swap=512), False,
     {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 26}),
    # Nova's swap "" (0) below 2.75.
    (dict(FLAVOR, swap=""), False,
     {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20}),
])
def test_resources_of_a_flavor(flavor, bfv, expected):
    assert capacity.resources_from_flavor(flavor, bfv) == expected


def test_extra_specs_override_their_class_and_add_others():
    flavor = dict(FLAVOR, extra_specs={
        "resources:VCPU": "1", "resources1:VCPU": "3",
        "resources:DISK_GB": "0", "resources:CUSTOM_GPU": "1",
        "resources:MEMORY_MB": "-1", "resources:lower": "2",
        "hw:mem_page_size": "large"})
    # VCPU summed over the groups; DISK_GB 0 dropped; a negative amount
    # ignored (MEMORY_MB from the flavor); a lower-case class ignored.
    assert capacity.resources_from_flavor(flavor, False) == {
        "VCPU": 4, "MEMORY_MB": 4096, "CUSTOM_GPU": 1}


def test_dedicated_cpus_are_pcpus():
    flavor = dict(FLAVOR, extra_specs={"hw:cpu_policy": "dedicated"})
    assert capacity.resources_from_flavor(flavor, False) == {
        "PCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20}
    flavor["extra_specs"]["hw:emulator_threads_policy"] = "isolate"
    assert capacity.resources_from_flavor(flavor, False)["PCPU"] == 3


# -- the greedy estimate -----------------------------------------------

def test_free_is_total_less_reserved_times_ratio_less_used():
    free = capacity.free_of(
        {"VCPU": inventory(10, ratio=4.0), "MEMORY_MB": inventory(8192, 512),
         "DISK_GB": inventory(100, ratio=1.5)},
        {"VCPU": 3, "MEMORY_MB": 1024, "DISK_GB": 10})
    assert free == {"VCPU": 37, "MEMORY_MB": 6656, "DISK_GB": 140}


def test_each_server_goes_where_most_memory_is_free():
    hosts = {"a": host(ram=8192), "b": host(ram=16384)}
    fit, no_room, free, left = capacity.greedy_fit(
        [server("1", 6000), server("2", 6000), server("3", 6000)], hosts)
    # 1 -> b (16384 free), 2 -> b (10384 > 8192), 3 -> a (8192 > 4384).
    assert fit == ["id-1", "id-2", "id-3"]
    assert no_room == []
    assert free["b"]["MEMORY_MB"] == 16384
    assert left == {"a": {"VCPU": 7, "MEMORY_MB": 2192, "DISK_GB": 100},
                    "b": {"VCPU": 6, "MEMORY_MB": 4384, "DISK_GB": 100}}


def test_a_server_that_fits_nowhere_does_not_stop_smaller_ones():
    hosts = {"a": host(ram=8192, used={"MEMORY_MB": 4096})}
    fit, no_room, _, left = capacity.greedy_fit(
        [server("big", 8192, priority=5), server("small", 2048)], hosts)
    assert fit == ["id-small"]
    assert no_room == [{
        "id": "id-big", "name": "big", "priority": 5,
        "reason": "needs MEMORY_MB 8192, VCPU 1: no candidate host has "
                  "room (a: MEMORY_MB 8192 > free 4096)"}]
    assert left["a"]["MEMORY_MB"] == 2048


def test_every_class_must_fit_not_only_memory():
    hosts = {"roomy": host(vcpus=1, ram=65536), "small": host(ram=4096)}
    fit, _, _, left = capacity.greedy_fit([server("4cpu", 2048, vcpus=4)],
                                          hosts)
    # The most free memory is on "roomy", which has 1 VCPU.
    assert fit == ["id-4cpu"]
    assert left["small"]["VCPU"] == 4


def test_max_unit_and_step_size_are_placement_s():
    hosts = {"a": host(vcpus=4, cpu_ratio=4.0)}
    _, no_room, free, _ = capacity.greedy_fit(
        [server("wide", 1024, vcpus=8)], hosts)
    assert free["a"]["VCPU"] == 16
    assert "VCPU 8 outside min_unit 1, max_unit 4" in no_room[0]["reason"]
    stepped = {"a": host()}
    stepped["a"]["inventories"]["MEMORY_MB"]["step_size"] = 1024
    _, no_room, _, _ = capacity.greedy_fit([server("odd", 1000)], stepped)
    assert "step_size 1024" in no_room[0]["reason"]


def test_a_class_the_host_has_no_inventory_of():
    _, no_room, _, _ = capacity.greedy_fit(
        [{"id": "g", "name": "g", "resources": {"CUSTOM_GPU": 1}}],
        {"a": host()})
    assert no_room[0]["reason"].endswith("(a: no CUSTOM_GPU inventory)")


def test_no_candidate_host():
    fit, no_room, free, left = capacity.greedy_fit([server("1", 512)], {})
    assert (fit, free, left) == ([], {}, {})
    assert no_room[0]["reason"] == \
        "needs MEMORY_MB 512, VCPU 1: no candidate host"


def test_ties_go_to_the_earlier_host_and_unsized_servers_fit():
    fit, _, _, left = capacity.greedy_fit(
        [server("1", 1024), {"id": "x", "name": "x", "resources": None}],
        {"a": host(), "b": host()})
    assert fit == ["id-1", "x"]
    assert left["a"]["MEMORY_MB"] == 7168
    assert left["b"]["MEMORY_MB"] == 8192


# -- the failure limit ---------------------------------------------------

def aggregate(name, hosts, limit=None):
    metadata = {} if limit is None else {capacity.MAX_FAILURES_KEY: limit}
    return {"name": name, "hosts": hosts, "metadata": metadata}


def test_within_the_limit():
    refused, checked = capacity.failure_limit(
        "c1", [aggregate("rack1", ["c1", "c2", "c3"], "2")], {"c2"})
    assert refused is None
    assert checked == [{"name": "rack1", "max_failures": 2,
                        "failed": ["c1", "c2"]}]


def test_over_the_limit_counts_this_host():
    refused, checked = capacity.failure_limit(
        "c1", [aggregate("rack1", ["c1", "c2", "c3"], "1"),
               aggregate("other", ["c2", "c3"], "1"),
               aggregate("zone", ["c1", "c2"])], {"c2", "c3"})
    assert refused == ("aggregate rack1 allows instance_ha:max_failures=1 "
                       "failed hosts and has 3: c1, c2, c3")
    # Only the host's own aggregates with the key are looked at.
    assert [a["name"] for a in checked] == ["rack1"]


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5", "", True])
def test_a_malformed_limit_refuses(value):
    refused, checked = capacity.failure_limit(
        "c1", [aggregate("rack1", ["c1", "c2"], value)], set())
    assert refused == (f"aggregate rack1: instance_ha:max_failures="
                       f"{value!r} is not an integer >= 1; not guessing a "
                       "limit")
    assert checked == [{"name": "rack1", "max_failures": value,
                        "failed": ["c1"]}]


def test_no_key_no_refusal():
    assert capacity.failure_limit(
        "c1", [aggregate("rack1", ["c1", "c2"])], {"c2"}) == (None, [])
