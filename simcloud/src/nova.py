"""The compute API (/v2.1) of the simulated cloud: routing, validation,
policy and the controllers' checks in the order Nova makes them
(nova/api/openstack/compute/*.py); the state changes themselves are
model.Cloud's."""

import dataclasses
import re
import typing
import uuid
from urllib import parse

from instance_ha.simcloud import errors
from instance_ha.simcloud import microversion
from instance_ha.simcloud import policy
from instance_ha.simcloud import states
from instance_ha.simcloud import validation
from instance_ha.simcloud import views
from instance_ha.simcloud.errors import NovaError
from instance_ha.simcloud.model import utcnow
from instance_ha.simcloud.wire import BadJSON
from instance_ha.simcloud.wire import Response
from instance_ha.simcloud.wire import Routed

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                     r"[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
UPDATED = "2013-07-23T11:33:21Z"

# Options a non-admin may filter servers by (servers.py
# _get_server_search_options); anything else, such as host, is dropped
# without a word.
USER_SEARCH_OPTIONS = {
    "reservation_id", "name", "status", "image", "flavor", "ip",
    "changes-since", "changes-before", "all_tenants", "ip6", "tags",
    "tags-any", "not-tags", "not-tags-any", "locked", "availability_zone",
    "config_drive", "key_name", "created_at", "launched_at",
    "terminated_at", "power_state", "task_state", "vm_state", "progress",
    "user_id", "limit", "marker", "sort_key", "sort_dir"}


# Exact-match server filters: query option -> the server's value.  Other
# options Nova knows (ip, tags, changes-since, ...) are not served and are
# ignored (see the package docstring).
EXACT_FILTERS = {
    "node": lambda s: s.host,
    "image": lambda s: s.image.id if s.image else "",
    "flavor": lambda s: s.flavor.id,
    "vm_state": lambda s: s.vm_state,
    "task_state": lambda s: s.task_state,
    "power_state": lambda s: s.power_state,
    "availability_zone": lambda s: s.availability_zone,
    "user_id": lambda s: s.user_id,
    "key_name": lambda s: s.key_name,
    "locked": lambda s: str(s.locked).lower(),
}


@dataclasses.dataclass
class Call:
    """One authenticated compute API request being served."""
    cloud: typing.Any
    context: typing.Any
    version: tuple
    request: typing.Any
    params: dict

    @property
    def base_url(self):
        return self.request.base_url

    def body(self):
        try:
            return self.request.json()
        except BadJSON:
            raise NovaError(400, "Malformed request body") from None

    def at_least(self, major_minor):
        return self.version >= major_minor

    def server(self):
        """common.get_instance: 404 unless visible to the caller."""
        server_id = self.params["server_id"]
        server = self.cloud.servers.get(server_id)
        if server is None or not (self.context.is_admin or
                                  server.project_id ==
                                  self.context.project_id):
            raise errors.instance_not_found(server_id)
        return server


# -- versions ---------------------------------------------------------------

def _version_doc(base_url):
    return {"id": "v2.1", "status": "CURRENT",
            "version": microversion.to_string(microversion.MAX_VERSION),
            "min_version": microversion.to_string(microversion.MIN_VERSION),
            "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{base_url}/v2.1/"},
                      {"rel": "describedby", "type": "text/html",
                       "href": "http://docs.openstack.org/"}],
            "media-types": [{
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;"
                        "version=2.1"}]}


def show_versions(request):
    doc = _version_doc(request.base_url)
    del doc["media-types"]
    doc["links"] = doc["links"][:1]
    return Response(200, {"versions": [doc]})


def show_version(request):
    return Response(200, {"version": _version_doc(request.base_url)})


# -- servers ----------------------------------------------------------------

def list_servers(call, detail):
    cloud, context = call.cloud, call.context
    query = call.request.query
    if not context.is_admin:
        query = {k: v for k, v in query.items() if k in USER_SEARCH_OPTIONS}
    opts = {k: v[-1] for k, v in query.items()}
    for name in opts:
        if name.startswith("_"):
            raise NovaError(400, f"Invalid filter field: {name}.")
    vm_states = task_states = None
    if "status" in query:
        vm_states, task_states = states.states_for_statuses(query["status"])
        if not vm_states:
            if call.at_least((2, 38)):
                raise NovaError(400, "Invalid status value")
            return Response(200, {"servers": []})
    all_tenants = "all_tenants" in opts and (
        opts["all_tenants"] == "" or validation.to_bool(opts["all_tenants"]))
    if all_tenants:
        policy.enforce(context, "os_compute_api:servers:%s:get_all_tenants"
                       % ("detail" if detail else "index"))
        project = opts.get("project_id") or opts.get("tenant_id")
    else:
        project = context.project_id
    if "host" in opts:
        candidates = cloud.servers_on(opts["host"])
    else:
        candidates = cloud.servers.values()
    name = _name_filter(opts.get("name"))
    exact = [(field, str(opts[option]))
             for option, field in EXACT_FILTERS.items() if option in opts]
    selected = [
        s for s in candidates
        if (project is None or s.project_id == project)
        and (name is None or name.search(s.name))
        and (vm_states is None or (
            s.vm_state in vm_states
            and ("default" in task_states or s.task_state in task_states)))
        and all(str(field(s)) == value for field, value in exact)]
    selected.sort(key=lambda s: (s.created_at, s.number), reverse=True)
    page, links = _paginate(call, selected,
                            "servers/detail" if detail else "servers")
    if detail:
        items = [views.server_detail(cloud, s, context, call.version,
                                     call.base_url) for s in page]
    else:
        items = [views.server_brief(s, call.base_url) for s in page]
    body = {"servers": items}
    if links:
        body["servers_links"] = links
    return Response(200, body)


def _name_filter(pattern):
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return re.compile(re.escape(pattern))


def _paginate(call, items, collection, key=lambda item: item.id):
    query = call.request.query
    max_limit = call.cloud.settings.max_limit
    limit = max_limit
    if "limit" in query:
        try:
            limit = int(query["limit"][-1])
        except ValueError:
            raise NovaError(400, "limit param must be an integer") from None
        if limit < 0:
            raise NovaError(400, "limit param must be positive")
        limit = min(limit, max_limit)
    if "marker" in query:
        marker = query["marker"][-1]
        keys = [str(key(item)) for item in items]
        if marker not in keys:
            raise NovaError(400, f"marker [{marker}] not found")
        items = items[keys.index(marker) + 1:]
    page = items[:limit]
    links = []
    # As Nova's ViewBuilder._get_collection_links: a full page has a next
    # link (even when nothing follows) carrying every request parameter,
    # filters included, with the marker replaced.
    if page and len(page) == limit:
        params = [(name, value) for name, values in query.items()
                  if name != "marker" for value in values]
        params.append(("marker", str(key(page[-1]))))
        links = [{"rel": "next", "href": (
            f"{call.base_url}/v2.1/{collection}?"
            f"{parse.urlencode(params)}")}]
    return page, links


def show_server(call):
    server = call.server()
    return Response(200, {"server": views.server_detail(
        call.cloud, server, call.context, call.version, call.base_url)})


def server_metadata(call):
    return Response(200, {"metadata": dict(call.server().metadata)})


def server_metadata_item(call):
    server = call.server()
    key = call.params["key"]
    if key not in server.metadata:
        raise NovaError(404, "Metadata item was not found")
    return Response(200, {"meta": {key: server.metadata[key]}})


# -- server actions ---------------------------------------------------------

def server_action(call):
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise NovaError(400, "Malformed request body")
    name = next(iter(body))
    handler = ACTIONS.get(name)
    if handler is None:
        raise NovaError(404, f"There is no such action: {name}")
    return handler(call, body)


def evacuate(call, body):
    validation.validate(validation.evacuate_schema(call.version), body)
    server = call.server()
    policy.enforce(call.context, "os_compute_api:os-evacuate")
    args = body["evacuate"] or {}
    host = args.get("host")
    target_state = states.STOPPED if call.at_least((2, 95)) else None
    force = False
    if call.at_least((2, 29)):
        force = validation.to_bool(args.get("force", False))
        if force and not host:
            raise NovaError(400, "Can't force to a non-provided destination")
    on_shared_storage = None
    if not call.at_least((2, 14)):
        on_shared_storage = validation.to_bool(args["onSharedStorage"])
        if "adminPass" in args and on_shared_storage:
            raise NovaError(400,
                            "admin password can't be changed on existing "
                            "disk")
    password = args.get("adminPass")
    if password is None and not on_shared_storage:
        password = _generate_password()
    if host is not None and host not in call.cloud.hosts:
        raise NovaError(404, f"Compute host {host} not found.")
    if server.host == host:
        raise NovaError(400, "The target host can't be the same one.")
    # Before 2.29 a named host is used as given (no scheduler), as
    # with force from 2.29 to 2.67.
    forced = bool(host) and (force or not call.at_least((2, 29)))
    call.cloud.evacuate(call.context, server, host=host, force=forced,
                        target_state=target_state)
    if not call.at_least((2, 14)):
        return Response(200, {"adminPass": password})
    return Response(200, None)


def _generate_password():
    return uuid.uuid4().hex[:12]


def stop(call, body):
    server = call.server()
    policy.enforce(call.context, "os_compute_api:servers:stop",
                   server.project_id)
    call.cloud.stop(call.context, server)
    return Response(202)


def start(call, body):
    server = call.server()
    policy.enforce(call.context, "os_compute_api:servers:start",
                   server.project_id)
    call.cloud.start(call.context, server)
    return Response(202)


def reset_state(call, body):
    validation.validate(validation.RESET_STATE, body)
    server = call.server()
    policy.enforce(call.context,
                   "os_compute_api:os-admin-actions:reset_state")
    call.cloud.reset_state(call.context, server,
                           body["os-resetState"]["state"])
    return Response(202)


def lock(call, body):
    if call.at_least((2, 73)):
        validation.validate(validation.LOCK_V273, body)
    server = call.server()
    policy.enforce(call.context, "os_compute_api:os-lock-server:lock",
                   server.project_id)
    reason = None
    if call.at_least((2, 73)) and body["lock"] is not None:
        reason = body["lock"].get("locked_reason")
    call.cloud.lock_server(call.context, server, reason)
    return Response(202)


def unlock(call, body):
    server = call.server()
    context = call.context
    policy.enforce(context, "os_compute_api:os-lock-server:unlock",
                   server.project_id)
    is_owner = server.project_id == context.project_id
    expected = "owner" if is_owner else "admin"
    if server.locked_by and server.locked_by != expected:
        policy.enforce(context,
                       "os_compute_api:os-lock-server:unlock:"
                       "unlock_override")
    call.cloud.unlock_server(context, server)
    return Response(202)


ACTIONS = {
    "evacuate": evacuate,
    "os-stop": stop,
    "os-start": start,
    "os-resetState": reset_state,
    "lock": lock,
    "unlock": unlock,
}


# -- instance actions -------------------------------------------------------

def list_instance_actions(call):
    server = call.server()
    policy.enforce(call.context, "os_compute_api:os-instance-actions:list",
                   server.project_id)
    actions = sorted(call.cloud.actions.get(server.id, []),
                     key=lambda a: a.start_time, reverse=True)
    return Response(200, {"instanceActions": [
        views.instance_action(a, call.version, call.context)
        for a in actions]})


def show_instance_action(call):
    server = call.server()
    policy.enforce(call.context, "os_compute_api:os-instance-actions:show",
                   server.project_id)
    request_id = call.params["request_id"]
    for action in call.cloud.actions.get(server.id, []):
        if action.request_id == request_id:
            return Response(200, {"instanceAction": views.instance_action(
                action, call.version, call.context, with_events=True)})
    raise NovaError(404, f"Action {request_id} not found")


# -- migrations -------------------------------------------------------------

MIGRATION_FILTERS = ("instance_uuid", "migration_type", "status",
                     "source_compute")


def list_migrations(call):
    policy.enforce(call.context, "os_compute_api:os-migrations:index")
    opts = {k: v[-1] for k, v in call.request.query.items()}
    if "migration_type" in opts and not call.at_least((2, 23)):
        opts.pop("migration_type")
    selected = [
        m for m in call.cloud.migrations
        if all(getattr(m, f) == opts[f] for f in MIGRATION_FILTERS
               if f in opts)
        and ("host" not in opts
             or opts["host"] in (m.source_compute, m.dest_compute))]
    selected.sort(key=lambda m: (m.created_at, m.id), reverse=True)
    body = {}
    if call.at_least((2, 59)):
        selected, links = _paginate(call, selected, "os-migrations",
                                    key=lambda m: m.uuid)
        if links:
            body["migrations_links"] = links
    body["migrations"] = [views.migration(m, call.version, call.base_url)
                          for m in selected]
    return Response(200, body)


# -- services ---------------------------------------------------------------

def list_services(call):
    policy.enforce(call.context, "os_compute_api:os-services:list")
    query = call.request.query
    host = query.get("host", [""])[-1]
    binary = query.get("binary", [""])[-1]
    cloud = call.cloud
    records = list(cloud.control_services) + list(cloud.hosts.values())
    items = []
    for record in records:
        svc = getattr(record, "service", record)
        if host and svc.host != host or binary and svc.binary != binary:
            continue
        items.append(views.service(cloud, record, call.version))
    return Response(200, {"services": items})


def update_service(call):
    body = call.body()
    if call.at_least((2, 53)):
        validation.validate(validation.SERVICE_UPDATE_V253, body)
        return _update_service_v253(call, body)
    schema = (validation.SERVICE_UPDATE_V211 if call.at_least((2, 11))
              else validation.SERVICE_UPDATE_V21)
    validation.validate(schema, body)
    policy.enforce(call.context, "os_compute_api:os-services:update")
    actions = {"enable": _enable, "disable": _disable,
               "disable-log-reason": _disable_log_reason}
    if call.at_least((2, 11)):
        actions["force-down"] = _force_down
    action = actions.get(call.params["action"])
    if action is None:
        raise NovaError(404, "Unknown action")
    return Response(200, action(call, body))


def _compute_host(call, host_name, binary):
    if binary != "nova-compute":
        raise NovaError(400, f"Updating a {binary} service is not "
                             "supported. Only nova-compute services can be "
                             "updated.")
    host = call.cloud.hosts.get(host_name)
    if host is None:
        raise NovaError(404, f"Could not find binary {binary} on host "
                             f"{host_name}.")
    return host


def _set_status(call, body, disabled, reason):
    host = _compute_host(call, body["host"], body["binary"])
    host.service.disabled = disabled
    host.service.disabled_reason = reason
    call.cloud.touch_service(host)
    result = {"host": body["host"], "binary": body["binary"],
              "status": "disabled" if disabled else "enabled"}
    if reason:
        result["disabled_reason"] = reason
    return {"service": result}


def _enable(call, body):
    return _set_status(call, body, False, None)


def _disable(call, body):
    return _set_status(call, body, True, None)


def _disable_log_reason(call, body):
    if "disabled_reason" not in body:
        raise NovaError(400, "Missing disabled reason field")
    return _set_status(call, body, True, body["disabled_reason"])


def _force_down(call, body):
    if "forced_down" not in body:
        raise NovaError(400, "Missing forced_down field")
    forced_down = validation.to_bool(body["forced_down"])
    if body["binary"] == "nova-compute" and not forced_down:
        host = call.cloud.hosts.get(body["host"])
        if host is not None:
            call.cloud.check_force_up(host)
    host = _compute_host(call, body["host"], body["binary"])
    call.cloud.set_forced_down(host, forced_down)
    call.cloud.touch_service(host)
    return {"service": {"host": body["host"], "binary": body["binary"],
                        "forced_down": forced_down}}


def _update_service_v253(call, body):
    service_id = call.params["action"]
    if not UUID_RE.match(service_id):
        raise NovaError(400, f"Invalid uuid {service_id}")
    policy.enforce(call.context, "os_compute_api:os-services:update")
    cloud = call.cloud
    record = next((r for r in list(cloud.hosts.values())
                   + list(cloud.control_services)
                   if getattr(r, "service", r).uuid == service_id), None)
    if record is None:
        raise NovaError(404, f"Service {service_id} could not be found.")
    svc = getattr(record, "service", record)
    if svc.binary != "nova-compute":
        raise NovaError(400, f"Updating a {svc.binary} service is not "
                             "supported. Only nova-compute services can be "
                             "updated.")
    changes = {}
    if "status" in body:
        if body["status"] == "enabled":
            if body.get("disabled_reason"):
                raise NovaError(400, "Specifying 'disabled_reason' with "
                                     "status 'enabled' is invalid.")
            changes.update(disabled=False, disabled_reason=None)
        else:
            changes.update(disabled=True,
                           disabled_reason=body.get("disabled_reason"))
    if "forced_down" in body:
        changes["forced_down"] = validation.to_bool(body["forced_down"])
        if changes["forced_down"] is False:
            cloud.check_force_up(record)
    if not changes:
        raise NovaError(400, "No updates were requested. Fields 'status' or "
                             "'forced_down' should be specified.")
    for name, value in changes.items():
        setattr(svc, name, value)
    if hasattr(record, "service"):
        cloud.touch_service(record)
    return Response(200, {"service": views.service(cloud, record,
                                                   call.version)})


# -- hypervisors ------------------------------------------------------------

def _hypervisor_list(call, detail):
    policy.enforce(call.context, "os_compute_api:os-hypervisors:%s"
                   % ("list-detail" if detail else "list"))
    cloud = call.cloud
    opts = {k: v[-1] for k, v in call.request.query.items()}
    hosts = list(cloud.hosts.values())
    with_servers = False
    if call.at_least((2, 53)):
        pattern = opts.get("hypervisor_hostname_pattern")
        if pattern is not None:
            hosts = [h for h in hosts if pattern in h.name]
            if not hosts:
                raise NovaError(404, f"No hypervisor matching '{pattern}' "
                                     "could be found.")
        with_servers = validation.to_bool(opts.get("with_servers", False))
    items = [views.hypervisor(cloud, h, call.version, detail,
                              cloud.servers_on(h.name) if with_servers
                              else None) for h in hosts]
    return Response(200, {"hypervisors": items})


def list_hypervisors(call):
    return _hypervisor_list(call, detail=False)


def list_hypervisors_detail(call):
    return _hypervisor_list(call, detail=True)


def show_hypervisor(call):
    policy.enforce(call.context, "os_compute_api:os-hypervisors:show")
    wanted = call.params["hypervisor_id"]
    if call.at_least((2, 53)) and not UUID_RE.match(wanted):
        raise NovaError(400, f"Invalid uuid {wanted}")
    for host in call.cloud.hosts.values():
        if wanted in (host.hypervisor_uuid, str(host.hypervisor_id)):
            return Response(200, {"hypervisor": views.hypervisor(
                call.cloud, host, call.version, detail=True)})
    raise NovaError(404, f"Hypervisor {wanted} could not be found.")


def _hypervisors_matching(call, rule):
    if call.at_least((2, 53)):
        raise NovaError(404, errors.NOT_FOUND)
    policy.enforce(call.context, rule)
    pattern = call.params["pattern"]
    hosts = [h for h in call.cloud.hosts.values() if pattern in h.name]
    if not hosts:
        raise NovaError(404, f"No hypervisor matching '{pattern}' could be "
                             "found.")
    return hosts


def search_hypervisors(call):
    hosts = _hypervisors_matching(call,
                                  "os_compute_api:os-hypervisors:search")
    return Response(200, {"hypervisors": [
        views.hypervisor(call.cloud, h, call.version) for h in hosts]})


def hypervisor_servers(call):
    hosts = _hypervisors_matching(call,
                                  "os_compute_api:os-hypervisors:servers")
    return Response(200, {"hypervisors": [
        views.hypervisor(call.cloud, h, call.version,
                         servers=call.cloud.servers_on(h.name))
        for h in hosts]})


# -- aggregates -------------------------------------------------------------

def list_aggregates(call):
    policy.enforce(call.context, "os_compute_api:os-aggregates:index")
    return Response(200, {"aggregates": [
        views.aggregate(a, call.version)
        for a in call.cloud.aggregates.values()]})


def create_aggregate(call):
    """POST /os-aggregates: 200 (as Nova, for compatibility), the new
    aggregate without hosts and metadata."""
    body = call.body()
    validation.validate(validation.AGGREGATE_CREATE, body)
    policy.enforce(call.context, "os_compute_api:os-aggregates:create")
    args = body["aggregate"]
    name = args["name"].strip()
    zone = (args.get("availability_zone") or "").strip() or None
    if any(a.name == name for a in call.cloud.aggregates.values()):
        raise NovaError(409, f"Aggregate {name} already exists.")
    aggregate = call.cloud.add_aggregate(name, availability_zone=zone)
    view = views.aggregate(aggregate, call.version)
    del view["hosts"], view["metadata"]
    return Response(200, {"aggregate": view})


def _aggregate(call):
    wanted = call.params["aggregate_id"]
    for aggregate in call.cloud.aggregates.values():
        if wanted in (str(aggregate.id), aggregate.uuid):
            return aggregate
    raise NovaError(404, f"Aggregate {wanted} could not be found.")


def show_aggregate(call):
    policy.enforce(call.context, "os_compute_api:os-aggregates:show")
    return Response(200, {"aggregate": views.aggregate(_aggregate(call),
                                                       call.version)})


def aggregate_action(call):
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise NovaError(400, "Malformed request body")
    name = next(iter(body))
    if name not in ("add_host", "remove_host", "set_metadata"):
        raise NovaError(404, f"There is no such action: {name}")
    schema = (validation.AGGREGATE_METADATA if name == "set_metadata"
              else validation.AGGREGATE_HOST)
    validation.validate({"type": "object",
                         "properties": {name: schema},
                         "required": [name],
                         "additionalProperties": False}, body)
    policy.enforce(call.context, "os_compute_api:os-aggregates:" + name)
    aggregate = _aggregate(call)
    args = body[name]
    if name == "set_metadata":
        for key, value in args["metadata"].items():
            if not isinstance(value, (str, type(None))):
                raise NovaError(
                    400, f"Invalid input for field/attribute {key}. Value: "
                         f"{value}. {value!r} is not of type 'string', "
                         "'null'")
        for key, value in args["metadata"].items():
            if value is None:
                aggregate.metadata.pop(key, None)
            else:
                aggregate.metadata[key] = value
    elif name == "add_host":
        host = args["host"]
        if host not in call.cloud.hosts:
            raise NovaError(404, f"Compute host {host} could not be "
                                 "found.")
        if host in aggregate.hosts:
            raise NovaError(409, f"Aggregate {aggregate.id} already has "
                                 f"host {host}.")
        aggregate.hosts.append(host)
    else:
        host = args["host"]
        if host not in aggregate.hosts:
            raise NovaError(404, f"Cannot remove host {host} in aggregate "
                                 f"{aggregate.id}")
        aggregate.hosts.remove(host)
    aggregate.updated_at = utcnow()
    return Response(200, {"aggregate": views.aggregate(aggregate,
                                                       call.version)})


# -- flavors and images -----------------------------------------------------

def _flavor(call):
    flavor = call.cloud.flavors.get(call.params["flavor_id"])
    if flavor is None:
        raise NovaError(404, f"Flavor {call.params['flavor_id']} could not "
                             "be found.")
    return flavor


def list_flavors(call):
    return Response(200, {"flavors": [
        {"id": f.id, "name": f.name,
         "links": views.link(call.base_url, "flavors", f.id)}
        for f in call.cloud.flavors.values()]})


def list_flavors_detail(call):
    return Response(200, {"flavors": [
        views.flavor(f, call.version, call.base_url)
        for f in call.cloud.flavors.values()]})


def show_flavor(call):
    return Response(200, {"flavor": views.flavor(_flavor(call), call.version,
                                                 call.base_url)})


def flavor_extra_specs(call):
    return Response(200, {"extra_specs": dict(_flavor(call).extra_specs)})


def show_image(call):
    if call.at_least((2, 36)):
        raise NovaError(404, errors.NOT_FOUND)
    image = call.cloud.images.get(call.params["image_id"])
    if image is None:
        raise NovaError(404, "Image not found.")
    return Response(200, {"image": views.nova_image(image, call.base_url)})


# -- routing ----------------------------------------------------------------

SERVER = "/servers/(?P<server_id>[^/]+)"
ROUTES = [
    ("GET", "/servers", "servers.index",
     lambda call: list_servers(call, detail=False)),
    ("GET", "/servers/detail", "servers.detail",
     lambda call: list_servers(call, detail=True)),
    ("GET", SERVER, "servers.show", show_server),
    ("POST", SERVER + "/action", None, server_action),
    ("GET", SERVER + "/metadata", "servers.metadata", server_metadata),
    ("GET", SERVER + "/metadata/(?P<key>[^/]+)", "servers.metadata.show",
     server_metadata_item),
    ("GET", SERVER + "/os-instance-actions", "instance-actions.list",
     list_instance_actions),
    ("GET", SERVER + "/os-instance-actions/(?P<request_id>[^/]+)",
     "instance-actions.show", show_instance_action),
    ("GET", "/os-migrations", "migrations.list", list_migrations),
    ("GET", "/os-services", "services.list", list_services),
    ("PUT", "/os-services/(?P<action>[^/]+)", "services.update",
     update_service),
    ("GET", "/os-hypervisors", "hypervisors.list", list_hypervisors),
    ("GET", "/os-hypervisors/detail", "hypervisors.detail",
     list_hypervisors_detail),
    ("GET", "/os-hypervisors/(?P<pattern>[^/]+)/search",
     "hypervisors.search", search_hypervisors),
    ("GET", "/os-hypervisors/(?P<pattern>[^/]+)/servers",
     "hypervisors.servers", hypervisor_servers),
    ("GET", "/os-hypervisors/(?P<hypervisor_id>[^/]+)", "hypervisors.show",
     show_hypervisor),
    ("GET", "/os-aggregates", "aggregates.list", list_aggregates),
    ("POST", "/os-aggregates", "aggregates.create", create_aggregate),
    ("GET", "/os-aggregates/(?P<aggregate_id>[^/]+)", "aggregates.show",
     show_aggregate),
    ("POST", "/os-aggregates/(?P<aggregate_id>[^/]+)/action",
     "aggregates.action", aggregate_action),
    ("GET", "/flavors", "flavors.index", list_flavors),
    ("GET", "/flavors/detail", "flavors.detail", list_flavors_detail),
    ("GET", "/flavors/(?P<flavor_id>[^/]+)", "flavors.show", show_flavor),
    ("GET", "/flavors/(?P<flavor_id>[^/]+)/os-extra_specs",
     "flavors.extra_specs", flavor_extra_specs),
    ("GET", "/images/(?P<image_id>[^/]+)", "images.show", show_image),
]
_COMPILED = [(method, re.compile("^" + pattern + "/?$"), operation, handler)
             for method, pattern, operation, handler in ROUTES]

PREFIX = "/v2.1"


def _match(method, subpath):
    for route_method, pattern, operation, handler in _COMPILED:
        match = pattern.match(subpath)
        if match and route_method == method:
            return operation, handler, match
    return None


def _action_name(request):
    try:
        body = request.json()
    except BadJSON:
        return "servers.action"
    if isinstance(body, dict) and len(body) == 1:
        return next(iter(body))
    return "servers.action"


def route(cloud, request):
    path = request.path
    if path in ("", "/"):
        return Routed("nova.versions", None, None,
                      lambda: show_versions(request))
    if path in (PREFIX, PREFIX + "/"):
        return Routed("nova.version", None, None,
                      lambda: show_version(request))
    if not path.startswith(PREFIX + "/"):
        return _error_route("nova.unknown", None, None,
                            NovaError(404, errors.NOT_FOUND))
    found = _match(request.method, path[len(PREFIX):])
    if found is None:
        return _error_route("nova.unknown", None, None,
                            NovaError(404, errors.NOT_FOUND))
    operation, handler, match = found
    params = match.groupdict()
    server_id = params.get("server_id")
    if operation is None:
        operation = _action_name(request)
    context = cloud.identity.validate(
        request.headers.get("X-Auth-Token"),
        request.headers.get("X-Service-Token"))
    if context is None:
        return Routed(operation, server_id, None,
                      lambda: _unauthorized(request))
    try:
        version = microversion.negotiate(request.headers)
    except NovaError as exc:
        return _error_route(operation, server_id, None, exc)
    context.request_id = "req-" + str(uuid.uuid4())
    call = Call(cloud=cloud, context=context, version=version,
                request=request, params=params)
    return Routed(operation, server_id, version,
                  lambda: run(call, handler), context.project_id)


def run(call, handler):
    try:
        with call.cloud.lock:
            response = handler(call)
    except NovaError as exc:
        response = Response(exc.code, exc.body())
    return finish(response, call.version, call.context.request_id)


def finish(response, version, request_id=None):
    if version is not None:
        response.headers.extend(microversion.response_headers(version))
    if request_id:
        response.headers.append(("x-openstack-request-id", request_id))
        response.headers.append(("x-compute-request-id", request_id))
    return response


def error_response(exc, version):
    return finish(Response(exc.code, exc.body()), version)


def _error_route(operation, server_id, version, exc):
    return Routed(operation, server_id, version,
                  lambda: error_response(exc, version))


def _unauthorized(request):
    return Response(401, {"error": {
        "code": 401, "title": "Unauthorized",
        "message": "The request you have made requires authentication."}},
        [("WWW-Authenticate",
          f'Keystone uri="{request.base_url}/identity"')])
