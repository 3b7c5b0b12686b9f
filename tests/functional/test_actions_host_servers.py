"""host_servers: every tenant's servers of a host, classified by the
state table and the HA policy, against the simulated cloud."""

import time

import pytest
from actions_support import error_of
from actions_support import run
from actions_support import topology

from instance_ha import state_table
from instance_ha.actions.host_servers import HostServers
from instance_ha.simcloud import testing

pytest_plugins = ("actions_support",)

ENTRY_KEYS = {"id", "name", "vm_state", "task_state", "power_state",
              "locked", "locked_reason", "tagged", "plan", "steps",
              "expected_vm_state", "evacuated_vm_state", "reason", "case",
              "lock_reason", "priority", "group", "group_rank",
              "resources"}


def mixed_host():
    servers = [
        {"name": "a-active"},
        {"name": "b-stopped", "vm_state": "stopped"},
        {"name": "c-resized-on", "vm_state": "resized"},
        {"name": "d-resized-off", "vm_state": "resized", "power_state": 4},
        {"name": "e-error", "vm_state": "error"},
        {"name": "f-paused", "vm_state": "paused"},
        {"name": "g-suspended", "vm_state": "suspended"},
        {"name": "h-rescued", "vm_state": "rescued"},
        {"name": "i-shelved", "vm_state": "shelved"},
        {"name": "j-building", "vm_state": "building"},
        {"name": "k-tagged", "metadata": {"HA_Enabled": "yes"},
         "project": "admin"},
        {"name": "l-moving", "task_state": "migrating"},
        {"name": "m-error-ours", "vm_state": "error", "power_state": 4,
         "locked": True, "locked_reason": "instance-ha recovery"},
    ]
    return topology({"compute1": servers,
                     "compute2": [{"name": "elsewhere"}]})


def by_name(result):
    return {s["name"]: s for s in result["servers"]}


def test_classifies_every_state(make_cloud):
    cloud = make_cloud(mixed_host())
    result = run(HostServers({"host": "compute1"}))
    assert result["host"] == "compute1"
    assert result["count"] == 13 == len(result["servers"])
    servers = by_name(result)
    assert all(set(s) == ENTRY_KEYS for s in servers.values())
    expected = {
        "a-active": ("evacuate", ["evacuate"], "active", "active"),
        "b-stopped": ("evacuate", ["evacuate"], "stopped", "stopped"),
        "c-resized-on": ("evacuate", ["reset_error", "evacuate"], "active",
                         "active"),
        "d-resized-off": ("evacuate", ["reset_error", "evacuate", "stop"],
                          "stopped", "active"),
        "e-error": ("skip", [], None, None),
        "f-paused": ("evacuate", ["reset_error", "evacuate"], "active",
                     "active"),
        "g-suspended": ("evacuate", ["reset_error", "evacuate"], "active",
                        "active"),
        "h-rescued": ("evacuate", ["reset_error", "evacuate"], "active",
                      "active"),
        "i-shelved": ("evacuate", ["reset_error", "evacuate", "stop"],
                      "stopped", "active"),
        "j-building": ("skip", [], None, None),
        "k-tagged": ("evacuate", ["evacuate"], "active", "active"),
        "l-moving": ("evacuate", ["evacuate"], "active", "active"),
        "m-error-ours": ("evacuate", ["evacuate", "stop"], "stopped",
                         "active"),
    }
    got = {name: (s["plan"], s["steps"], s["expected_vm_state"],
                  s["evacuated_vm_state"]) for name, s in servers.items()}
    assert got == expected
    assert "task_state migrating" in servers["l-moving"]["reason"]
    assert servers["e-error"]["reason"] == \
        "in error: skipped (policy error_servers=skip)"
    for name, server in servers.items():
        model = cloud.server(name)
        assert (server["id"], server["vm_state"], server["power_state"],
                server["locked"]) == (model.id, model.vm_state,
                                      model.power_state, model.locked)


def test_order_is_tagged_first_then_name_then_id(make_cloud):
    servers = [{"name": "zz", "metadata": {"HA_Enabled": "True"}},
               {"name": "aa"}, {"name": "mm", "metadata": {
                   "HA_Enabled": "True"}}, {"name": "aa"}]
    cloud = make_cloud(topology({"compute1": servers}))
    result = run(HostServers({"host": "compute1"}))
    names = [s["name"] for s in result["servers"]]
    assert names == ["mm", "zz", "aa", "aa"]
    twins = [s["id"] for s in result["servers"][2:]]
    assert twins == sorted(twins)
    assert [s["tagged"] for s in result["servers"]] == \
        [True, True, False, False]
    assert run(HostServers({"host": "compute1"})) == result
    assert cloud.model.calls.count(operation="servers.detail") == 2


def test_error_servers_evacuate_policy(make_cloud):
    make_cloud(mixed_host())
    servers = by_name(run(HostServers({"host": "compute1"},
                                      {"error_servers": "evacuate"})))
    assert servers["e-error"]["steps"] == ["evacuate", "reset_error"]
    assert servers["e-error"]["expected_vm_state"] == "error"
    assert servers["e-error"]["evacuated_vm_state"] == "active"


def tagging_cloud(make_cloud):
    config = topology({"compute1": [
        {"name": "by-meta", "metadata": {"HA": "1"}},
        {"name": "by-flavor", "flavor": "ha.small"},
        {"name": "by-image", "image": "ha-image"},
        {"name": "plain"},
        {"name": "meta-false", "metadata": {"HA": "false"}},
    ]})
    config["flavors"].append({"name": "ha.small", "id": "2",
                              "extra_specs": {"ha:evacuate": "true"}})
    config["images"].append({"name": "ha-image",
                             "properties": {"evacuable": "True"}})
    config["images"][0]["properties"] = {"evacuable": "false"}
    return make_cloud(config)


def test_tagged_only_policy(make_cloud):
    cloud = tagging_cloud(make_cloud)
    policy = {"evacuate": "tagged", "metadata_key": "HA",
              "flavor_extra_spec": "ha:evacuate",
              "image_property": "evacuable"}
    mark = cloud.mark()
    result = run(HostServers({"host": "compute1"}, policy))
    servers = by_name(result)
    assert [s["name"] for s in result["servers"]] == \
        ["by-flavor", "by-image", "by-meta", "meta-false", "plain"]
    for name in ("by-meta", "by-flavor", "by-image"):
        assert servers[name]["plan"] == "evacuate", name
        assert servers[name]["tagged"] is True
    assert "tagged by flavor extra spec ha:evacuate" in \
        servers["by-flavor"]["reason"]
    assert "tagged by image property evacuable" in \
        servers["by-image"]["reason"]
    for name in ("plain", "meta-false"):
        assert servers[name]["plan"] == "skip"
        assert servers[name]["steps"] == []
        assert servers[name]["reason"].startswith("not tagged for HA")
    # Nova: discovery, services, one list; Glance: each image once.
    assert cloud.operations(mark) == ["nova.version", "services.list",
                                      "servers.detail"]
    glance = [c for c in cloud.model.calls.calls()[mark:]
              if c.operation.startswith("glance")]
    assert len(glance) == 2


def test_evacuate_all_still_orders_tagged_first(make_cloud):
    tagging_cloud(make_cloud)
    result = run(HostServers({"host": "compute1"},
                             {"metadata_key": "HA",
                              "flavor_extra_spec": "ha:evacuate"}))
    assert [s["plan"] for s in result["servers"]] == ["evacuate"] * 5
    assert [s["name"] for s in result["servers"]][:2] == \
        ["by-flavor", "by-meta"]


def test_every_page_is_read(make_cloud):
    cloud = make_cloud(topology(
        {"compute1": [{"name": f"vm{i}"} for i in range(5)],
         "compute2": [{"name": "other"}]}, max_limit=2))
    result = run(HostServers({"host": "compute1"}))
    assert result["count"] == 5
    assert cloud.model.calls.count(operation="servers.detail") == 3


def test_servers_of_other_hosts_are_dropped(cloud, monkeypatch):
    """Nova ignores host= for a non-admin; whatever the list holds, only
    the servers whose OS-EXT-SRV-ATTR:host is the host are kept."""
    every = list(cloud.model.servers.values())
    monkeypatch.setattr(cloud.model, "servers_on", lambda host: every)
    result = run(HostServers({"host": "compute1"}))
    assert sorted(s["name"] for s in result["servers"]) == \
        ["compute1-vm1", "compute1-vm2"]


def test_search_opts_pass_through(make_cloud):
    make_cloud(mixed_host())
    result = run(HostServers({"host": "compute1", "vm_state": "stopped"}))
    assert [s["name"] for s in result["servers"]] == ["b-stopped"]


def test_unknown_host(cloud):
    error = error_of(run(HostServers({"host": "nohost"})))
    assert error == {"server": None, "host": "nohost", "code": 404,
                     "reason": "no nova-compute service on host nohost"}
    assert cloud.model.calls.count(operation="servers.detail") == 0


@pytest.mark.parametrize("search_opts, policy, message", [
    ({}, None, "search_opts.host"),
    ("compute1", None, "search_opts must be a dict"),
    ({"host": ""}, None, "search_opts.host"),
    ({"host": "compute1"}, {"evacuate": "some"}, "policy.evacuate"),
    ({"host": "compute1"}, {"error_servers": "x"}, "policy.error_servers"),
    ({"host": "compute1"}, {"colour": "red"}, "unknown policy keys"),
    ({"host": "compute1"}, ["tagged"], "policy must be a dict"),
])
def test_bad_input(cloud, search_opts, policy, message):
    mark = cloud.mark()
    error = error_of(run(HostServers(search_opts, policy)))
    assert error["reason"].startswith("bad input")
    assert message in error["reason"]
    assert len(cloud.model.calls) == mark


def test_a_member_is_refused_not_misled(make_cloud):
    make_cloud(cloud="simcloud-user")
    error = error_of(run(HostServers({"host": "compute1"})))
    assert error["code"] == 403
    assert "os_compute_api:os-services:list" in error["reason"]


def test_retries_a_503_on_the_list(cloud):
    cloud.model.faults.add("servers.detail", status=503, times=1)
    assert run(HostServers({"host": "compute1"}))["count"] == 2
    assert [c.status for c in cloud.nova_calls(
        operation="servers.detail")] == [503, 200]


def test_retries_a_500_on_the_list_because_a_read_changes_nothing(cloud):
    cloud.model.faults.add("servers.detail", status=500, times=2)
    assert run(HostServers({"host": "compute1"}))["count"] == 2
    assert [c.status for c in cloud.nova_calls(
        operation="servers.detail")] == [500, 500, 200]


def test_state_table_rows_match_the_classifier():
    for row in state_table.TABLE:
        if row.event != state_table.HOST_DOWN:
            continue
        assert (row.plan == "evacuate") == (row.after is not None)


def no_valid_host(cloud, names):
    """Evacuate ``names`` off dead compute1 with every other host
    disabled: Nova's NoValidHost leaves each in error on compute1, its
    evacuation migration in error."""
    from instance_ha.actions.service_force_down import ServiceForceDown

    cloud.model.kill_host("compute1")
    assert not hasattr(run(ServiceForceDown("compute1", "test")), "error")
    for host in cloud.model.hosts.values():
        if host.name != "compute1":
            host.service.disabled = True
    nova = testing.nova(cloud.sim, version="2.94")
    for name in names:
        nova.servers.evacuate(cloud.server(name).id)
    testing.wait_for(lambda: all(cloud.server(n).vm_state == "error"
                                 for n in names), timeout=10)


def test_an_error_vm_whose_evacuation_failed_is_evacuated_again(make_cloud):
    """Locked by someone else, so no lock of ours marks them: Nova's
    failed evacuation migration tells them from the operator's error
    VMs, and the power state from what they were."""
    bob = {"locked": True, "locked_reason": "bob"}
    cloud = make_cloud(topology({"compute1": [
        {"name": "was-active", **bob},
        {"name": "was-off", "vm_state": "stopped", **bob},
        {"name": "was-error", "vm_state": "error", "power_state": 1}],
        "compute2": []}))
    no_valid_host(cloud, ["was-active", "was-off"])
    mark = cloud.mark()
    servers = by_name(run(HostServers({"host": "compute1"})))
    assert {n: (s["case"], s["steps"], s["expected_vm_state"])
            for n, s in servers.items()} == {
        "was-active": ("after_failed_evacuation", ["evacuate"], "active"),
        "was-off": ("after_failed_evacuation_stopped", ["evacuate", "stop"],
                    "stopped"),
        "was-error": ("error_skip", [], None)}
    # One read of the host's evacuations, for all its error VMs.
    assert cloud.operations(mark).count("migrations.list") == 1


def test_a_failed_evacuation_from_before_the_host_failed_again_is_old(
        make_cloud):
    """The host came back and its service was updated since (forced up,
    enabled): an error VM with an older failed evacuation is the
    operator's, skipped by policy."""
    cloud = make_cloud(topology({"compute1": [
        {"name": "was-active", "locked": True, "locked_reason": "bob"}],
        "compute2": []}))
    no_valid_host(cloud, ["was-active"])
    time.sleep(0.01)
    with cloud.model.lock:
        cloud.model.touch_service(cloud.model.hosts["compute1"])
    (server,) = run(HostServers({"host": "compute1"}))["servers"]
    assert server["case"] == "error_skip"


def test_ha_lock_reason_names_the_case(make_cloud):
    make_cloud(mixed_host())
    servers = by_name(run(HostServers({"host": "compute1"})))
    assert servers["d-resized-off"]["lock_reason"] == \
        "instance-ha evacuation from compute1; case resized_was_stopped"
    assert servers["e-error"]["lock_reason"] is None


def test_priority_from_metadata_then_flavor_then_image(make_cloud):
    """instance_ha:priority: the server's metadata first, then its
    flavor's extra spec, then its image's property; higher first, 0
    without one or for a value that is not an integer."""
    key = "instance_ha:priority"
    config = topology({"compute1": [
        {"name": "meta", "metadata": {key: "3"}, "flavor": "ha.small"},
        {"name": "flavor", "flavor": "ha.small"},
        {"name": "image", "image": "ha-image"},
        {"name": "plain"},
        {"name": "bad", "metadata": {key: "soon"}},
    ]})
    config["flavors"].append({"name": "ha.small", "id": "2",
                              "extra_specs": {key: "20"}})
    config["images"].append({"name": "ha-image",
                             "properties": {key: "10"}})
    make_cloud(config)
    result = run(HostServers({"host": "compute1"}))
    assert [(s["name"], s["priority"]) for s in result["servers"]] == [
        ("flavor", 20), ("image", 10), ("meta", 3), ("bad", 0),
        ("plain", 0)]
    bad = by_name(result)["bad"]
    assert "metadata instance_ha:priority='soon' is not an integer: " \
        "priority 0" in bad["reason"]


def test_restart_groups_order_the_listing(make_cloud):
    """instance_ha:restart_group, looked up as the priority is: the
    listing runs group by group in the order restart_groups names them,
    by priority within a group; VMs of no listed group come last."""
    group, priority = "instance_ha:restart_group", "instance_ha:priority"
    config = topology({"compute1": [
        {"name": "web", "metadata": {group: "web", priority: "90"}},
        {"name": "db", "flavor": "db.small"},
        {"name": "db-top", "metadata": {group: "db", priority: "5"}},
        {"name": "loose", "metadata": {priority: "99"}},
        {"name": "other", "metadata": {group: "batch"}},
    ]})
    config["flavors"].append({"name": "db.small", "id": "2",
                              "extra_specs": {group: "db"}})
    make_cloud(config)
    result = run(HostServers({"host": "compute1"},
                             restart_groups=["db", "web"]))
    assert [(s["name"], s["group"], s["group_rank"])
            for s in result["servers"]] == [
        ("db-top", "db", 0), ("db", "db", 0), ("web", "web", 1),
        ("loose", None, 2), ("other", "batch", 2)]


def test_restart_groups_must_be_names(make_cloud):
    make_cloud(mixed_host())
    result = run(HostServers({"host": "compute1"}, restart_groups="db"))
    assert error_of(result)["reason"] == \
        "bad input: restart_groups must be a list of group names"
