"""The simulated cloud's state and Nova's compute-side semantics: hosts and
their nova-compute services, servers, migrations, instance actions,
aggregates, and what the conductor and the computes do after the API has
accepted an evacuation, a stop or a start.

Everything is guarded by one lock (Cloud.lock).  The HTTP layer (nova.py)
holds it while it reads or changes the state; background work runs on the
Timeline and takes the same lock."""

import dataclasses
import datetime
import hashlib
import itertools
import math
import threading
import time
import uuid

from instance_ha.simcloud import errors
from instance_ha.simcloud import states
from instance_ha.simcloud.calllog import CallLog
from instance_ha.simcloud.errors import NovaError
from instance_ha.simcloud.faults import FaultPlan
from instance_ha.simcloud.keystone import Identity
from instance_ha.simcloud.timeline import Timeline

NO_VALID_HOST = ("No valid host was found. There are not enough hosts "
                 "available.")

# When each step of an accepted evacuation happens, as a share of
# Settings.evacuation_time, in the order of Nova 34's compute manager
# (_do_rebuild_instance, then the resource tracker's finish_evacuation):
# after the spawn task_state is None and vm_state active while the host is
# still the source; a server kept stopped is then powered off; last the
# host changes and, right after it, the migration is marked done.  A
# reader that reads the server and then its migrations can see the old
# host beside a done migration.
EVACUATION_STEPS = (
    (0.2, "schedule"),       # conductor: pick a host, migration pre-migrating
    (0.5, "spawn"),          # destination compute: task rebuild_spawning
    (0.7, "after_spawn"),    # vm_state active, task_state None; host = source
    (0.8, "power_off"),      # kept stopped: task_state powering-off
    (0.9, "stopped"),        # kept stopped: vm_state stopped, power off
    (1.0, "finish"),         # host = destination, then migration done
)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None)


def isotime(moment, micro=False):
    """Nova's timestamps: 2026-11-21T06:05:17Z, or with microseconds
    (.isoformat()) where Nova serialises a datetime unformatted."""
    if moment is None:
        return None
    if micro:
        return moment.isoformat(timespec="microseconds")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Settings:
    evacuation_time: float = 1.0    # accepted -> migration done (measured
                                    # 0.6-1.5 s with the fake driver)
    power_time: float = 0.2         # os-stop / os-start duration
    service_down_time: float = 0.0  # heartbeat age that makes a service down
                                    # (Nova's default is 60 s)
    race_outcome: str = "error"     # the server after two racing evacuations
    max_limit: int = 1000           # [api] max_limit
    latency: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Flavor:
    id: str
    name: str
    vcpus: int = 1
    ram: int = 512
    disk: int = 1
    ephemeral: int = 0
    swap: int = 0
    extra_specs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Image:
    id: str
    name: str
    properties: dict = dataclasses.field(default_factory=dict)
    min_disk: int = 0
    min_ram: int = 0
    size: int = 21430272
    created_at: datetime.datetime = dataclasses.field(default_factory=utcnow)


@dataclasses.dataclass
class Service:
    id: int
    uuid: str
    host: str
    binary: str = "nova-compute"
    zone: str = "nova"
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False


@dataclasses.dataclass
class Host:
    name: str
    service: Service
    hypervisor_id: int
    hypervisor_uuid: str
    ip: str
    vcpus: int = 64
    memory_mb: int = 262144
    disk_gb: int = 4096
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    # The inventories' reserved amounts (Nova: reserved_host_cpus,
    # reserved_host_memory_mb, reserved_host_disk_mb).
    reserved_vcpus: int = 0
    reserved_memory_mb: int = 0
    reserved_disk_gb: int = 0
    alive: bool = True
    last_heartbeat: datetime.datetime = dataclasses.field(
        default_factory=utcnow)
    down_since: float | None = None        # monotonic time of the kill
    # consumer (server id) -> {resource class: amount}, as placement
    # holds them on the host's resource provider
    allocations: dict = dataclasses.field(default_factory=dict)
    # the resource provider's generation: bumped by each change of its
    # allocations
    generation: int = 1
    parked: list = dataclasses.field(default_factory=list)

    def allocate(self, consumer, resources):
        self.allocations[consumer] = dict(resources)
        self.generation += 1

    def release(self, consumer):
        if self.allocations.pop(consumer, None) is not None:
            self.generation += 1

    def usages(self):
        """{resource class: used} of every class of the inventories."""
        used = dict.fromkeys(self.inventories(), 0)
        for resources in self.allocations.values():
            for name, amount in resources.items():
                used[name] = used.get(name, 0) + amount
        return used

    def used(self):
        usages = self.usages()
        return usages["VCPU"], usages["MEMORY_MB"], usages["DISK_GB"]

    def inventories(self):
        """The compute node's inventories as Nova's resource tracker
        reports them to placement (max_unit: the total)."""
        def record(total, reserved, ratio):
            return {"total": total, "reserved": reserved, "min_unit": 1,
                    "max_unit": total, "step_size": 1,
                    "allocation_ratio": float(ratio)}
        return {"VCPU": record(self.vcpus, self.reserved_vcpus,
                               self.cpu_allocation_ratio),
                "MEMORY_MB": record(self.memory_mb, self.reserved_memory_mb,
                                    self.ram_allocation_ratio),
                "DISK_GB": record(self.disk_gb, self.reserved_disk_gb,
                                  self.disk_allocation_ratio)}

    def fits(self, resources):
        """Placement's capacity check of an allocation on this host."""
        inventories, usages = self.inventories(), self.usages()
        for name, amount in resources.items():
            inventory = inventories.get(name)
            if inventory is None or not (
                    inventory["min_unit"] <= amount <= inventory["max_unit"]):
                return False
            capacity = ((inventory["total"] - inventory["reserved"])
                        * inventory["allocation_ratio"])
            if usages[name] + amount > capacity:
                return False
        return True

    def free_ram(self):
        """What Nova's RAM weigher weighs: memory not reserved nor used."""
        return self.memory_mb - self.reserved_memory_mb - self.used()[1]


@dataclasses.dataclass
class Server:
    id: str
    name: str
    project_id: str
    user_id: str
    host: str | None
    flavor: Flavor
    image: Image | None
    vm_state: str = states.ACTIVE
    task_state: str | None = None
    power_state: int = states.RUNNING
    metadata: dict = dataclasses.field(default_factory=dict)
    locked: bool = False
    locked_by: str | None = None
    locked_reason: str | None = None
    number: int = 0
    availability_zone: str = "nova"
    key_name: str | None = None
    created_at: datetime.datetime = dataclasses.field(default_factory=utcnow)
    updated_at: datetime.datetime = dataclasses.field(default_factory=utcnow)
    launched_at: datetime.datetime = dataclasses.field(
        default_factory=utcnow)
    fault: dict | None = None

    @property
    def instance_name(self):
        return f"instance-{self.number:08x}"

    @property
    def status(self):
        return states.status(self.vm_state, self.task_state)

    def host_id(self):
        """hostId: sha224(project_id + host), '' without a host."""
        if not self.host:
            return ""
        return hashlib.sha224(
            (self.project_id + self.host).encode()).hexdigest()

    def touch(self):
        self.updated_at = utcnow()


@dataclasses.dataclass
class Migration:
    id: int
    uuid: str
    instance_uuid: str
    source_compute: str
    source_node: str
    project_id: str
    user_id: str
    flavor_id: str
    dest_compute: str | None = None
    dest_node: str | None = None
    dest_host: str | None = None
    status: str = "accepted"
    migration_type: str = "evacuation"
    created_at: datetime.datetime = dataclasses.field(default_factory=utcnow)
    updated_at: datetime.datetime | None = None

    def set_status(self, status):
        self.status = status
        self.updated_at = utcnow()


@dataclasses.dataclass
class InstanceAction:
    action: str
    instance_uuid: str
    request_id: str
    user_id: str
    project_id: str
    start_time: datetime.datetime = dataclasses.field(default_factory=utcnow)
    updated_at: datetime.datetime = dataclasses.field(default_factory=utcnow)
    message: str | None = None
    events: list = dataclasses.field(default_factory=list)

    def event(self, name, result, host=None):
        now = utcnow()
        self.events.append({"event": name, "start_time": now,
                            "finish_time": now, "result": result,
                            "host": host})
        self.updated_at = now
        if result == "Error":
            self.message = "Error"


@dataclasses.dataclass
class Aggregate:
    id: int
    uuid: str
    name: str
    availability_zone: str | None = None
    hosts: list = dataclasses.field(default_factory=list)
    metadata: dict = dataclasses.field(default_factory=dict)
    created_at: datetime.datetime = dataclasses.field(default_factory=utcnow)
    updated_at: datetime.datetime | None = None


@dataclasses.dataclass
class _Evacuation:
    server: Server
    migration: Migration
    action: InstanceAction
    requested_host: str | None
    force: bool
    target_state: str | None
    outcome: str | None
    keep_stopped: bool = False
    destination: Host | None = None
    racers: list = dataclasses.field(default_factory=list)


class Cloud:
    """The whole simulated cloud.  Use the methods below to build a
    topology, to inject faults (``faults``) and to read what happened
    (``calls``)."""

    def __init__(self, settings=None):
        self.lock = threading.RLock()
        self.settings = settings or Settings()
        self.faults = FaultPlan()
        self.calls = CallLog()
        self.hosts = {}
        self.servers = {}
        self.flavors = {}
        self.images = {}
        self.aggregates = {}
        self.migrations = []
        self.actions = {}
        self._servers_by_host = {}
        self._evacuations = {}
        self._ids = {kind: itertools.count(1) for kind in
                     ("service", "hypervisor", "server", "migration",
                      "aggregate", "flavor")}
        self.timeline = Timeline()
        self.identity = Identity()
        # Services without a compute host, listed by os-services only.
        self.control_services = [
            Service(id=next(self._ids["service"]), uuid=str(uuid.uuid4()),
                    host="controller", binary=binary, zone="internal")
            for binary in ("nova-scheduler", "nova-conductor")]

    def close(self):
        self.timeline.close()

    # -- building the topology -------------------------------------------

    def add_flavor(self, name, flavor_id=None, **fields):
        with self.lock:
            if flavor_id is None:
                flavor_id = str(next(self._ids["flavor"]))
            flavor = Flavor(id=str(flavor_id), name=name, **fields)
            self.flavors[flavor.id] = flavor
            return flavor

    def add_image(self, name, image_id=None, **fields):
        with self.lock:
            image = Image(id=image_id or str(uuid.uuid4()), name=name,
                          **fields)
            self.images[image.id] = image
            return image

    def add_host(self, name, zone="nova", disabled=False,
                 disabled_reason=None, forced_down=False, **capacity):
        with self.lock:
            if name in self.hosts:
                raise ValueError(f"host {name} exists")
            number = next(self._ids["hypervisor"])
            service = Service(id=next(self._ids["service"]),
                              uuid=str(uuid.uuid4()), host=name, zone=zone,
                              disabled=disabled,
                              disabled_reason=disabled_reason,
                              forced_down=forced_down)
            host = Host(name=name, service=service, hypervisor_id=number,
                        hypervisor_uuid=str(uuid.uuid4()),
                        ip=f"192.0.2.{number % 250 + 1}", **capacity)
            self.hosts[name] = host
            self._servers_by_host[name] = {}
            return host

    def add_server(self, name, host, flavor=None, image=None,
                   vm_state=states.ACTIVE, task_state=None, metadata=None,
                   project_id=None, user_id=None, locked=False,
                   locked_reason=None, server_id=None, power_state=None):
        """A server already built on ``host`` (None: shelved offloaded)."""
        with self.lock:
            if vm_state not in states.VM_STATES:
                raise ValueError(f"unknown vm_state {vm_state!r}")
            if host is not None and host not in self.hosts:
                raise ValueError(f"unknown host {host!r}")
            flavor = self._flavor(flavor)
            image = self._image(image)
            project_id = project_id or self.identity.member_project.id
            user_id = user_id or self.identity.owner_of(project_id)
            if power_state is None:
                power_state = states.POWER_STATE_FOR_VM_STATE[vm_state]
            server = Server(
                id=server_id or str(uuid.uuid4()), name=name,
                project_id=project_id, user_id=user_id, host=host,
                flavor=flavor, image=image, vm_state=vm_state,
                task_state=task_state, power_state=power_state,
                metadata=dict(metadata or {}), locked=locked,
                locked_by="admin" if locked else None,
                locked_reason=locked_reason,
                number=next(self._ids["server"]),
                availability_zone=(self.hosts[host].service.zone
                                   if host else "nova"))
            self.servers[server.id] = server
            if host is not None:
                self._servers_by_host[host][server.id] = server
                self.hosts[host].allocate(server.id, _usage(server))
            return server

    def add_aggregate(self, name, hosts=(), metadata=None,
                      availability_zone=None):
        with self.lock:
            aggregate = Aggregate(id=next(self._ids["aggregate"]),
                                  uuid=str(uuid.uuid4()), name=name,
                                  availability_zone=availability_zone,
                                  hosts=list(hosts),
                                  metadata=dict(metadata or {}))
            if availability_zone:
                aggregate.metadata["availability_zone"] = availability_zone
            self.aggregates[aggregate.id] = aggregate
            return aggregate

    def _flavor(self, ref):
        if isinstance(ref, Flavor):
            return ref
        if ref is None:
            if not self.flavors:
                self.add_flavor("m1.small", vcpus=1, ram=2048, disk=20)
            return next(iter(self.flavors.values()))
        for flavor in self.flavors.values():
            if ref in (flavor.id, flavor.name):
                return flavor
        raise ValueError(f"unknown flavor {ref!r}")

    def _image(self, ref):
        if isinstance(ref, Image) or ref is None and not self.images:
            return ref
        if ref is None:
            return next(iter(self.images.values()))
        for image in self.images.values():
            if ref in (image.id, image.name):
                return image
        raise ValueError(f"unknown image {ref!r}")

    # -- faults of the machines --------------------------------------------

    def kill_host(self, name):
        """The host dies: its nova-compute stops heartbeating."""
        with self.lock:
            host = self.hosts[name]
            if host.alive:
                host.alive = False
                host.down_since = time.monotonic()

    def revive_host(self, name):
        """The host is back and nova-compute restarts: its `done`
        evacuation migrations become `completed` (the evacuated guests and
        their allocations are cleaned up here), work that waited for it
        runs."""
        with self.lock:
            host = self.hosts[name]
            host.alive = True
            host.down_since = None
            host.last_heartbeat = utcnow()
            for migration in self.migrations:
                if (migration.source_compute == name
                        and migration.migration_type == "evacuation"
                        and migration.status == "done"):
                    migration.set_status("completed")
                    host.release(migration.instance_uuid)
            parked, host.parked = host.parked, []
        for callback, args in parked:
            self.timeline.call_later(0, callback, *args)

    def service_is_up(self, host):
        if host.service.forced_down:
            return False
        if host.alive:
            return True
        return (time.monotonic() - host.down_since
                < self.settings.service_down_time)

    def touch_service(self, host):
        """An API update of a service: Nova's save() bumps its updated_at
        as a heartbeat does."""
        host.last_heartbeat = utcnow()

    def heartbeat(self, host):
        """updated_at of the service: now while alive, else the last."""
        if host.alive:
            host.last_heartbeat = utcnow()
        return host.last_heartbeat

    # -- queries -------------------------------------------------------------

    def servers_on(self, host_name):
        return list(self._servers_by_host.get(host_name, {}).values())

    def record_action(self, context, server, name):
        action = InstanceAction(
            action=name, instance_uuid=server.id,
            request_id=context.request_id or "req-" + str(uuid.uuid4()),
            user_id=context.user_id, project_id=context.project_id)
        self.actions.setdefault(server.id, []).append(action)
        return action

    # -- compute API: checks ----------------------------------------------

    def check_action(self, action, server, context):
        """check_instance_lock / _host / _state as nova/compute/api.py
        applies them; raises the NovaError the API layer answers."""
        rule = states.ACTION_RULES[action]
        if rule.lock and server.locked and not context.is_admin:
            raise NovaError(409, f"Instance {server.id} is locked")
        if rule.host and not server.host:
            raise NovaError(409, f"Instance {server.id} is not ready")
        if (rule.vm_states is not None
                and server.vm_state not in rule.vm_states):
            raise errors.invalid_state(action, server.id, "vm_state",
                                       server.vm_state)
        if (rule.task_states is not None
                and server.task_state not in rule.task_states):
            raise errors.invalid_state(action, server.id, "task_state",
                                       server.task_state)

    # -- compute API: evacuate -------------------------------------------

    def evacuate(self, context, server, host=None, force=False,
                 target_state=None):
        """compute.api.API.evacuate, after the API layer's checks."""
        self.check_action("evacuate", server, context)
        source = self.hosts[server.host]
        if self.service_is_up(source):
            raise NovaError(400, f"Compute service of {source.name} is "
                                 "still in use.")
        server.task_state = states.REBUILDING
        server.touch()
        action = self.record_action(context, server, "evacuate")
        migration = Migration(
            id=next(self._ids["migration"]), uuid=str(uuid.uuid4()),
            instance_uuid=server.id, source_compute=source.name,
            source_node=source.name, project_id=server.project_id,
            user_id=server.user_id, flavor_id=server.flavor.id,
            dest_compute=host)
        self.migrations.append(migration)
        evacuation = _Evacuation(
            server=server, migration=migration, action=action,
            requested_host=host, force=force, target_state=target_state,
            outcome=self.faults.evacuation_outcome((server.id,
                                                    server.name)),
            keep_stopped=keeps_stopped(server.vm_state, target_state))
        running = self._evacuations.get(server.id)
        if running is not None:
            # Measured: the second request is accepted and the two rebuilds
            # race; the conductor takes the older `accepted` migration, so
            # this one's stays `accepted` for good.
            running.racers.append(evacuation)
            return migration
        self._evacuations[server.id] = evacuation
        self._next_step(evacuation, 0)
        return migration

    def _next_step(self, evacuation, index, previous=0.0):
        share, step = EVACUATION_STEPS[index]
        delay = (share - previous) * self.settings.evacuation_time
        self.timeline.call_later(delay, self._evacuation_step, evacuation,
                                 index)

    def _evacuation_step(self, evacuation, index):
        with self.lock:
            share, step = EVACUATION_STEPS[index]
            carry_on = getattr(self, "_evac_" + step)(evacuation)
            if carry_on and index + 1 < len(EVACUATION_STEPS):
                self._next_step(evacuation, index + 1, share)

    def _evac_schedule(self, evacuation):
        server, migration = evacuation.server, evacuation.migration
        destination = self._schedule(server, evacuation.requested_host,
                                     evacuation.force)
        if destination is None:
            migration.set_status("error")
            self._fail_evacuation(evacuation, NO_VALID_HOST,
                                  "conductor_rebuild_server")
            return False
        if not destination.alive:
            # The rebuild is cast to a compute that is not running: it
            # waits in the queue until that compute starts.
            destination.parked.append((self._evacuation_step,
                                       (evacuation, 0)))
            return False
        evacuation.destination = destination
        destination.allocate(server.id, _usage(server))
        migration.dest_compute = destination.name
        migration.dest_node = destination.name
        migration.dest_host = destination.ip
        migration.set_status("pre-migrating")
        return True

    def _evac_spawn(self, evacuation):
        server = evacuation.server
        if evacuation.outcome == "error":
            evacuation.migration.set_status("failed")
            evacuation.destination.release(server.id)
            self._fail_evacuation(
                evacuation, "Injected failure: the rebuild failed on "
                            f"{evacuation.destination.name}.",
                "compute_rebuild_instance")
            return False
        server.task_state = states.REBUILD_SPAWNING
        server.touch()
        return True

    def _evac_after_spawn(self, evacuation):
        server = evacuation.server
        server.vm_state = states.ACTIVE
        server.power_state = states.RUNNING
        server.task_state = None
        server.fault = None
        server.touch()
        return True

    def _evac_power_off(self, evacuation):
        if evacuation.keep_stopped:
            evacuation.server.task_state = states.POWERING_OFF
            evacuation.server.touch()
        return True

    def _evac_stopped(self, evacuation):
        server = evacuation.server
        if evacuation.keep_stopped:
            server.vm_state = states.STOPPED
            server.power_state = states.SHUTDOWN
            server.task_state = None
            server.touch()
        return True

    def _evac_finish(self, evacuation):
        server, destination = evacuation.server, evacuation.destination
        self._servers_by_host[server.host].pop(server.id, None)
        server.host = destination.name
        server.availability_zone = destination.service.zone
        self._servers_by_host[destination.name][server.id] = server
        server.touch()
        evacuation.migration.set_status("done")
        evacuation.action.event("compute_rebuild_instance", "Success",
                                evacuation.destination.name)
        self._evacuations.pop(server.id, None)
        if evacuation.racers and self.settings.race_outcome == "error":
            for racer in evacuation.racers:
                racer.action.event("compute_rebuild_instance", "Error",
                                   evacuation.destination.name)
            server.vm_state = states.ERROR
            server.power_state = states.NOSTATE
            server.fault = _fault(
                500, f"Instance {server.instance_name} already exists.")
            server.touch()
        return False

    def _fail_evacuation(self, evacuation, message, event):
        server = evacuation.server
        server.vm_state = states.ERROR
        server.task_state = None
        server.fault = _fault(500, message)
        server.touch()
        evacuation.action.event(event, "Error")
        self._evacuations.pop(server.id, None)

    def _schedule(self, server, requested, force):
        """The destination: a forced host as given, else the scheduler's
        choice among up, enabled hosts with room (most free RAM first,
        as Nova's RAM weigher spreads), excluding the source."""
        if requested and force:
            host = self.hosts[requested]
            return host if host.fits(_usage(server)) else None
        candidates = [
            host for host in self.hosts.values()
            if host.name != server.host
            and (requested is None or host.name == requested)
            and self.service_is_up(host) and not host.service.disabled
            and host.fits(_usage(server))]
        if not candidates:
            return None
        return min(candidates,
                   key=lambda h: (-h.free_ram(), h.hypervisor_id))

    # -- compute API: power --------------------------------------------

    def stop(self, context, server):
        self.check_action("stop", server, context)
        self._power(context, server, "stop", states.POWERING_OFF,
                    states.STOPPED)

    def start(self, context, server):
        self.check_action("start", server, context)
        self._power(context, server, "start", states.POWERING_ON,
                    states.ACTIVE)

    def _power(self, context, server, name, task_state, vm_state):
        server.task_state = task_state
        server.touch()
        action = self.record_action(context, server, name)
        self.timeline.call_later(self.settings.power_time, self._power_done,
                                 server, task_state, vm_state, action)

    def _power_done(self, server, task_state, vm_state, action):
        with self.lock:
            host = self.hosts.get(server.host)
            if host is not None and not host.alive:
                host.parked.append((self._power_done, (server, task_state,
                                                       vm_state, action)))
                return
            if server.task_state != task_state:
                return
            server.vm_state = vm_state
            server.power_state = states.POWER_STATE_FOR_VM_STATE[vm_state]
            server.task_state = None
            server.touch()
            action.event(f"compute_{action.action}_instance", "Success",
                         server.host)

    # -- compute API: the rest -----------------------------------------

    def reset_state(self, context, server, vm_state):
        action = self.record_action(context, server, "resetState")
        server.vm_state = vm_state
        server.task_state = None
        server.touch()
        action.event("api_reset_state", "Success")

    def lock_server(self, context, server, reason=None):
        is_owner = server.project_id == context.project_id
        if server.locked and is_owner:
            return
        self.record_action(context, server, "lock")
        server.locked = True
        server.locked_by = "owner" if is_owner else "admin"
        server.locked_reason = reason
        server.touch()

    def unlock_server(self, context, server):
        self.record_action(context, server, "unlock")
        server.locked = False
        server.locked_by = None
        server.locked_reason = None
        server.touch()

    def check_force_up(self, host):
        """services.py _check_for_evacuations."""
        done = [m for m in self.migrations
                if m.source_compute == host.name
                and m.migration_type == "evacuation"
                and m.status == "done"]
        if done:
            raise NovaError(
                400, f"Unable to force up host {host.name} as `done` "
                     "evacuation migration records remain associated "
                     "with the host. Ensure the compute service has "
                     "been restarted, allowing these records to move "
                     "to `completed` before retrying this request.")

    def set_forced_down(self, host, forced_down):
        host.service.forced_down = forced_down


def keeps_stopped(vm_state, target_state):
    """Whether Nova 34 brings an evacuated server back stopped: it was
    stopped, or the API asked for stopped (>= 2.95) and it was not in
    error (compute/manager.py, _do_rebuild_instance)."""
    if target_state == states.STOPPED and vm_state != states.ERROR:
        return True
    return vm_state == states.STOPPED


def _usage(server):
    """The allocation Nova's scheduler makes for the server
    (resources_from_flavor): VCPU, MEMORY_MB, and DISK_GB = ephemeral +
    swap rounded up to GB + the root disk unless the server boots from
    volume (no image); amounts of 0 left out.  Flavor extra specs
    (resources:*, hw:cpu_policy) are not applied."""
    flavor = server.flavor
    disk = flavor.ephemeral + math.ceil((flavor.swap or 0) / 1024)
    if server.image is not None:
        disk += flavor.disk
    resources = {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram,
                 "DISK_GB": disk}
    return {name: amount for name, amount in resources.items() if amount}


def _fault(code, message):
    return {"code": code, "message": message, "created": utcnow(),
            "details": ""}
