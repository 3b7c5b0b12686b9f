"""Just enough of the placement API to read the compute hosts' capacity,
with placement 16's JSON and messages: GET /placement (versions), GET
/placement/resource_providers (``name`` and ``uuid`` filters), GET
/placement/resource_providers/{uuid}/inventories and .../usages.

One resource provider per host: the compute node (uuid: the hypervisor's
id, name: the host name), its VCPU, MEMORY_MB and DISK_GB inventories
from the host's capacity (model.Host.inventories) and its usages from the
allocations the simulated scheduler made.  Admin only, as placement's
default policy; microversions 1.0 to 1.39."""

import re
import uuid

from instance_ha.simcloud.wire import Response

PREFIX = "/placement"
MIN_VERSION = (1, 0)
MAX_VERSION = (1, 39)
_PROVIDER = re.compile(r"^/resource_providers/(?P<uuid>[^/]+)"
                       r"/(?P<what>inventories|usages)/?$")
_DENIED = ("Access was denied to this resource.\n\n Policy does not allow "
           "{rule} to be performed.  ")
_UNAUTHORIZED = {
    "message": "This server could not verify that you are authorized to "
               "access the document you requested. Either you supplied the "
               "wrong credentials (e.g., bad password), or your browser "
               "does not understand how to supply the credentials "
               "required.<br /><br />\n\n\n",
    "code": "401 Unauthorized", "title": "Unauthorized"}


def _version_string(version):
    return f"{version[0]}.{version[1]}"


def operation(request):
    path = request.path[len(PREFIX):].rstrip("/")
    if not path:
        return "placement.versions"
    if path == "/resource_providers":
        return "placement.resource_providers.list"
    match = _PROVIDER.match(path)
    if match:
        return f"placement.{match.group('what')}"
    return "placement.unknown"


def _requested_version(request):
    """The microversion asked for: (major, minor), or the 406 answer."""
    header = request.headers.get("OpenStack-API-Version") or ""
    words = header.split()
    if len(words) != 2 or words[0] != "placement":
        return MIN_VERSION
    if words[1] == "latest":
        return MAX_VERSION
    match = re.fullmatch(r"([0-9]+)\.([0-9]+)", words[1])
    if not match:
        return None
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        return None
    return version


def _headers(version, request_id):
    headers = [("x-openstack-request-id", request_id)]
    if version is not None:
        headers[:0] = [("openstack-api-version",
                        f"placement {_version_string(version)}"),
                       ("vary", "openstack-api-version")]
    return headers


def error(status, title, detail, version, request_id):
    """placement's error body (the code field from 1.23)."""
    item = {"status": status, "title": title,
            "detail": f"The resource could not be found.\n\n {detail}  "
            if status == 404 else detail,
            "request_id": request_id}
    if version is not None and version >= (1, 23):
        item["code"] = "placement.undefined_code"
    return Response(status, {"errors": [item]},
                    _headers(version, request_id))


def handle(cloud, request):
    request_id = "req-" + str(uuid.uuid4())
    path = request.path[len(PREFIX):].rstrip("/")
    if not path and request.method == "GET":
        return Response(200, {"versions": [{
            "id": "v1.0", "max_version": _version_string(MAX_VERSION),
            "min_version": _version_string(MIN_VERSION),
            "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}]},
            _headers(MIN_VERSION, request_id))
    context = cloud.identity.validate(
        request.headers.get("X-Auth-Token"),
        request.headers.get("X-Service-Token"))
    if context is None:
        return Response(401, dict(_UNAUTHORIZED),
                        [("x-openstack-request-id", request_id)])
    version = _requested_version(request)
    if version is None:
        return error(406, "Not Acceptable",
                     "Unacceptable version header: "
                     f"{request.headers.get('OpenStack-API-Version')}",
                     MIN_VERSION, request_id)
    with cloud.lock:
        if path == "/resource_providers" and request.method == "GET":
            return _guarded(context, "placement:resource_providers:list",
                            version, request_id,
                            lambda: _list(cloud, request, version,
                                          request_id))
        match = _PROVIDER.match(path)
        if match and request.method == "GET":
            what = match.group("what")
            rule = ("placement:resource_providers:inventories:list"
                    if what == "inventories"
                    else "placement:resource_providers:usages")
            return _guarded(context, rule, version, request_id,
                            lambda: _provider(cloud, match.group("uuid"),
                                              what, version, request_id))
    return error(404, "Not Found", "", version, request_id)


def _guarded(context, rule, version, request_id, answer):
    if not context.is_admin:
        return error(403, "Forbidden", _DENIED.format(rule=rule), version,
                     request_id)
    return answer()


def _links(provider_uuid, version):
    base = f"{PREFIX}/resource_providers/{provider_uuid}"
    links = [("self", base), ("inventories", base + "/inventories"),
             ("usages", base + "/usages")]
    if version >= (1, 1):
        links.append(("aggregates", base + "/aggregates"))
    if version >= (1, 6):
        links.append(("traits", base + "/traits"))
    if version >= (1, 11):
        links.append(("allocations", base + "/allocations"))
    return [{"rel": rel, "href": href} for rel, href in links]


def provider_view(host, version):
    view = {"uuid": host.hypervisor_uuid, "name": host.name,
            "generation": host.generation,
            "links": _links(host.hypervisor_uuid, version)}
    if version >= (1, 14):
        view["parent_provider_uuid"] = None
        view["root_provider_uuid"] = host.hypervisor_uuid
    return view


def _list(cloud, request, version, request_id):
    query = {k: v[-1] for k, v in request.query.items()}
    hosts = [h for h in cloud.hosts.values()
             if ("name" not in query or h.name == query["name"])
             and ("uuid" not in query or h.hypervisor_uuid == query["uuid"])]
    return Response(200, {"resource_providers": [
        provider_view(h, version) for h in hosts]},
        _headers(version, request_id))


def _provider(cloud, provider_uuid, what, version, request_id):
    host = next((h for h in cloud.hosts.values()
                 if h.hypervisor_uuid == provider_uuid), None)
    if host is None:
        message = f"No resource provider with uuid {provider_uuid} found"
        return error(404, "Not Found", f"{message}: {message}", version,
                     request_id)
    body = {"resource_provider_generation": host.generation}
    if what == "inventories":
        body["inventories"] = host.inventories()
    else:
        body["usages"] = host.usages()
    return Response(200, body, _headers(version, request_id))
