"""The JSON Nova answers with, per microversion
(nova/api/openstack/compute/views/*.py and the controllers' _output)."""

from instance_ha.simcloud import policy
from instance_ha.simcloud.model import isotime

EXTENDED = "os_compute_api:os-extended-server-attributes"
HOST_STATUS = "os_compute_api:servers:show:host_status"
PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE",
                     "VERIFY_RESIZE", "MIGRATING")
FAULT_STATUSES = ("ERROR", "DELETED")


def link(base_url, *parts):
    path = "/".join(str(p) for p in parts)
    return [{"rel": "self", "href": f"{base_url}/v2.1/{path}"},
            {"rel": "bookmark", "href": f"{base_url}/{path}"}]


def server_brief(server, base_url):
    return {"id": server.id, "name": server.name,
            "links": link(base_url, "servers", server.id)}


def _flavor(server, version, base_url):
    flavor = server.flavor
    if version < (2, 47):
        return {"id": flavor.id, "links": [
            {"rel": "bookmark", "href": f"{base_url}/flavors/{flavor.id}"}]}
    return {"vcpus": flavor.vcpus, "ram": flavor.ram, "disk": flavor.disk,
            "ephemeral": flavor.ephemeral, "swap": flavor.swap,
            "original_name": flavor.name,
            "extra_specs": dict(flavor.extra_specs)}


def _image(server, version, base_url):
    image = server.image
    if image is None:
        return ""
    view = {"id": image.id, "links": [
        {"rel": "bookmark", "href": f"{base_url}/images/{image.id}"}]}
    if version >= (2, 98):
        view["properties"] = dict(image.properties)
    return view


def _host_status(cloud, server):
    """compute.api.API.get_instance_host_status."""
    host = cloud.hosts.get(server.host)
    if host is None:
        return ""
    if host.service.forced_down:
        return "DOWN"
    if host.service.disabled:
        return "MAINTENANCE"
    return "UP" if cloud.service_is_up(host) else "UNKNOWN"


def _mac(number):
    return "fa:16:3e:" + ":".join(
        f"{number >> shift & 255:02x}" for shift in (16, 8, 0))


def server_detail(cloud, server, context, version, base_url):
    status = server.status
    number = server.number
    view = {
        "id": server.id,
        "name": server.name,
        "status": status,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": dict(server.metadata),
        "hostId": server.host_id(),
        "image": _image(server, version, base_url),
        "flavor": _flavor(server, version, base_url),
        "created": isotime(server.created_at),
        "updated": isotime(server.updated_at),
        "addresses": {"private": [{
            "version": 4, "addr": f"10.0.{number // 250}.{number % 250 + 2}",
            "OS-EXT-IPS:type": "fixed",
            "OS-EXT-IPS-MAC:mac_addr": _mac(number)}]},
        "accessIPv4": "",
        "accessIPv6": "",
        "links": link(base_url, "servers", server.id),
        "OS-DCF:diskConfig": "MANUAL",
        "key_name": server.key_name,
        "config_drive": "",
        "OS-EXT-AZ:availability_zone": server.availability_zone,
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-EXT-STS:power_state": server.power_state,
        "OS-SRV-USG:launched_at": isotime(server.launched_at, micro=True),
        "OS-SRV-USG:terminated_at": None,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
    }
    if status in PROGRESS_STATUSES:
        view["progress"] = 0
    if policy.allowed(context, EXTENDED):
        view["OS-EXT-SRV-ATTR:host"] = server.host
        view["OS-EXT-SRV-ATTR:hypervisor_hostname"] = server.host
        view["OS-EXT-SRV-ATTR:instance_name"] = server.instance_name
        if version >= (2, 3):
            view.update({
                "OS-EXT-SRV-ATTR:reservation_id": f"r-{number:08x}",
                "OS-EXT-SRV-ATTR:launch_index": 0,
                "OS-EXT-SRV-ATTR:hostname": server.name.lower(),
                "OS-EXT-SRV-ATTR:kernel_id": "",
                "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                "OS-EXT-SRV-ATTR:user_data": None,
            })
    if version >= (2, 9):
        view["locked"] = server.locked
    if version >= (2, 16) and policy.allowed(context, HOST_STATUS):
        view["host_status"] = _host_status(cloud, server)
    if version >= (2, 19):
        view["description"] = None
    if version >= (2, 26):
        view["tags"] = []
    if version >= (2, 63):
        view["trusted_image_certificates"] = None
    if version >= (2, 71):
        view["server_groups"] = []
    if version >= (2, 73):
        view["locked_reason"] = server.locked_reason
    if version >= (2, 96):
        view["pinned_availability_zone"] = None
    if version >= (2, 100):
        view["scheduler_hints"] = {}
    if status in FAULT_STATUSES and server.fault:
        fault = server.fault
        view["fault"] = {"code": fault["code"], "message": fault["message"],
                         "created": isotime(fault["created"])}
        if context.is_admin:
            view["fault"]["details"] = fault["details"]
    return view


def service(cloud, host_or_control, version):
    """One service record; a Host (nova-compute) or a control Service."""
    if hasattr(host_or_control, "service"):
        svc = host_or_control.service
        state = "up" if cloud.service_is_up(host_or_control) else "down"
        updated = cloud.heartbeat(host_or_control)
    else:
        svc = host_or_control
        state = "up"
        updated = None
    view = {"binary": svc.binary, "host": svc.host,
            "id": svc.uuid if version >= (2, 53) else svc.id,
            "zone": svc.zone,
            "status": "disabled" if svc.disabled else "enabled",
            "state": state,
            "updated_at": isotime(updated, micro=True),
            "disabled_reason": svc.disabled_reason}
    if version >= (2, 11):
        view["forced_down"] = svc.forced_down
    return view


def migration(item, version, base_url):
    view = {
        "id": item.id,
        "source_node": item.source_node,
        "dest_node": item.dest_node,
        "source_compute": item.source_compute,
        "dest_compute": item.dest_compute,
        "dest_host": item.dest_host,
        "status": item.status,
        "instance_uuid": item.instance_uuid,
        # Nova shows the flavors' internal integer ids here.
        "old_instance_type_id": _int_or_none(item.flavor_id),
        "new_instance_type_id": _int_or_none(item.flavor_id),
        "created_at": isotime(item.created_at, micro=True),
        "updated_at": isotime(item.updated_at, micro=True),
    }
    if version >= (2, 23):
        view["migration_type"] = item.migration_type
    if version >= (2, 59):
        view["uuid"] = item.uuid
    if version >= (2, 80):
        view["user_id"] = item.user_id
        view["project_id"] = item.project_id
    return view


def _int_or_none(text):
    return int(text) if text.isdigit() else None


def instance_action(action, version, context, with_events=False):
    view = {"action": action.action,
            "instance_uuid": action.instance_uuid,
            "message": action.message,
            "project_id": action.project_id,
            "request_id": action.request_id,
            "start_time": isotime(action.start_time, micro=True),
            "user_id": action.user_id}
    if version >= (2, 58):
        view["updated_at"] = isotime(action.updated_at, micro=True)
    if with_events and (context.is_admin or version >= (2, 51)):
        events = []
        for event in action.events:
            item = {"event": event["event"],
                    "start_time": isotime(event["start_time"], micro=True),
                    "finish_time": isotime(event["finish_time"],
                                           micro=True),
                    "result": event["result"]}
            if context.is_admin:
                item["traceback"] = None
            if version >= (2, 62) and event["host"] and context.is_admin:
                item["host"] = event["host"]
            events.append(item)
        view["events"] = events
    return view


def hypervisor(cloud, host, version, detail=False, servers=None):
    svc = host.service
    view = {"id": host.hypervisor_uuid if version >= (2, 53)
            else host.hypervisor_id,
            "hypervisor_hostname": host.name,
            "state": "up" if cloud.service_is_up(host) else "down",
            "status": "disabled" if svc.disabled else "enabled"}
    if detail:
        view.update({
            "host_ip": host.ip, "hypervisor_type": "fake",
            "hypervisor_version": 1000,
            "service": {"host": host.name,
                        "id": svc.uuid if version >= (2, 53) else svc.id,
                        "disabled_reason": svc.disabled_reason}})
        if version < (2, 88):
            vcpus, ram, disk = host.used()
            view.update({
                "vcpus": host.vcpus, "memory_mb": host.memory_mb,
                "local_gb": host.disk_gb, "vcpus_used": vcpus,
                "memory_mb_used": ram, "local_gb_used": disk,
                "free_ram_mb": host.memory_mb - ram,
                "free_disk_gb": host.disk_gb - disk,
                "current_workload": 0,
                "running_vms": len(cloud.servers_on(host.name)),
                "disk_available_least": host.disk_gb - disk,
                "cpu_info": "?"})
        else:
            view["uptime"] = None
    if servers is not None:
        view["servers"] = [{"name": s.instance_name, "uuid": s.id}
                           for s in servers]
    return view


def aggregate(item, version):
    view = {"id": item.id, "name": item.name,
            "availability_zone": item.availability_zone,
            "hosts": list(item.hosts), "metadata": dict(item.metadata),
            "created_at": isotime(item.created_at, micro=True),
            "updated_at": isotime(item.updated_at, micro=True),
            "deleted_at": None, "deleted": False}
    if version >= (2, 41):
        view["uuid"] = item.uuid
    return view


def flavor(item, version, base_url):
    view = {"id": item.id, "name": item.name, "ram": item.ram,
            "disk": item.disk, "vcpus": item.vcpus,
            "OS-FLV-EXT-DATA:ephemeral": item.ephemeral,
            "OS-FLV-DISABLED:disabled": False,
            "swap": item.swap or "", "rxtx_factor": 1.0,
            "os-flavor-access:is_public": True,
            "links": link(base_url, "flavors", item.id)}
    if version >= (2, 55):
        view["description"] = None
    if version >= (2, 61):
        view["extra_specs"] = dict(item.extra_specs)
    return view


def nova_image(item, base_url):
    """The compute API's image proxy (GET /v2.1/images/{id}, < 2.36)."""
    return {"id": item.id, "name": item.name, "minDisk": item.min_disk,
            "minRam": item.min_ram, "progress": 100, "status": "ACTIVE",
            "metadata": dict(item.properties),
            "created": isotime(item.created_at),
            "updated": isotime(item.created_at),
            "OS-EXT-IMG-SIZE:size": item.size,
            "links": link(base_url, "images", item.id)}


def glance_image(item, base_url, owner):
    view = {"id": item.id, "name": item.name, "status": "active",
            "visibility": "public", "protected": False, "os_hidden": False,
            "container_format": "bare", "disk_format": "qcow2",
            "min_disk": item.min_disk, "min_ram": item.min_ram,
            "size": item.size, "virtual_size": None, "checksum": None,
            "owner": owner, "tags": [],
            "created_at": isotime(item.created_at),
            "updated_at": isotime(item.created_at),
            "self": f"/v2/images/{item.id}",
            "file": f"/v2/images/{item.id}/file",
            "schema": "/v2/schemas/image"}
    view.update(item.properties)
    return view
