"""Roles on real Nova 34's default policy, with real Keystone tokens.

A real Nova (tests/realnova/nova_server.py ``--keystone``:
keystonemiddleware's auth_token and Nova's own Keystone context in front
of its compute API and placement) is the tier's second region,
RegionTwo, of the tier's Keystone; the tier's authenticated Mistral runs
the recoveries.  The clients name the region (clouds.yaml
``region_name``); Mistral hands it to the actions, which take Nova's
endpoints of that region from the catalog.

The admin user recovers a host there.  ``observer`` (member and reader
of the admin project, no admin role) is refused by Nova's own policy:
the recovery ends with one line naming the policy and Nova is unchanged,
and each policy doc/keystone.rst lists is checked against Nova's answer
to that user."""

import importlib.util
import json
import os

import pytest

from instance_ha import mistral_client
from instance_ha import server_process

REGION = "RegionTwo"
HOSTS = ("r2-compute1", "r2-compute2", "r2-compute3")
HA = {"HA_Enabled": "True"}
MUTATING = ("POST", "PUT", "DELETE")


def _harness():
    """tests/realnova/realnova.py (the real-Nova tier's harness)."""
    path = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "realnova", "realnova.py")
    spec = importlib.util.spec_from_file_location("realnova_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


realnova = _harness()


class RegionTwo:
    """The real Nova of RegionTwo and clients that name that region."""

    def __init__(self, nova, keystone, mistral, clouds_yaml):
        self.nova = nova
        self.keystone = keystone
        self.mistral = mistral
        self.clouds_yaml = clouds_yaml

    def client(self, user):
        return mistral_client.connect(cloud=f"{REGION}-{user}",
                                      clouds_yaml=str(self.clouds_yaml))

    def token(self, user):
        return self.keystone.token(user)

    def project(self, name):
        return self.keystone.projects[name]

    def server(self, host, project="demo", **fields):
        return self.nova.create_server(host, metadata=HA,
                                       project=self.project(project),
                                       **fields)["id"]

    def fail_host(self, host):
        self.nova.crash(host)
        self.nova.wait_service_state(host, "down")
        self.mistral.pacemaker.show(node=host)

    def evacuate(self, user, host, timeout=240):
        return self.mistral.run(
            self.client(user), "instance_ha.host_evacuate",
            {"search_opts": {"host": host}, "poll_interval": 0.5},
            timeout=timeout)

    def accepted_mutations(self, since):
        return [r for r in self.nova.requests(since)
                if r["method"] in MUTATING and r["status"] < 300]


def authenticated(nova, since):
    """The requests after ``since`` but those for the version documents
    (they need no token)."""
    return [r for r in nova.requests(since)
            if r["path"].rstrip("/") not in ("", "/v2", "/v2.1")]


@pytest.fixture(scope="module")
def region_two(keystone, auth_mistral, tmp_path_factory):
    """Real Nova 34 (r2-compute1..3) taking the tier's Keystone tokens,
    in the catalog as RegionTwo's compute and placement, with the tier's
    Mistral as RegionTwo's workflowv2.  Stopped by its PID."""
    realnova.require_venv(pytest.skip, pytest.fail)
    workdir = tmp_path_factory.mktemp("region-two")
    admin = []

    def admin_token():
        # One admin token for the module (the tier's tokens last an hour).
        if not admin:
            admin.append(keystone.token("admin"))
        return admin[0]

    nova = realnova.RealNova(workdir, computes=HOSTS,
                             keystone=keystone.authtoken_options("nova"),
                             admin_token=admin_token)
    try:
        nova.start()
        keystone.add_region(REGION)
        keystone.add_service("compute", "nova", nova.compute_url,
                             region=REGION)
        keystone.add_service("placement", "placement", nova.placement_url,
                             region=REGION)
        keystone.add_service("workflowv2", "mistral",
                             auth_mistral.server.url, region=REGION)
        clouds = server_process.write_clouds_yaml(
            str(workdir / "clouds.yaml"), {"clouds": {
                f"{REGION}-{user}": keystone.cloud_entry(user, region=REGION)
                for user in ("admin", "observer")}})
        yield RegionTwo(nova, keystone, auth_mistral, clouds)
    finally:
        nova.stop(timeout=20)
        nova.kill()


def test_the_admin_recovers_a_host_of_region_two(region_two):
    """Another project's VMs, moved by the admin user's recovery: every
    request Nova saw came with the admin's Keystone token, and Nova shows
    the VMs running elsewhere."""
    nova = region_two.nova
    vms = [region_two.server("r2-compute1") for _ in range(2)]
    region_two.fail_host("r2-compute1")
    since = realnova.last_seq(nova)
    execution, output = region_two.evacuate("admin", "r2-compute1")
    assert execution.state == "SUCCESS", execution.state_info
    assert sorted(r["id"] for r in output["servers"]
                  if r["outcome"] == "moved") == sorted(vms), output
    seen = authenticated(nova, since)
    assert seen and {(r["user"], r["project"]) for r in seen} == \
        {("admin", "admin")}, seen
    assert any(r["path"].endswith("/action") and r["status"] == 200
               for r in seen), seen
    for vm in vms:
        server = nova.wait_server(vm, status="ACTIVE", timeout=60)
        assert server["OS-EXT-SRV-ATTR:host"] in HOSTS[1:], server
        assert server["tenant_id"] == region_two.project("demo")


def test_a_user_without_the_admin_role_is_refused_by_novas_policy(
        region_two):
    """observer's recovery of a failed host: ERROR with one line naming
    the policy Nova refused, and no request of it changed Nova."""
    nova = region_two.nova
    vm = region_two.server("r2-compute2")
    region_two.fail_host("r2-compute2")
    since = realnova.last_seq(nova)
    execution, output = region_two.evacuate("observer", "r2-compute2")
    assert execution.state == "ERROR"
    assert "\n" not in execution.state_info
    assert "HTTP 403" in execution.state_info, execution.state_info
    assert "os_compute_api:os-aggregates:index" in execution.state_info
    seen = authenticated(nova, since)
    assert seen and {r["user"] for r in seen} == {"observer"}, seen
    assert [r for r in seen if r["method"] in MUTATING] == [], seen
    server = nova.server(vm)
    assert (server["OS-EXT-SRV-ATTR:host"], server["status"],
            server["locked"]) == ("r2-compute2", "ACTIVE", False), server
    assert not nova.service("r2-compute2")["forced_down"]
    # Fenced and dead, the host is then the admin's to recover (with the
    # VMs the first test moved there).
    execution, output = region_two.evacuate("admin", "r2-compute2")
    assert execution.state == "SUCCESS", execution.state_info
    outcomes = {r["id"]: r["outcome"] for r in output["servers"]}
    assert outcomes[vm] == "moved" and set(outcomes.values()) == {"moved"}


# What doc/keystone.rst says a recovery needs, asked of real Nova as
# observer: (policy, method, path, body, microversion, the VM it is
# about).  "own": a VM of observer's project; "other": of project demo;
# "own-locked": of observer's project, locked by the admin.
ADMIN_ONLY = [
    ("os_compute_api:os-aggregates:index", "GET", "/os-aggregates", None,
     None, None),
    ("os_compute_api:os-services:list", "GET", "/os-services", None, None,
     None),
    ("os_compute_api:os-services:update", "PUT", "/os-services/{service}",
     {"forced_down": True}, "2.53", None),
    ("os_compute_api:servers:detail:get_all_tenants", "GET",
     "/servers/detail?all_tenants=1&host=r2-compute3", None, None, None),
    ("os_compute_api:os-evacuate", "POST", "/servers/{own}/action",
     {"evacuate": {}}, "2.95", "own"),
    ("os_compute_api:os-admin-actions:reset_state", "POST",
     "/servers/{own}/action", {"os-resetState": {"state": "active"}}, None,
     "own"),
    ("os_compute_api:os-lock-server:unlock:unlock_override", "POST",
     "/servers/{own-locked}/action", {"unlock": None}, None, "own-locked"),
    ("os_compute_api:os-migrations:index", "GET",
     "/os-migrations?source_compute=r2-compute3", None, "2.59", None),
    ("os_compute_api:os-hypervisors:list-detail", "GET",
     "/os-hypervisors/detail", None, "2.53", None),
]
# Allowed to a member for its own project's VMs only: another project's
# VM is not found.
OWN_PROJECT_ONLY = [
    ("os_compute_api:os-lock-server:lock", "POST", "/servers/{other}/action",
     {"lock": None}),
    ("os_compute_api:servers:stop", "POST", "/servers/{other}/action",
     {"os-stop": None}),
    ("os_compute_api:servers:start", "POST", "/servers/{other}/action",
     {"os-start": None}),
    ("os_compute_api:os-instance-actions:list", "GET",
     "/servers/{other}/os-instance-actions", None),
]


@pytest.fixture(scope="module")
def probe_targets(region_two):
    """{own}, {other}, {own-locked} VMs on r2-compute3 and its service id."""
    nova = region_two.nova
    return {
        "own": region_two.server("r2-compute3", project="admin"),
        "other": region_two.server("r2-compute3"),
        "own-locked": region_two.server(
            "r2-compute3", project="admin",
            lock={"reason": "maintenance", "by": "admin"}),
        "service": nova.service("r2-compute3")["id"]}


def _path(template, targets):
    return template.format(**targets)


@pytest.mark.parametrize("policy,method,path,body,microversion,vm",
                         ADMIN_ONLY, ids=[p[0] for p in ADMIN_ONLY])
def test_nova_refuses_an_admin_only_policy_to_a_member(
        region_two, probe_targets, policy, method, path, body, microversion,
        vm):
    nova = region_two.nova
    since = realnova.last_seq(nova)
    status, answer = nova.nova(method, _path(path, probe_targets), body,
                               token=region_two.token("observer"),
                               microversion=microversion)
    assert status == 403, answer
    assert answer["forbidden"]["message"] == \
        f"Policy doesn't allow {policy} to be performed.", answer
    assert region_two.accepted_mutations(since) == []
    if vm is not None:
        server = nova.server(probe_targets[vm])
        assert (server["OS-EXT-SRV-ATTR:host"], server["status"]) == \
            ("r2-compute3", "ACTIVE"), server


@pytest.mark.parametrize("policy,method,path,body", OWN_PROJECT_ONLY,
                         ids=[p[0] for p in OWN_PROJECT_ONLY])
def test_a_member_cannot_reach_another_projects_vm(
        region_two, probe_targets, policy, method, path, body):
    nova = region_two.nova
    since = realnova.last_seq(nova)
    status, answer = nova.nova(method, _path(path, probe_targets), body,
                               token=region_two.token("observer"))
    assert status == 404, answer
    assert region_two.accepted_mutations(since) == []
    server = nova.server(probe_targets["other"])
    assert (server["status"], server["locked"]) == ("ACTIVE", False)


def test_a_member_sees_no_host_of_its_own_vm(region_two, probe_targets):
    """os-extended-server-attributes: a member reads its own VM without
    the host (the pack's host check then matches nothing); the admin
    reads it with."""
    path = f"/servers/{probe_targets['own']}"
    status, member_view = region_two.nova.nova(
        "GET", path, token=region_two.token("observer"))
    assert status == 200
    assert "OS-EXT-SRV-ATTR:host" not in member_view["server"]
    status, admin_view = region_two.nova.nova(
        "GET", path, token=region_two.token("admin"))
    assert admin_view["server"]["OS-EXT-SRV-ATTR:host"] == "r2-compute3"


def test_placement_refuses_a_member_and_the_estimate_holds_nothing_back(
        region_two):
    """placement's resource_providers:list is admin-only; the capacity
    estimate, run as observer through Mistral, fails open with a note
    naming Nova's refusal (its first read)."""
    nova = region_two.nova
    status, answer = nova.placement("GET", "/resource_providers",
                                    token=region_two.token("observer"))
    assert status == 403
    assert "placement:resource_providers:list" in \
        answer["errors"][0]["detail"]
    status, _ = nova.placement("GET", "/resource_providers",
                               token=region_two.token("admin"))
    assert status == 200
    client = region_two.client("observer")
    execution = client.action_executions.create(
        "instance_ha.estimate_capacity",
        {"servers": [{"id": "vm-1", "name": "vm-1", "priority": 0,
                      "resources": {"VCPU": 1, "MEMORY_MB": 512}}],
         "source_host": "r2-compute1"},
        run_sync=True, save_result=True, timeout=60)
    result = json.loads(execution.output)["result"]
    assert result["checked"] is False, result
    assert result["no_room"] == []
    assert "HTTP 403" in result["note"], result
    assert "os_compute_api:os-services:list" in result["note"], result
