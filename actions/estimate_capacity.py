"""Estimate, before anything is evacuated, which of a failed host's VMs
the candidate hosts have room for, from placement's inventories and
usages (instance_ha.capacity.greedy_fit; doc/capacity.rst).

Fails open: when the estimate cannot be made (no placement endpoint,
placement or Nova not answering, refusing or answering nonsense) the
result says ``checked: false`` and why, and every server is in ``fit``:
a recovery is never held back because its estimate could not be made.
Reads only; changes nothing in Nova or placement."""

from urllib import parse

from keystoneauth1 import exceptions as ks_exceptions

from instance_ha import capacity
from instance_ha import nova_client
from instance_ha.actions import base

PLACEMENT_VERSION = "placement 1.14"
HYPERVISOR_SERVICE_MIN = nova_client.V("2.53")


class Unavailable(Exception):
    """The estimate cannot be made; the message says why."""


class EstimateCapacity(base.NovaAction):
    """``servers``: [{id, name, priority, resources}] in evacuation order
    (host_servers entries do); ``source_host``: the failed host, never a
    candidate; ``targets``: as recover_servers' (host names and/or null;
    null: every compute that is enabled, up and not forced down; a name:
    that host while it is up and not forced down, even disabled, as a
    reserved host is until it is enabled for the recovery);
    ``check_capacity``: false returns at once, every server in ``fit``
    (host_evacuate's input of that name).

    Returns {"checked", "note", "fit": [ids], "no_room": [{id, name,
    priority, reason}], "hosts": [{host, free, left}] (free: what
    placement showed; left: after the estimate's placements), "skipped":
    [{host, reason}] (named or listed hosts that are no candidate),
    "targets" (the input, for host_evacuate's passes)}."""

    def __init__(self, servers, source_host, targets=None,
                 check_capacity=True):
        self.servers = servers
        self.source_host = source_host
        self.targets = [None] if targets is None else targets
        self.check_capacity = check_capacity

    def _subject(self):
        return base.host_subject(self.source_host)

    def check(self):
        base.require_text("source_host", self.source_host)
        base.require_server_list(self.servers,
                                 "{id, name, priority, resources}")
        for server in self.servers:
            resources = server.get("resources")
            if resources is None:
                continue
            if not isinstance(resources, dict) or not all(
                    isinstance(k, str) and isinstance(v, int)
                    and not isinstance(v, bool) and v >= 0
                    for k, v in resources.items()):
                raise nova_client.NovaError(
                    f"bad input: server {server['id']} resources must map "
                    "resource classes to integers >= 0, not "
                    f"{resources!r}")
        base.require_targets(self.targets, self.source_host)
        if not isinstance(self.check_capacity, bool):
            raise nova_client.NovaError(
                "bad input: check_capacity must be true or false")

    def act(self, nova):
        if not self.check_capacity:
            return self._unchecked("check_capacity is false", quiet=True)
        if not self.targets:
            return self._unchecked("no target host (no reserved host could "
                                   "be claimed)", quiet=True)
        try:
            hosts, skipped = self._candidates(nova)
        except (Unavailable, nova_client.NovaError) as exc:
            return self._unchecked(str(exc))
        fit, no_room, free, left = capacity.greedy_fit(self.servers, hosts)
        return {"checked": True, "note": None, "fit": fit,
                "no_room": no_room,
                "hosts": [{"host": name, "free": free[name],
                           "left": left[name]} for name in hosts],
                "skipped": skipped, "targets": self.targets}

    def _unchecked(self, why, quiet=False):
        note = f"capacity not checked: {why}"
        (base.LOG.info if quiet else base.LOG.warning)(
            "%s (source host %s)", note, self.source_host)
        return {"checked": False, "note": note,
                "fit": [s["id"] for s in self.servers], "no_room": [],
                "hosts": [], "skipped": [], "targets": self.targets}

    # -- reading -----------------------------------------------------------

    def _candidates(self, nova):
        """({host: {"inventories", "usages"}} in candidate order,
        [{host, reason}])."""
        endpoint = nova.cloud.endpoint("placement")
        if not endpoint:
            raise Unavailable("the service catalog has no placement "
                              "endpoint")
        services = nova.retrying(
            "listing the nova-compute services",
            lambda: nova.get("/os-services?binary=nova-compute")
            .get("services", []), host=self.source_host)
        by_host = {s.get("host"): s for s in services
                   if s.get("binary") == "nova-compute"}
        names, skipped = self._eligible(by_host)
        if not names:
            return {}, skipped
        nodes = nova.retrying("listing the hypervisors",
                              lambda: self._nodes(nova),
                              host=self.source_host)
        providers = _Placement(nova.cloud.session, endpoint)
        by_name = {p.get("name"): p for p in providers.get(
            "/resource_providers").get("resource_providers", [])
            if isinstance(p, dict)}
        hosts = {}
        for name in names:
            node = nodes.get(name, [name])
            if len(node) != 1:
                skipped.append({"host": name, "reason":
                                f"{len(node)} compute nodes; the estimate "
                                "knows one per host"})
                continue
            provider = by_name.get(node[0])
            if provider is None:
                skipped.append({"host": name, "reason": "placement has no "
                                f"resource provider named {node[0]}"})
                continue
            uuid = parse.quote(str(provider.get("uuid")), safe="")
            base_path = f"/resource_providers/{uuid}"
            inventories = providers.get(base_path + "/inventories").get(
                "inventories")
            usages = providers.get(base_path + "/usages").get("usages")
            if not isinstance(inventories, dict) or not isinstance(
                    usages, dict):
                raise Unavailable(f"placement's answer for {name} has no "
                                  "inventories or usages")
            hosts[name] = {"inventories": inventories, "usages": usages}
        return hosts, skipped

    def _eligible(self, by_host):
        """The candidate host names, in order, and the skipped hosts."""
        names, skipped = [], []

        def add(name):
            if name not in names and name != self.source_host:
                names.append(name)

        for target in self.targets:
            if target is None:
                for name, service in sorted(by_host.items()):
                    if name == self.source_host:
                        continue
                    why = _not_schedulable(service)
                    if why is None:
                        add(name)
                continue
            service = by_host.get(target)
            if service is None:
                skipped.append({"host": target,
                                "reason": "no nova-compute service"})
                continue
            why = _not_up(service)
            if why is not None:
                skipped.append({"host": target, "reason": why})
                continue
            add(target)
        return names, skipped

    def _nodes(self, nova):
        """host -> [hypervisor_hostname, ...] (the names of its compute
        node resource providers); {} below 2.53, where the hypervisors
        do not name their service's host: each host is then its node."""
        client = nova.client()
        if client.api_version < HYPERVISOR_SERVICE_MIN:
            return {}
        nodes = {}
        for hypervisor in nova.get("/os-hypervisors/detail", client).get(
                "hypervisors", []):
            host = (hypervisor.get("service") or {}).get("host")
            if host:
                nodes.setdefault(host, []).append(
                    hypervisor.get("hypervisor_hostname"))
        return nodes


def _not_up(service):
    if service.get("forced_down"):
        return "forced down"
    if service.get("state") != "up":
        return f"nova-compute is {service.get('state')}"
    return None


def _not_schedulable(service):
    """Why Nova's scheduler takes no VM to this host (ComputeFilter), or
    None."""
    if service.get("status") != "enabled":
        return "disabled"
    return _not_up(service)


class _Placement:
    """GETs of the placement API on the cloud's session; Unavailable for
    anything but a JSON 200."""

    def __init__(self, session, endpoint):
        self.session = session
        self.endpoint = endpoint.rstrip("/")

    def get(self, path):
        url = self.endpoint + path
        try:
            response = self.session.get(
                url, headers={"OpenStack-API-Version": PLACEMENT_VERSION},
                raise_exc=False)
        except ks_exceptions.ClientException as exc:
            raise Unavailable(
                f"placement at {self.endpoint} does not answer "
                f"({nova_client.message_of(exc)})") from None
        if response.status_code != 200:
            raise Unavailable(
                f"placement answered HTTP {response.status_code} to GET "
                f"{path}: {_detail(response)}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Unavailable(f"placement's answer to GET {path} is not a "
                              "JSON object")
        return body


def _detail(response):
    try:
        errors = response.json().get("errors") or [{}]
        text = errors[0].get("detail") or errors[0].get("title") or ""
    except (ValueError, AttributeError):
        text = response.text or ""
    return " ".join(str(text).split())[:200]
