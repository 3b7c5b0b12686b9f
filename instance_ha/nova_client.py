"""python-novaclient for the actions: explicit microversions, bounded
retries of transient failures, and one clear error for everything else.

Microversions: the client negotiates once, min(server max, novaclient max)
(novaclient refuses ``2.latest``), and each call picks the version its
behaviour needs below that (see the constants).  Negotiated versions are
remembered per compute endpoint for the life of the process.

Retries: connection failures and timeouts, HTTP 502/503/504 and a 409
saying a task is in progress are retried with exponential backoff until
RETRY_BUDGET seconds have passed.  What is retried is a whole *attempt*:
the actions' look-then-act functions, so a request that reached Nova
but whose answer was lost is looked at again, never blindly sent twice.
"""

import logging
import threading
import time

from keystoneauth1 import exceptions as ks_exceptions
from novaclient import api_versions
from novaclient import client as nova_client_factory
from novaclient import exceptions as nova_exceptions

from instance_ha import cloud_session

LOG = logging.getLogger(__name__)

V = api_versions.APIVersion
MINIMUM = V("2.1")
# Real Nova stops an evacuated ACTIVE server at >= 2.95 (measured).
EVACUATE_MAX = V("2.94")
# onSharedStorage exists below 2.14; above, Nova checks the storage itself.
SHARED_STORAGE_MAX = V("2.13")
FORCE_DOWN_MIN = V("2.11")
SERVICE_UUID_MIN = V("2.53")
LOCKED_MIN = V("2.9")
LOCKED_REASON_MIN = V("2.73")
MIGRATION_TYPE_MIN = V("2.23")

TRANSIENT_STATUSES = (502, 503, 504)
RETRY_BUDGET = 60.0
RETRY_INITIAL_DELAY = 0.5
RETRY_MAX_DELAY = 8.0

_negotiated = {}
_negotiated_lock = threading.Lock()


class NovaError(Exception):
    """An expected failure, reported as the action's error."""

    def __init__(self, reason, server=None, host=None, code=None):
        super().__init__(reason)
        self.reason = reason
        self.server = server
        self.host = host
        self.code = code

    def as_dict(self, server=None, host=None):
        return {"server": self.server or server,
                "host": self.host or host,
                "reason": self.reason,
                "code": self.code}


def status_of(exc):
    """The HTTP status an exception carries, or None."""
    for name in ("code", "http_status", "status_code"):
        value = getattr(exc, name, None)
        if isinstance(value, int):
            return value
    return None


def message_of(exc):
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or not message:
        message = str(exc) or type(exc).__name__
    return " ".join(message.split())


def is_transient(exc):
    if isinstance(exc, ks_exceptions.SSLError):
        return False
    if isinstance(exc, ks_exceptions.ConnectionError):
        return True
    code = status_of(exc)
    if code in TRANSIENT_STATUSES:
        return True
    if code == 500:
        return getattr(exc, "retryable_read", False)
    return code == 409 and "while it is in task_state" in message_of(exc)


def describe(exc, what):
    """One line naming the operation and carrying Nova's own message."""
    if isinstance(exc, ks_exceptions.ConnectionError):
        return f"{what}: no answer from the cloud ({message_of(exc)})"
    code = status_of(exc)
    if code is not None:
        return f"{what}: HTTP {code}: {message_of(exc)}"
    return f"{what}: {message_of(exc)}"


class Nova:
    """One cloud's compute API at the microversions each call needs."""

    def __init__(self, cloud, budget=None):
        self.cloud = cloud
        self.budget = RETRY_BUDGET if budget is None else budget
        self._clients = {}
        self._version = None

    @classmethod
    def from_context(cls, context):
        return cls(cloud_session.get(context))

    # -- microversions --------------------------------------------------

    def version(self):
        """The negotiated microversion (server max, capped by novaclient)."""
        if self._version is None:
            key = self._endpoint_key()
            with _negotiated_lock:
                known = _negotiated.get(key)
            if known is None:
                probe = self._make(MINIMUM)
                known = self.retrying(
                    "negotiating the compute API microversion",
                    lambda: api_versions.discover_version(
                        probe, V("2.latest")))
                with _negotiated_lock:
                    _negotiated[key] = known
            self._version = known
        return self._version

    def _endpoint_key(self):
        kwargs = self.cloud.client_kwargs("compute")
        if "endpoint_override" in kwargs:
            return kwargs["endpoint_override"]
        return self.cloud.endpoint("compute")

    def client(self, at_most=None, at_least=None, what="this operation"):
        """A novaclient Client at min(negotiated, at_most)."""
        version = self.version()
        if at_most is not None and version > at_most:
            version = at_most
        if at_least is not None and version < at_least:
            raise NovaError(
                f"{what} needs compute API microversion "
                f"{at_least.get_string()}; the cloud offers "
                f"{version.get_string()}")
        return self._make(version)

    def _make(self, version):
        name = version.get_string()
        client = self._clients.get(name)
        if client is None:
            client = nova_client_factory.Client(
                version, **self.cloud.client_kwargs("compute"))
            self._clients[name] = client
        return client

    # -- calls ------------------------------------------------------------

    def retrying(self, what, attempt, server=None, host=None):
        """attempt()'s value, retrying transient failures within the budget;
        NovaError(what + Nova's message) for anything else."""
        deadline = time.monotonic() + self.budget
        delay = RETRY_INITIAL_DELAY
        while True:
            try:
                return attempt()
            except NovaError as exc:
                exc.server = exc.server or server
                exc.host = exc.host or host
                raise
            except (nova_exceptions.ClientException,
                    nova_exceptions.UnsupportedVersion,
                    ks_exceptions.ClientException) as exc:
                if (not is_transient(exc)
                        or time.monotonic() + delay > deadline):
                    raise NovaError(describe(exc, what), server, host,
                                    status_of(exc)) from None
                LOG.warning("%s: %s; retrying in %.1f s", what,
                            describe(exc, "transient failure"), delay)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)

    def get(self, path, client=None):
        """GET a compute API path; the decoded body.  A 500 answered to a
        read is marked retryable: the read changed nothing (a 500 answered
        to a POST may have been carried out, and is final)."""
        client = client or self.client()
        try:
            _, body = client.client.get(path)
        except nova_exceptions.ClientException as exc:
            if status_of(exc) == 500:
                exc.retryable_read = True
            raise
        return body

    def post(self, path, body, client=None):
        client = client or self.client()
        _, answer = client.client.post(path, body=body)
        return answer

    def put(self, path, body, client=None):
        client = client or self.client()
        _, answer = client.client.put(path, body=body)
        return answer

    # -- reads every action shares ----------------------------------------

    def server(self, server_id, client=None):
        """The server's detail (a dict)."""
        return self.get(f"/servers/{server_id}", client)["server"]

    def compute_service(self, host, client=None):
        """The nova-compute service record of host; NovaError if none."""
        body = self.get(f"/os-services?host={_quote(host)}"
                        "&binary=nova-compute", client)
        services = [s for s in body.get("services", [])
                    if s.get("host") == host
                    and s.get("binary") == "nova-compute"]
        if not services:
            raise NovaError(f"no nova-compute service on host {host}",
                            host=host, code=404)
        return services[0]

    def evacuations(self, server_id, client=None):
        """The server's evacuation migrations, newest first."""
        client = client or self.client()
        query = f"/os-migrations?instance_uuid={_quote(server_id)}"
        if client.api_version >= MIGRATION_TYPE_MIN:
            query += "&migration_type=evacuation"
        migrations = self.get(query, client).get("migrations", [])
        evacuations = [m for m in migrations
                       if m.get("migration_type", "evacuation")
                       == "evacuation"
                       and m.get("instance_uuid") == server_id]
        evacuations.sort(key=lambda m: (m.get("created_at") or "",
                                        m.get("id") or 0), reverse=True)
        return evacuations


def _quote(value):
    from urllib import parse

    return parse.quote(str(value), safe="")


def clear_negotiated():
    with _negotiated_lock:
        _negotiated.clear()


# -- reading a server's detail ----------------------------------------------

def host_of(server):
    return server.get("OS-EXT-SRV-ATTR:host")


def vm_state_of(server):
    return server.get("OS-EXT-STS:vm_state")


def task_state_of(server):
    return server.get("OS-EXT-STS:task_state")


def power_state_of(server):
    return server.get("OS-EXT-STS:power_state")


def fault_of(server):
    fault = server.get("fault") or {}
    return fault.get("message")
