"""List a failed host's servers, every tenant's, each classified by the
state table and the HA policy, with the placement resources each needs
on a new host (instance_ha.capacity.resources_from_flavor)."""

from urllib import parse

from instance_ha import capacity
from instance_ha import nova_client
from instance_ha import state_table
from instance_ha.actions import base

POLICY_KEYS = {"evacuate", "metadata_key", "flavor_extra_spec",
               "image_property", "error_servers"}
DEFAULT_POLICY = {"evacuate": "all", "metadata_key": "HA_Enabled",
                  "flavor_extra_spec": None, "image_property": None,
                  "error_servers": "skip"}
TRUE_WORDS = {"1", "t", "true", "on", "y", "yes"}
# A VM's recovery priority (an integer, higher first; 0 without one): the
# server's metadata, else its flavor's extra spec, else its image's
# property, each under this name.
PRIORITY_KEY = "instance_ha:priority"
# A VM's restart group, looked up the same way: with the workflow's
# ``restart_groups`` (names, in order), the VMs of a group start only
# after every VM of the groups before it is recovered or failed; VMs of
# no listed group form the last group.
GROUP_KEY = "instance_ha:restart_group"
FAILED_MIGRATIONS = ("error", "failed")


def truthy(value):
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


class HostServers(base.NovaAction):
    """``search_opts`` must name the ``host``; other Nova list filters
    pass through.  Nova ignores ``host`` for a non-admin and answers with
    every server of the project, so each server's host is checked here.

    ``policy`` (all keys optional): evacuate ``all`` | ``tagged``;
    ``metadata_key`` (default HA_Enabled), ``flavor_extra_spec``,
    ``image_property``: a server is tagged when one of them is true;
    ``error_servers`` ``skip`` | ``evacuate``."""

    def __init__(self, search_opts, policy=None, restart_groups=None):
        self.search_opts = search_opts
        self.policy = policy
        self.restart_groups = restart_groups

    def _subject(self):
        opts = self.search_opts if isinstance(self.search_opts, dict) \
            else {}
        host = opts.get("host")
        return None, host if isinstance(host, str) else None

    def check(self):
        if not isinstance(self.search_opts, dict):
            raise nova_client.NovaError(
                "bad input: search_opts must be a dict with at least host")
        base.require_text("search_opts.host", self.search_opts.get("host"))
        policy = self.policy or {}
        if not isinstance(policy, dict):
            raise nova_client.NovaError("bad input: policy must be a dict")
        unknown = set(policy) - POLICY_KEYS
        if unknown:
            raise nova_client.NovaError(
                f"bad input: unknown policy keys {sorted(unknown)}")
        policy = dict(DEFAULT_POLICY, **policy)
        if policy["evacuate"] not in ("all", "tagged"):
            raise nova_client.NovaError(
                "bad input: policy.evacuate must be all or tagged")
        if policy["error_servers"] not in ("skip", "evacuate"):
            raise nova_client.NovaError(
                "bad input: policy.error_servers must be skip or evacuate")
        groups = [] if self.restart_groups is None else self.restart_groups
        if not isinstance(groups, list) or not all(
                isinstance(g, str) and g.strip() for g in groups):
            raise nova_client.NovaError(
                "bad input: restart_groups must be a list of group names")

    def act(self, nova):
        host = self.search_opts["host"]
        return nova.retrying(f"listing the servers of {host}",
                             lambda: self._attempt(nova, host), host=host)

    def _attempt(self, nova, host):
        policy = dict(DEFAULT_POLICY, **(self.policy or {}))
        client = nova.client()
        service = nova.compute_service(host, client)
        servers = [s for s in self._list(nova, client)
                   if nova_client.host_of(s) == host]
        tags = _Tags(nova, client, policy)
        failed = _failed_evacuations(nova, client, host, service, servers)
        entries = [self._entry(s, host, tags, policy, s["id"] in failed)
                   for s in servers]
        entries.sort(key=lambda e: (e["group_rank"], -e["priority"],
                                    not e["tagged"], e["name"] or "",
                                    e["id"]))
        return {"host": host, "count": len(entries), "servers": entries}

    def _list(self, nova, client):
        opts = dict(self.search_opts, all_tenants=True)
        query = sorted((k, str(v).lower() if isinstance(v, bool) else v)
                       for k, v in opts.items()
                       if v is not None and k != "marker")
        servers, marker = [], None
        while True:
            page = query + ([("marker", marker)] if marker else [])
            body = nova.get("/servers/detail?" + parse.urlencode(page),
                            client)
            servers.extend(body.get("servers", []))
            marker = _next_marker(body.get("servers_links"))
            if not marker:
                return servers

    def _entry(self, server, host, tags, policy, failed_evacuation):
        power_state = nova_client.power_state_of(server)
        vm_state = nova_client.vm_state_of(server)
        row, reason = state_table.classify(
            vm_state, power_state, nova_client.task_state_of(server),
            policy["error_servers"], _our_lock(server),
            failed_evacuation)
        tagged, why = tags.of(server)
        priority, priority_note = tags.priority(server)
        group = tags.group(server)
        ranks = self.restart_groups or []
        if row.plan == "evacuate" and policy["evacuate"] == "tagged" \
                and not tagged:
            row = None
            reason = "not tagged for HA; policy evacuates tagged servers " \
                     "only"
        return {
            "id": server["id"],
            "name": server.get("name"),
            "case": row.before if row else None,
            "vm_state": vm_state,
            "task_state": nova_client.task_state_of(server),
            "power_state": power_state,
            "locked": server.get("locked"),
            "locked_reason": server.get("locked_reason"),
            "tagged": tagged,
            "priority": priority,
            "resources": tags.resources(server),
            "group": group,
            "group_rank": ranks.index(group) if group in ranks
            else len(ranks),
            "plan": row.plan if row else "skip",
            "steps": list(row.steps) if row else [],
            "expected_vm_state": row.after if row else None,
            "evacuated_vm_state": state_table.evacuated_vm_state(
                row, vm_state) if row else None,
            "lock_reason": state_table.lock_reason(host, row.before)
            if row and row.plan == "evacuate" else None,
            "reason": reason + (f"; tagged by {why}" if tagged else "")
            + (f"; {priority_note}" if priority_note else ""),
        }


def _our_lock(server):
    """The locked_reason when the lock is there and is instance-ha's."""
    reason = server.get("locked_reason")
    if server.get("locked") and (reason or "").startswith(
            state_table.LOCK_MARK):
        return reason
    return None


def _failed_evacuations(nova, client, host, service, servers):
    """Ids of the servers in error, not under an instance-ha lock, whose
    newest evacuation from ``host`` failed after the host's service was
    last updated (forced down: its heartbeats stopped with the host).
    Nova leaves a server in error on the source host when its evacuation
    finds no valid host; this tells it from a VM that was in error before
    the host failed.  One read of the host's evacuations, and only when
    such a server is there."""
    suspects = {s["id"] for s in servers
                if nova_client.vm_state_of(s) == state_table.ERROR
                and _our_lock(s) is None}
    if not suspects:
        return set()
    query = f"/os-migrations?source_compute={parse.quote(host, safe='')}"
    if client.api_version >= nova_client.MIGRATION_TYPE_MIN:
        query += "&migration_type=evacuation"
    since = _timestamp(service.get("updated_at"))
    newest = {}
    for migration in nova.get(query, client).get("migrations", []):
        if (migration.get("instance_uuid") not in suspects
                or migration.get("source_compute") != host
                or migration.get("migration_type", "evacuation")
                != "evacuation"):
            continue
        key = (_timestamp(migration.get("created_at")) or "",
               migration.get("id") or 0)
        uuid = migration["instance_uuid"]
        if uuid not in newest or key > newest[uuid][0]:
            newest[uuid] = (key, migration)
    return {uuid for uuid, ((created, _), migration) in newest.items()
            if migration.get("status") in FAILED_MIGRATIONS
            and (not since or not created or created >= since)}


def _timestamp(text):
    """A Nova timestamp (naive UTC ISO 8601) as a comparable string."""
    if not text:
        return None
    return str(text).replace(" ", "T").rstrip("Z")[:26]


def _next_marker(links):
    """The marker of the next page, if Nova says there is one (its link
    is followed with our own filters, not taken as it is)."""
    for link in links or ():
        if link.get("rel") == "next":
            query = parse.parse_qs(parse.urlsplit(link["href"]).query)
            return (query.get("marker") or [None])[-1]
    return None


class _Tags:
    """Whether a server is tagged for HA; flavor extra specs and image
    properties are read once per flavor and image."""

    def __init__(self, nova, client, policy):
        self._nova = nova
        self._client = client
        self._policy = policy
        self._flavors = {}
        self._flavor_details = {}
        self._images = {}

    def of(self, server):
        key = self._policy["metadata_key"]
        if key and truthy((server.get("metadata") or {}).get(key, "")):
            return True, f"metadata {key}"
        spec = self._policy["flavor_extra_spec"]
        if spec and truthy(self._extra_specs(server).get(spec, "")):
            return True, f"flavor extra spec {spec}"
        prop = self._policy["image_property"]
        if prop and truthy(self._image_properties(server).get(prop, "")):
            return True, f"image property {prop}"
        return False, None

    def priority(self, server):
        """(priority, note): the first of metadata, flavor extra spec and
        image property that names one; a value that is not an integer
        counts as 0, and the note says so."""
        where, value = self._recovery_property(server, PRIORITY_KEY)
        if value is None:
            return 0, None
        try:
            return int(str(value).strip()), None
        except ValueError:
            return 0, (f"{where} {PRIORITY_KEY}={value!r} is not an "
                       "integer: priority 0")

    def group(self, server):
        """The restart group's name, or None."""
        value = self._recovery_property(server, GROUP_KEY)[1]
        if value is None:
            return None
        return str(value).strip() or None

    def _recovery_property(self, server, key):
        """(where, value) from the first of the server's metadata, its
        flavor's extra specs and its image's properties that has ``key``;
        (None, None) when none has."""
        sources = (("metadata", lambda: server.get("metadata") or {}),
                   ("flavor extra spec", lambda: self._extra_specs(server)),
                   ("image property", lambda: self._priority_image(server)))
        for where, read in sources:
            value = read().get(key)
            if value is not None:
                return where, value
        return None, None

    def _extra_specs(self, server):
        flavor = server.get("flavor") or {}
        if "extra_specs" in flavor:
            return flavor["extra_specs"] or {}
        flavor_id = flavor.get("id")
        if flavor_id not in self._flavors:
            body = self._nova.get(f"/flavors/{flavor_id}/os-extra_specs",
                                  self._client)
            self._flavors[flavor_id] = body.get("extra_specs") or {}
        return self._flavors[flavor_id]

    def resources(self, server):
        """The placement resources the server needs on a new host, as
        Nova's scheduler computes them: from the flavor embedded in the
        server (>= 2.47), else from GET /flavors/{id}, read once per
        flavor.  A server booted from volume has image ""."""
        flavor = server.get("flavor") or {}
        if "vcpus" not in flavor:
            flavor = dict(self._flavor(flavor.get("id")),
                          extra_specs=self._extra_specs(server))
        image = server.get("image")
        boot_from_volume = not (isinstance(image, dict) and image.get("id"))
        return capacity.resources_from_flavor(flavor, boot_from_volume)

    def _flavor(self, flavor_id):
        """vcpus, ram, disk, ephemeral and swap of a flavor, by id."""
        if flavor_id not in self._flavor_details:
            body = self._nova.get(f"/flavors/{flavor_id}", self._client)
            detail = body.get("flavor") or {}
            self._flavor_details[flavor_id] = {
                "vcpus": detail.get("vcpus"), "ram": detail.get("ram"),
                "disk": detail.get("disk"),
                "ephemeral": detail.get("OS-FLV-EXT-DATA:ephemeral"),
                "swap": detail.get("swap")}
        return self._flavor_details[flavor_id]

    def _priority_image(self, server):
        """The image's properties where the catalog has an image service
        that answers; else none (a priority is never worth failing a
        recovery for)."""
        if not self._nova.cloud.endpoint("image"):
            return {}
        try:
            return self._image_properties(server)
        except nova_client.NovaError as exc:
            base.LOG.warning("no image priority for %s: %s", server["id"],
                             exc)
            return {}

    def _image_properties(self, server):
        image = server.get("image") or {}
        if not isinstance(image, dict) or not image.get("id"):
            return {}
        if "properties" in image:
            return image["properties"] or {}
        image_id = image["id"]
        if image_id not in self._images:
            self._images[image_id] = self._glance_image(image_id)
        return self._images[image_id]

    def _glance_image(self, image_id):
        endpoint = self._nova.cloud.endpoint("image")
        if not endpoint:
            raise nova_client.NovaError(
                "policy image_property needs the image service, and the "
                "catalog has none")
        url = endpoint.rstrip("/")
        if not url.endswith("/v2"):
            url += "/v2"
        response = self._nova.cloud.session.get(
            f"{url}/images/{image_id}", raise_exc=False)
        if response.status_code == 404:
            return {}
        if response.status_code >= 400:
            raise nova_client.NovaError(
                f"reading image {image_id}: HTTP {response.status_code}",
                code=response.status_code)
        return response.json()
