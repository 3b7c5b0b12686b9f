"""estimate_capacity and check_failure_limit against the simulated cloud:
the estimate from placement's inventories and usages, what Nova then
does with the same VMs, failing open, and the per-aggregate limit of
failed hosts set up through Nova's aggregates API."""

import pytest
from actions_support import context
from actions_support import error_of
from actions_support import recover
from actions_support import run
from actions_support import topology

from instance_ha.actions.check_failure_limit import CheckFailureLimit
from instance_ha.actions.estimate_capacity import EstimateCapacity
from instance_ha.actions.host_servers import HostServers
from instance_ha.simcloud import testing

pytest_plugins = ("actions_support",)

MUTATING = ("POST", "PUT", "DELETE", "PATCH")
FLAVORS = [{"name": "m1.small", "id": "1", "vcpus": 1, "ram": 2048,
            "disk": 20},
           {"name": "m1.medium", "id": "2", "vcpus": 2, "ram": 4096,
            "disk": 40, "swap": 1536},
           {"name": "m1.wide", "id": "3", "vcpus": 8, "ram": 1024,
            "disk": 1}]


def capacity_cloud(make_cloud, servers, targets, **settings):
    """compute1 holds ``servers`` and is dead and forced down;
    ``targets``: {name: host settings} of the other hosts."""
    config = topology({"compute1": servers,
                       **{name: [] for name in targets}},
                      **dict({"evacuation_time": 0.3, "power_time": 0.05},
                             **settings))
    config["flavors"] = list(FLAVORS)
    for host in config["hosts"]:
        host.update(targets.get(host["name"], {}))
    cloud = make_cloud(config)
    cloud.model.kill_host("compute1")
    cloud.force_down("compute1")
    return cloud


def listing():
    return run(HostServers({"host": "compute1"}))["servers"]


def mutations(cloud, since):
    return [(c.method, c.path) for c in cloud.model.calls.calls()[since:]
            if c.method in MUTATING and not c.operation.startswith(
                "keystone.")]


def test_host_servers_gives_the_resources_nova_allocated(make_cloud):
    cloud = capacity_cloud(make_cloud, [
        {"name": "small", "flavor": "m1.small"},
        {"name": "medium", "flavor": "m1.medium"},
        {"name": "volume", "flavor": "m1.small", "image": None}],
        {"compute2": {}})
    # A server without an image boots from volume: no root disk.
    with cloud.model.lock:
        cloud.server("volume").image = None
        host = cloud.model.hosts["compute1"]
        host.allocate(cloud.server("volume").id, {"VCPU": 1,
                                                  "MEMORY_MB": 2048})
    entries = {e["name"]: e for e in listing()}
    assert entries["small"]["resources"] == {
        "VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}
    # swap 1536 MB is 2 GB of disk.
    assert entries["medium"]["resources"] == {
        "VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 42}
    assert entries["volume"]["resources"] == {"VCPU": 1, "MEMORY_MB": 2048}
    allocations = cloud.model.hosts["compute1"].allocations
    for name, entry in entries.items():
        assert allocations[entry["id"]] == entry["resources"], name


def test_below_2_47_the_flavor_is_read_once_per_flavor(make_cloud):
    cloud = capacity_cloud(make_cloud, [
        {"name": f"vm{i}", "flavor": "m1.medium"} for i in range(3)],
        {"compute2": {}})
    at_247 = listing()
    mark = cloud.mark()
    from instance_ha.simcloud import microversion

    saved = microversion.MAX_VERSION
    microversion.MAX_VERSION = (2, 46)
    try:
        from instance_ha import nova_client

        nova_client.clear_negotiated()
        below = listing()
    finally:
        microversion.MAX_VERSION = saved
        nova_client.clear_negotiated()
    assert [e["resources"] for e in below] == \
        [e["resources"] for e in at_247] == [
        {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 42}] * 3
    assert cloud.operations(mark).count("flavors.show") == 1


def test_the_estimate_is_what_nova_then_does(make_cloud, pacemaker):
    """compute2 has 8192 MB free, compute3 6144: the first 4096 MB VM
    goes to compute2, the second to compute3, the third to compute2; the
    fourth fits nowhere, the fifth, smaller, still fits compute3.  The
    evacuations then land every estimated VM and only those."""
    servers = [{"name": f"m{i}", "flavor": "m1.medium",
                "metadata": {"instance_ha:priority": str(9 - i)}}
               for i in range(4)]
    servers.append({"name": "s4", "flavor": "m1.small"})
    cloud = capacity_cloud(make_cloud, servers, {
        "compute2": {"memory_mb": 8192},
        "compute3": {"memory_mb": 8192, "reserved_memory_mb": 2048}})
    entries = [e for e in listing() if e["plan"] == "evacuate"]
    assert [e["name"] for e in entries] == ["m0", "m1", "m2", "m3", "s4"]
    mark = cloud.mark()
    result = run(EstimateCapacity(entries, "compute1"))
    ids = {e["name"]: e["id"] for e in entries}
    assert result["checked"] is True and result["note"] is None
    assert result["fit"] == [ids["m0"], ids["m1"], ids["m2"], ids["s4"]]
    (no_room,) = result["no_room"]
    assert (no_room["id"], no_room["name"], no_room["priority"]) == \
        (ids["m3"], "m3", 6)
    assert no_room["reason"].startswith(
        "needs DISK_GB 42, MEMORY_MB 4096, VCPU 2: no candidate host has "
        "room (compute2: MEMORY_MB 4096 > free 0; compute3: MEMORY_MB "
        "4096 > free 2048)")
    assert result["hosts"] == [
        {"host": "compute2",
         "free": {"DISK_GB": 4096, "MEMORY_MB": 8192, "VCPU": 256},
         "left": {"DISK_GB": 4012, "MEMORY_MB": 0, "VCPU": 252}},
        {"host": "compute3",
         "free": {"DISK_GB": 4096, "MEMORY_MB": 6144, "VCPU": 256},
         "left": {"DISK_GB": 4034, "MEMORY_MB": 0, "VCPU": 253}}]
    assert result["skipped"] == []
    assert mutations(cloud, mark) == []
    # One at a time, in the estimate's order, as the scheduler sees them.
    outcomes = {}
    for entry in entries:
        outcomes.update(recover(cloud, [entry]))
    moved = {name for name, r in outcomes.items() if r["outcome"] == "moved"}
    assert moved == {"m0", "m1", "m2", "s4"}
    assert outcomes["m3"]["outcome"] == "failed"
    assert {n: outcomes[n]["host"] for n in moved} == {
        "m0": "compute2", "m1": "compute3", "m2": "compute2",
        "s4": "compute3"}


def test_null_targets_leave_out_hosts_the_scheduler_would(make_cloud):
    cloud = capacity_cloud(make_cloud, [{"name": "vm", "flavor": "m1.small"}],
                           {"compute2": {"disabled": True},
                            "compute3": {"forced_down": True},
                            "compute4": {"alive": False},
                            "compute5": {}})
    result = run(EstimateCapacity(listing(), "compute1"))
    assert [h["host"] for h in result["hosts"]] == ["compute5"]
    assert result["skipped"] == []
    assert len(result["fit"]) == 1
    assert cloud.model.hosts["compute1"].service.forced_down


def test_a_named_target_counts_while_disabled_but_not_while_down(
        make_cloud):
    """A reserved host is disabled until the recovery enables it."""
    make_cloud_ = capacity_cloud(
        make_cloud, [{"name": "vm", "flavor": "m1.small"}],
        {"reserved": {"disabled": True,
                      "disabled_reason": "instance-ha: reserved",
                      "memory_mb": 1024},
         "dead": {"alive": False}, "forced": {"forced_down": True},
         "compute2": {}})
    entries = listing()
    result = run(EstimateCapacity(entries, "compute1",
                                  ["reserved", "dead", "forced", "nohost"]))
    assert [h["host"] for h in result["hosts"]] == ["reserved"]
    assert result["skipped"] == [
        {"host": "dead", "reason": "nova-compute is down"},
        {"host": "forced", "reason": "forced down"},
        {"host": "nohost", "reason": "no nova-compute service"}]
    assert result["fit"] == []
    assert "reserved: MEMORY_MB 2048 outside min_unit 1, max_unit 1024" \
        in result["no_room"][0]["reason"]
    # Then the scheduler's hosts: compute2 takes it.
    result = run(EstimateCapacity(entries, "compute1", ["reserved", None]))
    assert [h["host"] for h in result["hosts"]] == ["reserved", "compute2"]
    assert result["fit"] == [entries[0]["id"]]
    assert make_cloud_.model.hosts["reserved"].service.disabled


def test_a_wide_vm_needs_max_unit_vcpus(make_cloud):
    """8 VCPUs on a 4-core host with allocation ratio 4: placement has
    the capacity (16) but refuses the allocation (max_unit 4), and so
    does the estimate; Nova then finds no valid host."""
    cloud = capacity_cloud(make_cloud, [{"name": "wide",
                                         "flavor": "m1.wide"}],
                           {"compute2": {"vcpus": 4}})
    entries = listing()
    result = run(EstimateCapacity(entries, "compute1"))
    assert result["hosts"][0]["free"]["VCPU"] == 16
    assert result["fit"] == []
    assert "VCPU 8 outside min_unit 1, max_unit 4" in \
        result["no_room"][0]["reason"]
    assert cloud.model._schedule(cloud.server("wide"), None, False) is None


@pytest.mark.parametrize("fault, note", [
    ({"operation": "placement.usages", "status": 503},
     "placement answered HTTP 503 to GET /resource_providers/"),
    ({"operation": "placement.resource_providers.list", "status": 500},
     "placement answered HTTP 500 to GET /resource_providers: "),
])
def test_placement_failing_fails_open(make_cloud, caplog, fault, note):
    cloud = capacity_cloud(make_cloud, [{"name": f"vm{i}"} for i in
                                        range(3)], {"compute2": {}})
    entries = listing()
    operation = fault.pop("operation")
    cloud.model.faults.add(operation, **fault)
    result = run(EstimateCapacity(entries, "compute1"))
    assert result["checked"] is False
    assert result["note"].startswith("capacity not checked: " + note)
    assert result["fit"] == [e["id"] for e in entries]
    assert (result["no_room"], result["hosts"]) == ([], [])
    assert "capacity not checked" in caplog.text
    # Placement is read once, not retried.
    assert cloud.model.calls.count(operation=operation) == 1


def test_a_host_placement_does_not_know_is_skipped(make_cloud, monkeypatch):
    from instance_ha.simcloud import placement

    cloud = capacity_cloud(make_cloud, [{"name": "vm"}],
                           {"compute2": {}, "compute3": {}})
    entries = listing()
    view = placement.provider_view
    monkeypatch.setattr(placement, "provider_view", lambda host, version: (
        {**view(host, version), "name": "elsewhere"}
        if host.name == "compute2" else view(host, version)))
    result = run(EstimateCapacity(entries, "compute1"))
    assert result["checked"] is True
    assert [h["host"] for h in result["hosts"]] == ["compute3"]
    assert result["skipped"] == [{
        "host": "compute2",
        "reason": "placement has no resource provider named compute2"}]
    assert cloud.model.hosts["compute2"].service.disabled is False


def test_placement_not_answering_fails_open(make_cloud):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cloud = capacity_cloud(make_cloud, [{"name": "vm"}], {"compute2": {}})
    entries = listing()
    import yaml

    clouds = yaml.safe_load(open(cloud.clouds_yaml))
    clouds["clouds"]["simcloud"]["placement_endpoint_override"] = \
        f"http://127.0.0.1:{port}/placement"
    with open(cloud.clouds_yaml, "w") as f:
        yaml.safe_dump(clouds, f)
    from instance_ha import cloud_session

    cloud_session.clear_cache()
    result = run(EstimateCapacity(entries, "compute1"))
    assert result["checked"] is False
    assert result["note"].startswith(
        f"capacity not checked: placement at http://127.0.0.1:{port}/"
        "placement does not answer")
    assert result["fit"] == [entries[0]["id"]]


def test_the_endpoint_override_is_where_placement_is_read(make_cloud):
    cloud = capacity_cloud(make_cloud, [{"name": "vm"}], {"compute2": {}})
    entries = listing()
    mark = cloud.mark()
    result = run(EstimateCapacity(entries, "compute1"))
    assert result["checked"] is True
    placement = [c.path for c in cloud.model.calls.calls()[mark:]
                 if c.operation.startswith("placement.")]
    uuid = cloud.model.hosts["compute2"].hypervisor_uuid
    assert placement == ["/placement/resource_providers",
                         f"/placement/resource_providers/{uuid}/inventories",
                         f"/placement/resource_providers/{uuid}/usages"]


def mistral_context(sim, without=()):
    """A Mistral request's context: a token and its catalog."""
    from instance_ha.simcloud import keystone

    catalog = [s for s in keystone.catalog(sim.url)
               if s["type"] not in without]
    return context(auth_token=testing.session(sim).get_token(),
                   auth_uri=sim.auth_url + "/v3",
                   project_id=sim.cloud.identity.admin_project.id,
                   region_name=keystone.REGION,
                   service_catalog={"catalog": catalog})


def test_placement_from_the_mistral_request_s_catalog(make_cloud):
    cloud = capacity_cloud(make_cloud, [{"name": "vm"}], {"compute2": {}})
    entries = listing()
    result = run(EstimateCapacity(entries, "compute1"),
                 mistral_context(cloud.sim))
    assert (result["checked"], result["fit"]) == (True, [entries[0]["id"]])


def test_no_placement_in_the_catalog_fails_open(make_cloud):
    cloud = capacity_cloud(make_cloud, [{"name": "vm"}], {"compute2": {}})
    entries = listing()
    ctx = mistral_context(cloud.sim, without=("placement",))
    result = run(EstimateCapacity(entries, "compute1"), ctx)
    assert result == {
        "checked": False,
        "note": "capacity not checked: the service catalog has no "
                "placement endpoint",
        "fit": [entries[0]["id"]], "no_room": [], "hosts": [],
        "skipped": [], "targets": [None]}


def test_nova_failing_fails_open(make_cloud):
    cloud = capacity_cloud(make_cloud, [{"name": "vm"}], {"compute2": {}})
    entries = listing()
    cloud.model.faults.add("services.list", status=403)
    result = run(EstimateCapacity(entries, "compute1"))
    assert result["checked"] is False
    assert result["note"].startswith(
        "capacity not checked: listing the nova-compute services: HTTP 403")


@pytest.mark.parametrize("kwargs, message", [
    ({"servers": "vm", "source_host": "compute1"}, "servers must be"),
    ({"servers": [{"name": "x"}], "source_host": "compute1"},
     "servers must be"),
    ({"servers": [{"id": "a", "resources": {"VCPU": -1}}],
      "source_host": "compute1"}, "server a resources must map"),
    ({"servers": [], "source_host": ""}, "source_host"),
    ({"servers": [], "source_host": "compute1", "targets": [""]},
     "targets must be"),
    ({"servers": [], "source_host": "compute1", "targets": ["compute1"]},
     "a target is the source host"),
])
def test_estimate_bad_input(cloud, kwargs, message):
    mark = cloud.mark()
    error = error_of(run(EstimateCapacity(**kwargs)))
    assert error["reason"].startswith("bad input: ")
    assert message in error["reason"]
    assert "\n" not in error["reason"]
    assert len(cloud.model.calls) == mark


# -- check_failure_limit -----------------------------------------------------

def aggregates_cloud(make_cloud, hosts=4):
    cloud = make_cloud(topology({f"compute{i}": []
                                 for i in range(1, hosts + 1)}))
    cloud.nova = testing.nova(cloud.sim, version="2.53")
    return cloud


def aggregate(cloud, name, hosts, metadata=None):
    """An aggregate made through Nova's API, as an operator makes one."""
    made = cloud.nova.aggregates.create(name, None)
    for host in hosts:
        cloud.nova.aggregates.add_host(made, host)
    if metadata:
        cloud.nova.aggregates.set_metadata(made, metadata)
    return made


def test_within_and_over_the_limit(make_cloud):
    cloud = aggregates_cloud(make_cloud)
    aggregate(cloud, "rack1", ["compute1", "compute2", "compute3"],
              {"instance_ha:max_failures": "1"})
    aggregate(cloud, "rack2", ["compute4"],
              {"instance_ha:max_failures": "1"})
    cloud.model.kill_host("compute1")
    cloud.model.kill_host("compute4")
    mark = cloud.mark()
    assert run(CheckFailureLimit("compute1")) == {
        "refused": None,
        "aggregates": [{"name": "rack1", "max_failures": 1,
                        "failed": ["compute1"]}]}
    # A forced-down host counts, its heartbeats notwithstanding.
    cloud.force_down("compute3")
    result = run(CheckFailureLimit("compute1"))
    assert result["refused"] == (
        "recovery of compute1 refused: aggregate rack1 allows "
        "instance_ha:max_failures=1 failed hosts and has 2: compute1, "
        "compute3")
    assert result["aggregates"] == [{"name": "rack1", "max_failures": 1,
                                     "failed": ["compute1", "compute3"]}]
    assert mutations(cloud, mark) == []


def test_every_aggregate_of_the_host_is_checked(make_cloud):
    cloud = aggregates_cloud(make_cloud)
    aggregate(cloud, "big", ["compute1", "compute2", "compute3"],
              {"instance_ha:max_failures": "2"})
    aggregate(cloud, "pair", ["compute1", "compute2"],
              {"instance_ha:max_failures": "1"})
    aggregate(cloud, "plain", ["compute1", "compute2"], {"ssd": "true"})
    cloud.model.kill_host("compute1")
    cloud.model.kill_host("compute2")
    result = run(CheckFailureLimit("compute1"))
    assert result["refused"] == (
        "recovery of compute1 refused: aggregate pair allows "
        "instance_ha:max_failures=1 failed hosts and has 2: compute1, "
        "compute2")
    assert [a["name"] for a in result["aggregates"]] == ["big", "pair"]


@pytest.mark.parametrize("value", ["0", "two", "1.5", " "])
def test_a_malformed_limit_refuses(make_cloud, value):
    cloud = aggregates_cloud(make_cloud)
    aggregate(cloud, "rack1", ["compute1", "compute2"],
              {"instance_ha:max_failures": value})
    cloud.model.kill_host("compute1")
    result = run(CheckFailureLimit("compute1"))
    assert result["refused"] == (
        f"recovery of compute1 refused: aggregate rack1: "
        f"instance_ha:max_failures={value!r} is not an integer >= 1; not "
        "guessing a limit")


def test_no_aggregate_with_the_key_is_not_refused(make_cloud):
    cloud = aggregates_cloud(make_cloud)
    aggregate(cloud, "plain", ["compute1", "compute2"], {"ssd": "true"})
    aggregate(cloud, "elsewhere", ["compute3", "compute4"],
              {"instance_ha:max_failures": "1"})
    for host in ("compute1", "compute2", "compute3", "compute4"):
        cloud.model.kill_host(host)
    mark = cloud.mark()
    assert run(CheckFailureLimit("compute1")) == {"refused": None,
                                                  "aggregates": []}
    # The services are not even read.
    assert cloud.operations(mark) == ["nova.version", "aggregates.list"]


def test_limit_bad_input_and_nova_errors(make_cloud):
    cloud = aggregates_cloud(make_cloud)
    mark = cloud.mark()
    error = error_of(run(CheckFailureLimit("")))
    assert error["reason"].startswith("bad input: host must be")
    assert len(cloud.model.calls) == mark
    cloud.model.faults.add("aggregates.list", status=503, times=1)
    assert run(CheckFailureLimit("compute1"))["refused"] is None
    cloud.model.faults.add("aggregates.list", status=403)
    error = error_of(run(CheckFailureLimit("compute1")))
    assert error["host"] == "compute1"
    assert error["reason"].startswith(
        "reading the failure limits of compute1: HTTP 403")


# -- the simulated cloud's aggregates API -------------------------------------

def test_aggregates_are_made_as_nova_makes_them(make_cloud):
    cloud = aggregates_cloud(make_cloud)
    response = testing.request(cloud.sim, "POST", "/os-aggregates",
                               version="2.41",
                               json={"aggregate": {"name": "rack1"}})
    assert response.status_code == 200
    made = response.json()["aggregate"]
    assert set(made) == {"id", "uuid", "name", "availability_zone",
                         "created_at", "updated_at", "deleted_at",
                         "deleted"}
    again = testing.request(cloud.sim, "POST", "/os-aggregates",
                            json={"aggregate": {"name": "rack1"}})
    assert (again.status_code, again.json()) == (409, {
        "conflictingRequest": {"code": 409,
                               "message": "Aggregate rack1 already "
                                          "exists."}})
    number = testing.request(
        cloud.sim, "POST", f"/os-aggregates/{made['id']}/action",
        json={"set_metadata": {"metadata": {"instance_ha:max_failures":
                                            2}}})
    assert number.status_code == 400
    assert number.json()["badRequest"]["message"] == (
        "Invalid input for field/attribute instance_ha:max_failures. "
        "Value: 2. 2 is not of type 'string', 'null'")
