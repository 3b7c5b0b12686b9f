"""libvirt's side of the instance monitor: a read-only connection, its
domain lifecycle events (virConnectDomainEventRegisterAny, as
masakari-monitors' instancemonitor registers them) and the current state
of every domain.

A domain is a Nova instance when it carries Nova's metadata element
(namespace NOVA_NAMESPACE, which Nova's libvirt driver writes into every
domain it defines); its uuid is then the instance's uuid.  Events arrive
on libvirt's event-loop thread and are handed over through a queue: the
monitor's own thread does every other libvirt call.
"""

import logging
import queue
import threading

from instance_ha.computemonitor import instances
from instance_ha.computemonitor import lifecycle

LOG = logging.getLogger(__name__)
NOVA_NAMESPACE = "http://openstack.org/xmlns/libvirt/nova/1.1"
DEFAULT_URI = "qemu:///system"
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3

_event_loop_lock = threading.Lock()
_event_loop_started = False


def _start_event_loop(libvirt):
    """libvirt's default event loop, once per process, on its own
    thread (it must be registered before the first connection)."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run():
            while True:
                libvirt.virEventRunDefaultImpl()
        threading.Thread(target=run, name="libvirt-events",
                         daemon=True).start()
        _event_loop_started = True


class LibvirtDomains:
    """``events``: a queue of (uuid, name, event name, detail name), or
    ``None`` when the connection closed (libvirtd stopped or restarted)."""

    def __init__(self, uri=DEFAULT_URI, libvirt=None):
        if libvirt is None:
            import libvirt
        self.libvirt = libvirt
        self.uri = uri
        self.names = lifecycle.Names(libvirt)
        self.events = queue.Queue()
        self._conn = None
        self._callback_id = None
        self._servers = {}
        _start_event_loop(libvirt)

    def connect(self):
        """Open the connection and subscribe; raises libvirt.libvirtError."""
        conn = self.libvirt.openReadOnly(self.uri)
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
            conn.registerCloseCallback(self._closed, None)
            self._callback_id = conn.domainEventRegisterAny(
                None, self.libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                self._lifecycle, None)
        except self.libvirt.libvirtError:
            conn.close()
            raise
        self._conn = conn
        self._servers.clear()
        LOG.info("connected to libvirt at %s", self.uri)

    @property
    def connected(self):
        if self._conn is None:
            return False
        try:
            return self._conn.isAlive() == 1
        except self.libvirt.libvirtError:
            return False

    def close(self):
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._callback_id is not None:
                conn.domainEventDeregisterAny(self._callback_id)
            conn.unregisterCloseCallback()
            conn.close()
        except self.libvirt.libvirtError:
            pass

    def _lifecycle(self, conn, dom, event, detail, opaque):
        event_name, detail_name = self.names.event(event, detail)
        self.events.put((dom.UUIDString(), dom.name(), event_name,
                         detail_name))

    def _closed(self, conn, reason, opaque):
        LOG.warning("libvirt connection to %s closed (reason %s)",
                    self.uri, reason)
        self.events.put(None)

    # -- the monitor's thread ------------------------------------------------

    def domain(self, uuid, name):
        """instances.Domain for ``uuid``: its Nova instance when the
        domain carries Nova's metadata (looked up once per domain and
        connection).  Raises libvirt.libvirtError when libvirt cannot
        answer (the connection is going): the caller reconnects."""
        if uuid not in self._servers:
            if self._conn is None:
                raise ConnectionError(f"no libvirt connection to look up "
                                      f"domain {name}")
            try:
                dom = self._conn.lookupByUUIDString(uuid)
                self._servers[uuid] = self._server_of(dom)
            except self.libvirt.libvirtError as exc:
                if exc.get_error_code() != self.libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                LOG.warning("domain %s (%s) is gone, cannot read its "
                            "metadata: %s", name, uuid, exc)
                return instances.Domain(uuid=uuid, name=name, server=None)
        return instances.Domain(uuid=uuid, name=name,
                                server=self._servers[uuid])

    def _server_of(self, dom):
        """The domain's uuid when it has Nova's metadata, None when it has
        none.  Any other error (a connection that died under the call)
        is raised, never taken for "not a Nova instance"."""
        try:
            dom.metadata(self.libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                         NOVA_NAMESPACE)
        except self.libvirt.libvirtError as exc:
            if exc.get_error_code() == \
                    self.libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return None
            raise
        return dom.UUIDString()

    def states(self):
        """(Domain, state name, reason name) of every domain, persistent
        or running."""
        found = []
        for dom in self._conn.listAllDomains(0):
            uuid = dom.UUIDString()
            if uuid not in self._servers:
                self._servers[uuid] = self._server_of(dom)
            state, reason = dom.state()
            found.append((instances.Domain(uuid=uuid, name=dom.name(),
                                           server=self._servers[uuid]),
                          *self.names.state(state, reason)))
        return found
