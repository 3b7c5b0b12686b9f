"""Building a simulated cloud from a config (a dict, or a YAML/JSON file).

::

    settings: {evacuation_time: 1.0, power_time: 0.2, service_down_time: 0,
               race_outcome: error, max_limit: 1000}
    latency: {"*": 0.0, evacuate: 0.1}          # seconds per operation
    identity: {admin_password: ..., member_password: ...,
               app_credential_secret: ...}
    flavors: [{name: m1.small, id: "1", vcpus: 1, ram: 2048, disk: 20,
               extra_specs: {"hw:cpu_policy": dedicated}}]
    images: [{name: cirros, properties: {evacuable: "true"}}]
    hosts:
      - name: compute1
        vcpus: 64                # also memory_mb, disk_gb, zone,
        servers:                 # disabled, disabled_reason, forced_down,
          - name: vm1            # alive, {cpu,ram,disk}_allocation_ratio,
                                 # reserved_{vcpus,memory_mb,disk_gb}
            vm_state: active     # task_state, flavor, image, metadata,
            metadata: {HA_Enabled: "True"}   # project (admin | demo),
                                             # locked, locked_reason, id
    aggregates: [{name: ha, hosts: [compute1], metadata: {...}}]
    faults: [{operation: evacuate, server: vm1, status: 500, times: 1}]

Unknown keys are errors, so that a typo does not silently do nothing."""

import yaml

from instance_ha.simcloud import model
from instance_ha.simcloud.keystone import Identity

_SECTIONS = {"settings", "latency", "identity", "flavors", "images", "hosts",
             "aggregates", "faults"}
_HOST_KEYS = {"name", "vcpus", "memory_mb", "disk_gb", "zone", "disabled",
              "disabled_reason", "forced_down", "alive", "servers",
              "cpu_allocation_ratio", "ram_allocation_ratio",
              "disk_allocation_ratio", "reserved_vcpus",
              "reserved_memory_mb", "reserved_disk_gb"}
_SERVER_KEYS = {"name", "vm_state", "task_state", "flavor", "image",
                "metadata", "project", "locked", "locked_reason", "id",
                "power_state"}


def load(path):
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream) or {}


def _check_keys(what, given, allowed):
    unknown = set(given) - set(allowed)
    if unknown:
        raise ValueError(f"unknown {what} keys: {sorted(unknown)}")


def build(config):
    """A model.Cloud holding what config describes."""
    config = config or {}
    _check_keys("config", config, _SECTIONS)
    settings = model.Settings(**config.get("settings", {}))
    settings.latency = dict(config.get("latency", {}))
    if settings.race_outcome not in ("error", "active"):
        raise ValueError("race_outcome is error or active")
    cloud = model.Cloud(settings)
    cloud.identity = Identity(**config.get("identity", {}))
    for flavor in config.get("flavors", []):
        flavor = dict(flavor)
        cloud.add_flavor(flavor.pop("name"), flavor.pop("id", None),
                         **flavor)
    for image in config.get("images", []):
        image = dict(image)
        cloud.add_image(image.pop("name"), image.pop("id", None), **image)
    for host in config.get("hosts", []):
        _check_keys("host", host, _HOST_KEYS)
        host = dict(host)
        name = host.pop("name")
        servers = host.pop("servers", [])
        alive = host.pop("alive", True)
        cloud.add_host(name, **host)
        for server in servers:
            _add_server(cloud, name, server)
        if not alive:
            cloud.kill_host(name)
    for aggregate in config.get("aggregates", []):
        aggregate = dict(aggregate)
        cloud.add_aggregate(aggregate.pop("name"), **aggregate)
    for fault in config.get("faults", []):
        fault = dict(fault)
        cloud.faults.add(fault.pop("operation"), **fault)
    return cloud


def _add_server(cloud, host, server):
    _check_keys("server", server, _SERVER_KEYS)
    server = dict(server)
    project = server.pop("project", None)
    if project is not None:
        server["project_id"] = cloud.identity.find_project(project).id
    if "id" in server:
        server["server_id"] = server.pop("id")
    cloud.add_server(server.pop("name"), host, **server)


def generate(hosts, vms_per_host, evacuation_time=1.0):
    """The standard topology: hosts compute1..N, each with M active
    servers named <host>-vm<i>, all with metadata HA_Enabled=True, booted
    from an image tagged evacuable."""
    return {
        "settings": {"evacuation_time": evacuation_time},
        "flavors": [{"name": "m1.small", "id": "1", "vcpus": 1,
                     "ram": 2048, "disk": 20}],
        "images": [{"name": "cirros", "properties": {"evacuable": "true"}}],
        "hosts": [{"name": f"compute{h}",
                   "servers": [{"name": f"compute{h}-vm{i}",
                                "metadata": {"HA_Enabled": "True"}}
                               for i in range(1, vms_per_host + 1)]}
                  for h in range(1, hosts + 1)],
    }
