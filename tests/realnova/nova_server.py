"""Real Nova in one process, served over HTTP on 127.0.0.1, for tests.

Run with the python of the venv tools/realnova-venv.sh builds (nova 34,
placement 16), never the project's: this program imports Nova and nothing
of instance_ha.

Nova's own functional-test fixtures assemble the cloud: the API and cell
databases, placement, fake RPC and notifier, the conductor, the scheduler,
one nova-compute service per host on the fake virt driver, and the compute
API's WSGI application (``OSAPIFixture``).  This program serves that
application on a real TCP socket behind a small WSGI layer that

* turns ``X-Auth-Token: admin:<project>`` / ``member:<project>`` (optionally
  ``:<user>``) into the headers Nova's stubbed Keystone context reads; no
  token, or another one: 401.  The version documents need no token.
  With ``--keystone FILE`` instead: the tokens of a real Keystone only,
  validated by keystonemiddleware's auth_token (FILE: its
  ``[keystone_authtoken]`` settings as JSON), and Nova's own Keystone
  context (``RequestContext.from_environ``: is_admin by the policy's
  ``context_is_admin``) in place of the fixture's stub, so that Nova's
  default policy decides on the token's roles as in production;
* records each compute API request (method, path and query, status,
  requested microversion, project) in a bounded log;
* serves the placement API of the cloud (the service Nova's scheduler
  and computes report to) under /placement: placement's own WSGI
  pipeline with its noauth2 strategy, which takes the same tokens
  (``admin:<project>`` is placement's admin; a member has no placement
  role, as in a real cloud); its requests are logged too;
* serves a control API under /_control/ (JSON, no auth: the socket is on
  the loopback only) that drives the cloud the way real life does: servers
  created through Nova's API in a given state on a given host, a compute
  host crashed (its service stopped: heartbeats end, its VMs stay defined)
  and restarted as after a reboot, hosts added, the request log read.

It prints one JSON line on stdout once it serves, logs to --log-file, and
exits on SIGTERM.  Nova runs under eventlet, as its test runner does by
default; OS_NOVA_DISABLE_EVENTLET_PATCHING=1 selects native threads.
"""

import argparse
import collections
import itertools
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import urllib.parse
import warnings

NOVA_PREFIX = "/v2.1"
CONTROL_PREFIX = "/_control"
# The cloud's placement (the same service and database Nova's scheduler
# and computes use) under this prefix of the socket.
PLACEMENT_PREFIX = "/placement"
DEFAULT_PROJECT = "demo"
ADMIN_PROJECT = "admin"
ADMIN_ROLES = "reader,member,admin"
MEMBER_ROLES = "reader,member"
# Sent by the control API's own calls; latest at the time of nova 34.
CONTROL_MICROVERSION = "latest"
STATES = ("active", "stopped", "paused", "suspended", "rescued",
          "shelved_offloaded", "error", "resized", "resized_stopped",
          "locked")
# Nova status of each state, once reached with no task in progress.
STATUS_OF = {"active": "ACTIVE", "stopped": "SHUTOFF", "paused": "PAUSED",
             "suspended": "SUSPENDED", "rescued": "RESCUE",
             "shelved_offloaded": "SHELVED_OFFLOADED", "error": "ERROR",
             "resized": "VERIFY_RESIZE", "resized_stopped": "VERIFY_RESIZE",
             "locked": "ACTIVE"}
# Nova's version documents, readable without a token.
VERSION_PATHS = ("", "/", "/v2", "/v2/", "/v2.1", "/v2.1/")

LOG = logging.getLogger("realnova")


class ControlError(Exception):
    """A control call that cannot be done: its HTTP status and why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# -- assembling Nova -----------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--computes", default="3",
        help="compute hosts: a comma-separated list of names, or a count "
             "N for compute1..N (default 3)")
    parser.add_argument(
        "--driver", default="fake.MediumFakeDriver",
        help="virt driver: fake.MediumFakeDriver (10 vCPU, 8 GB a host: "
             "NoValidHost once full) or fake.FakeDriver (large)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0,
                        help="0: a port the kernel picks, kept bound")
    parser.add_argument("--service-down-time", type=float, default=6,
                        help="seconds without a heartbeat before Nova sees "
                             "a compute down")
    parser.add_argument("--report-interval", type=float, default=1,
                        help="seconds between a service's heartbeats")
    parser.add_argument("--log-file", default=None)
    parser.add_argument("--debug", action="store_true",
                        help="log Nova's DEBUG lines too")
    parser.add_argument("--request-log-size", type=int, default=20000)
    parser.add_argument(
        "--keystone", default=None, metavar="FILE",
        help="a JSON object of keystonemiddleware [keystone_authtoken] "
             "settings (auth_url, www_authenticate_uri, auth_type, "
             "username, password, ...): take that Keystone's tokens only")
    args = parser.parse_args(argv)
    if args.computes.isdigit():
        args.computes = [f"compute{i}"
                         for i in range(1, int(args.computes) + 1)]
    else:
        args.computes = [h for h in args.computes.split(",") if h]
    if args.report_interval >= args.service_down_time:
        parser.error("--report-interval must be below --service-down-time")
    return args


def _setup_imports():
    """testdeps first on sys.path, then Nova's monkey patching, as Nova's
    test runner does (importing nova.tests.functional applies it)."""
    testdeps = os.environ.get("REALNOVA_TESTDEPS") or os.path.join(
        sys.prefix, "testdeps")
    if os.path.isdir(testdeps) and testdeps not in sys.path:
        sys.path.insert(0, testdeps)
    hook = sys.excepthook
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import nova.tests.functional  # noqa: F401
    return hook


def build_cloud(args):
    """Nova's ProviderUsageBaseTestCase, set up, with the computes."""
    from nova.tests.functional import integrated_helpers
    from sqlalchemy import exc as sqla_exc

    class Cloud(integrated_helpers.ProviderUsageBaseTestCase):
        compute_driver = args.driver

        def setUp(self):
            # Before setUp: the conductor and scheduler are created there
            # and read report_interval then; ConfFixture keeps overrides.
            paste = os.path.join(sys.prefix, "etc", "nova", "api-paste.ini")
            self.flags(api_paste_config=paste, group="wsgi")
            self.flags(service_down_time=args.service_down_time,
                       report_interval=args.report_interval,
                       allow_resize_to_same_host=True,
                       shelved_offload_time=0)
            self.flags(instances=-1, cores=-1, ram=-1, group="quota")
            # Nova's production default; the tests' 'error' turns a
            # response-schema mismatch into a 500.
            self.flags(response_validation="warn", group="api")
            super().setUp()

        def runTest(self):
            pass

    case = Cloud()
    case.setUp()
    # WarningsFixture turns SQLAlchemy deprecations raised from nova into
    # errors; SQLAlchemy 2.1 deprecates orm.noload(), which nova uses.
    warnings.filterwarnings("ignore", category=sqla_exc.SADeprecationWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for host in args.computes:
        case._start_compute(host=host)
    return case


# -- a real Keystone in front ---------------------------------------------

def read_keystone_settings(path):
    """The --keystone file's settings (a JSON object of strings)."""
    with open(path, encoding="utf-8") as f:
        settings = json.load(f)
    if not isinstance(settings, dict) or "auth_url" not in settings:
        raise SystemExit(f"{path}: not a JSON object with auth_url")
    return {str(k): str(v) for k, v in settings.items()}


def use_nova_keystone_context():
    """Undo OSAPIFixture's stub of NovaKeystoneContext._create_context:
    Nova's own, which reads keystonemiddleware's headers (X-User-Id,
    X-Project-Id, X-Roles, ...) and sets is_admin from the policy."""
    from nova import context as nova_context
    from nova.api import auth as nova_auth

    def create_context(env, **kwargs):
        return nova_context.RequestContext.from_environ(env, **kwargs)

    nova_auth.NovaKeystoneContext._create_context = staticmethod(
        create_context)


class Identified:
    """Inside auth_token: the validated user and project into the
    request log; for placement (``as_placement_noauth``), the identity in
    the form placement's noauth strategy reads (``user:project``, X-Roles
    as auth_token set them)."""

    def __init__(self, app, as_placement_noauth=False):
        self.app = app
        self.as_placement_noauth = as_placement_noauth

    def __call__(self, environ, start_response):
        entry = environ.get("realnova.log_entry")
        if entry is not None:
            entry["user"] = environ.get("HTTP_X_USER_NAME")
            entry["project"] = environ.get("HTTP_X_PROJECT_NAME")
        if self.as_placement_noauth:
            environ["HTTP_X_AUTH_TOKEN"] = (
                f"{environ.get('HTTP_X_USER_ID')}:"
                f"{environ.get('HTTP_X_PROJECT_ID')}")
        return self.app(environ, start_response)


def keystone_protected(app, settings, as_placement_noauth=False):
    """``app`` behind keystonemiddleware's auth_token with ``settings``."""
    from keystonemiddleware import auth_token

    return auth_token.AuthProtocol(
        Identified(app, as_placement_noauth),
        dict(settings, log_name="realnova"))


# -- the WSGI layer --------------------------------------------------------

def parse_token(token):
    """(user, project, roles) for a harness token, or None."""
    if not token:
        return None
    parts = token.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        return None
    kind, project = parts[0], parts[1]
    if kind == "admin":
        # Nova's stubbed context is_admin only for user 'admin'.
        return "admin", project, ADMIN_ROLES
    if kind == "member":
        user = parts[2] if len(parts) == 3 and parts[2] else "member"
        if user == "admin":
            return None
        return user, project, MEMBER_ROLES
    return None


def requested_microversion(environ):
    value = environ.get("HTTP_OPENSTACK_API_VERSION")
    if value:
        words = value.split()
        return words[-1] if words else value
    return environ.get("HTTP_X_OPENSTACK_NOVA_API_VERSION")


def json_response(start_response, status, body, headers=()):
    data = json.dumps(body, default=str).encode()
    start_response(f"{status} {STATUS_TEXT.get(status, 'Status')}",
                   [("Content-Type", "application/json"),
                    ("Content-Length", str(len(data))), *headers])
    return [data]


STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request",
               401: "Unauthorized", 404: "Not Found", 409: "Conflict",
               500: "Internal Server Error", 504: "Gateway Timeout"}


class RequestLog:
    """The last N compute API requests, numbered from 1."""

    def __init__(self, size):
        self._entries = collections.deque(maxlen=size)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, entry):
        with self._lock:
            entry["seq"] = next(self._seq)
            self._entries.append(entry)

    def since(self, seq=0):
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > seq]

    def clear(self):
        with self._lock:
            self._entries.clear()


class Frontend:
    """Token -> Nova's test identity headers, the request log, and the
    control API, in front of Nova's own WSGI application."""

    STRIPPED = ("HTTP_X_AUTH_USER", "HTTP_X_USER_ID", "HTTP_X_USER",
                "HTTP_X_AUTH_PROJECT_ID", "HTTP_X_PROJECT_ID",
                "HTTP_X_TENANT_ID", "HTTP_X_ROLES", "HTTP_X_ROLE",
                "HTTP_X_SERVICE_CATALOG", "HTTP_X_IDENTITY_STATUS")

    def __init__(self, nova_app, control, requests, placement_app=None,
                 keystone=None):
        self.nova_app = nova_app
        self.control = control
        self.requests = requests
        self.placement_app = placement_app
        # With a real Keystone: the same applications behind auth_token.
        self.keystone_nova = self.keystone_placement = None
        if keystone is not None:
            self.keystone_nova = keystone_protected(nova_app, keystone)
            if placement_app is not None:
                self.keystone_placement = keystone_protected(
                    placement_app, keystone, as_placement_noauth=True)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self.control(environ, start_response)
        if self.placement_app is not None and (
                path == PLACEMENT_PREFIX
                or path.startswith(PLACEMENT_PREFIX + "/")):
            return self.placement(environ, start_response)
        started = time.monotonic()
        query = environ.get("QUERY_STRING")
        entry = {"time": time.time(),
                 "method": environ.get("REQUEST_METHOD"),
                 "path": path + (f"?{query}" if query else ""),
                 "microversion": requested_microversion(environ),
                 "project": None, "user": None, "status": None}
        for key in self.STRIPPED:
            environ.pop(key, None)

        def recording_start_response(status, headers, exc_info=None):
            entry["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        if self.keystone_nova is not None:
            environ["realnova.log_entry"] = entry
            try:
                if path in VERSION_PATHS:
                    return self.nova_app(environ, recording_start_response)
                return self.keystone_nova(environ, recording_start_response)
            finally:
                entry["duration"] = round(time.monotonic() - started, 4)
                self.requests.add(entry)
        identity = parse_token(environ.get("HTTP_X_AUTH_TOKEN"))
        if identity is not None:
            user, project, roles = identity
            entry["project"], entry["user"] = project, user
            environ["HTTP_X_AUTH_USER"] = user
            environ["HTTP_X_USER_ID"] = user
            environ["HTTP_X_AUTH_PROJECT_ID"] = project
            environ["HTTP_X_ROLES"] = roles

        try:
            if identity is None and path not in VERSION_PATHS:
                return json_response(
                    recording_start_response, 401,
                    {"error": {"code": 401, "title": "Unauthorized",
                               "message": "The request you have made "
                                          "requires authentication."}},
                    [("WWW-Authenticate",
                      "Keystone uri='http://127.0.0.1/identity'")])
            return self.nova_app(environ, recording_start_response)
        finally:
            entry["duration"] = round(time.monotonic() - started, 4)
            self.requests.add(entry)


    def placement(self, environ, start_response):
        """Placement's pipeline under /placement (SCRIPT_NAME, so that its
        links carry the prefix); logged as the compute requests are."""
        path = environ["PATH_INFO"]
        query = environ.get("QUERY_STRING")
        entry = {"time": time.time(),
                 "method": environ.get("REQUEST_METHOD"),
                 "path": path + (f"?{query}" if query else ""),
                 "microversion": environ.get("HTTP_OPENSTACK_API_VERSION"),
                 "project": None, "user": None, "status": None}
        started = time.monotonic()
        environ.pop("HTTP_X_ROLES", None)
        identity = None
        if self.keystone_placement is None:
            identity = parse_token(environ.get("HTTP_X_AUTH_TOKEN"))
        if identity is not None:
            entry["user"], entry["project"] = identity[0], identity[1]
            # placement's NoAuthMiddleware: user:project, roles from
            # X-Roles (a member: reader,member; the admin: admin too).
            environ["HTTP_X_AUTH_TOKEN"] = f"{identity[0]}:{identity[1]}"
            environ["HTTP_X_ROLES"] = identity[2]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + \
            PLACEMENT_PREFIX
        environ["PATH_INFO"] = path[len(PLACEMENT_PREFIX):] or "/"

        def recording_start_response(status, headers, exc_info=None):
            entry["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        try:
            if self.keystone_placement is not None:
                environ["realnova.log_entry"] = entry
                return self.keystone_placement(environ,
                                               recording_start_response)
            return self.placement_app(environ, recording_start_response)
        finally:
            entry["duration"] = round(time.monotonic() - started, 4)
            self.requests.add(entry)


def placement_app(case):
    """Placement's WSGI pipeline on the configuration (and so the
    database) of the PlacementFixture Nova's test case set up."""
    from placement import deploy

    return deploy.deploy(case.placement.fixture.conf_fixture.conf)


# -- the control API -------------------------------------------------------

class Control:
    """Drive the cloud: servers in a state on a host, crashes, restarts.

    GET    /_control/                   what this cloud is (URLs, hosts...)
    GET    /_control/hosts              each compute: running, Nova's state
    POST   /_control/hosts              {"host": name}: a new nova-compute
    GET    /_control/hosts/<h>
    POST   /_control/hosts/<h>/crash    stop its service (a dead host)
    POST   /_control/hosts/<h>/restart  {"wait_up": true, "timeout": 30}:
                                        a reboot; wait_up: until its first
                                        heartbeat
    POST   /_control/servers            {"host", "state", "metadata",
                                         "project", "name", "flavor",
                                         "lock": {"reason", "by"},
                                         "networks", "timeout"}
                                        -> {"id", "server": Nova's view}
    GET    /_control/servers            every server of every project
    DELETE /_control/servers?timeout=60 delete them all, wait until gone
    GET    /_control/requests?since=N   the compute API requests after N
    DELETE /_control/requests
    POST   /_control/reset              {"timeout": 60}: crashed hosts
                                        restarted, every service unforced,
                                        enabled and up, servers deleted,
                                        the request log emptied
    Errors: {"error": message}, 400 bad input, 404 unknown, 409 Nova
    refused or the state was not reached, 504 not reached in time.
    """

    def __init__(self, case, args, requests, compute_url):
        self.case = case
        self.args = args
        self.requests = requests
        self.compute_url = compute_url
        self.app = case.api_fixture.app()
        self.crashed = set()
        # Each host's heartbeat count when its service last started.
        self.started_count = {}
        self.names = itertools.count(1)
        # One change of the cloud's shape (hosts, resizes that disable
        # the other hosts) at a time.
        self.lock = threading.RLock()
        self._image = None

    # -- Nova's own API, in process --------------------------------------

    def nova(self, method, path, body=None, project=ADMIN_PROJECT,
             user="admin", roles=ADMIN_ROLES,
             microversion=CONTROL_MICROVERSION, expect=(200, 201, 202, 204)):
        import webob

        request = webob.Request.blank(NOVA_PREFIX + path, method=method)
        request.headers["X-Auth-User"] = user
        request.headers["X-User-Id"] = user
        request.headers["X-Auth-Project-Id"] = project
        # Nova's own context (--keystone) reads these.
        request.headers["X-Project-Id"] = project
        request.headers["X-Roles"] = roles
        request.headers["OpenStack-API-Version"] = f"compute {microversion}"
        request.headers["X-OpenStack-Nova-API-Version"] = microversion
        if body is not None:
            request.body = json.dumps(body).encode()
            request.content_type = "application/json"
        response = request.get_response(self.app)
        data = None
        if response.body:
            try:
                data = json.loads(response.body)
            except ValueError:
                data = response.text
        if expect and response.status_code not in expect:
            raise ControlError(
                409 if response.status_code < 500 else 500,
                f"Nova answered {response.status_code} to {method} {path}: "
                f"{data}")
        return response.status_code, data

    def server(self, server_id):
        return self.nova("GET", f"/servers/{server_id}")[1]["server"]

    def wait_server(self, server_id, what, done, timeout, fail=None):
        """Poll the server until done(server); ControlError on fail(server)
        or after timeout."""
        deadline = time.monotonic() + timeout
        server = None
        while True:
            server = self.server(server_id)
            if done(server):
                return server
            if fail is not None and fail(server):
                raise ControlError(
                    409, f"server {server_id} did not reach {what}: "
                         f"{_brief(server)}")
            if time.monotonic() > deadline:
                raise ControlError(
                    504, f"server {server_id} not {what} after {timeout} s: "
                         f"{_brief(server)}")
            # Each GET costs Nova 40-100 ms of the one CPU it runs on.
            time.sleep(0.1)

    def wait_status(self, server_id, status, timeout, allow_error=False):
        def done(s):
            return (s["status"] == status
                    and s.get("OS-EXT-STS:task_state") is None)

        def failed(s):
            return not allow_error and s["status"] == "ERROR"
        return self.wait_server(server_id, status, done, timeout, failed)

    def action(self, server_id, body, project=ADMIN_PROJECT):
        self.nova("POST", f"/servers/{server_id}/action", body,
                  project=project)

    def image(self):
        if self._image is None:
            images = self.nova("GET", "/images", microversion="2.35")[1]
            self._image = images["images"][0]["id"]
        return self._image

    def flavor(self, name_or_id):
        flavors = self.nova("GET", "/flavors/detail")[1]["flavors"]
        for flavor in flavors:
            if name_or_id in (flavor["id"], flavor["name"]):
                return flavor
        raise ControlError(400, f"no flavor {name_or_id}")

    def resize_flavor(self, flavor):
        """A flavor like ``flavor`` under another id, to resize to."""
        name = flavor["name"] + ".resized"
        try:
            return self.flavor(name)
        except ControlError:
            pass
        body = {"flavor": {"name": name, "id": flavor["id"] + "-resized",
                           "ram": flavor["ram"], "vcpus": flavor["vcpus"],
                           "disk": flavor["disk"]}}
        return self.nova("POST", "/flavors", body)[1]["flavor"]

    def services(self, host=None):
        query = "?binary=nova-compute" + (
            f"&host={urllib.parse.quote(host)}" if host else "")
        return self.nova("GET", "/os-services" + query)[1]["services"]

    # -- servers ---------------------------------------------------------

    def create_server(self, spec):
        host = spec.get("host")
        state = spec.get("state", "active")
        if state not in STATES:
            raise ControlError(400, f"state {state!r}: one of {STATES}")
        if host not in self.case.computes:
            raise ControlError(400, f"no compute host {host!r}")
        if host in self.crashed:
            raise ControlError(409, f"compute host {host} is crashed")
        timeout = float(spec.get("timeout", 60))
        project = spec.get("project") or DEFAULT_PROJECT
        flavor = self.flavor(str(spec.get("flavor", "m1.tiny")))
        name = spec.get("name") or f"{state}-{host}-{next(self.names)}"
        body = {"server": {"name": name, "imageRef": self.image(),
                           "flavorRef": flavor["id"],
                           "networks": spec.get("networks", "none"),
                           "host": host}}
        if spec.get("metadata"):
            body["server"]["metadata"] = {
                str(k): str(v) for k, v in spec["metadata"].items()}
        _, created = self.nova("POST", "/servers", body, project=project)
        server_id = created["server"]["id"]
        self.wait_status(server_id, "ACTIVE", timeout)
        if state == "stopped" or state == "resized_stopped":
            self.action(server_id, {"os-stop": None})
            self.wait_status(server_id, "SHUTOFF", timeout)
        if state == "paused":
            self.action(server_id, {"pause": None})
        elif state == "suspended":
            self.action(server_id, {"suspend": None})
        elif state == "rescued":
            self.action(server_id, {"rescue": None})
        elif state == "shelved_offloaded":
            self.action(server_id, {"shelve": None})
        elif state == "error":
            self.action(server_id, {"os-resetState": {"state": "error"}})
        elif state in ("resized", "resized_stopped"):
            self.resize_in_place(server_id, host, flavor, timeout)
        server = self.wait_status(server_id, STATUS_OF[state], timeout,
                                  allow_error=state == "error")
        lock = spec.get("lock")
        if state == "locked" and not lock:
            lock = {}
        if lock is not None:
            self.lock_server(server_id, project, lock)
            server = self.server(server_id)
        if server.get("OS-EXT-SRV-ATTR:host") != host and \
                state != "shelved_offloaded":
            raise ControlError(
                409, f"server {server_id} is on "
                     f"{server.get('OS-EXT-SRV-ATTR:host')}, not {host}")
        return {"id": server_id, "server": server}

    def resize_in_place(self, server_id, host, flavor, timeout):
        """Resize to the same host: every other enabled compute disabled
        meanwhile (allow_resize_to_same_host is on), then enabled again.
        Left unconfirmed: vm_state resized, status VERIFY_RESIZE."""
        target = self.resize_flavor(flavor)
        with self.lock:
            disabled = []
            try:
                for service in self.services():
                    if service["host"] != host and \
                            service["status"] == "enabled":
                        self.set_service(service["id"], status="disabled",
                                         disabled_reason="realnova: resize")
                        disabled.append(service["id"])
                self.action(server_id, {"resize": {"flavorRef": target["id"]}})
                self.wait_status(server_id, "VERIFY_RESIZE", timeout)
            finally:
                for service_id in disabled:
                    self.set_service(service_id, status="enabled")

    def set_service(self, service_id, **fields):
        self.nova("PUT", f"/os-services/{service_id}", fields)

    def lock_server(self, server_id, project, lock):
        """Lock as another user: a member of the server's project (Nova
        records locked_by owner), or with by=admin an admin of another
        project (locked_by admin)."""
        body = {"lock": {"locked_reason": lock["reason"]}} \
            if lock.get("reason") else {"lock": None}
        if lock.get("by", "owner") == "admin":
            self.nova("POST", f"/servers/{server_id}/action", body,
                      project=lock.get("project", ADMIN_PROJECT))
        else:
            self.nova("POST", f"/servers/{server_id}/action", body,
                      project=project, user=lock.get("user", "lock-owner"),
                      roles=MEMBER_ROLES)

    def all_servers(self):
        return self.nova("GET", "/servers/detail?all_tenants=1")[1][
            "servers"]

    def delete_servers(self, timeout=60):
        """Delete every server, of every project, and wait until gone."""
        servers = self.all_servers()
        for server in servers:
            if server.get("locked"):
                self.action(server["id"], {"unlock": None})
            self.nova("DELETE", f"/servers/{server['id']}",
                      expect=(204, 404))
        deadline = time.monotonic() + timeout
        while True:
            left = self.all_servers()
            if not left:
                return [s["id"] for s in servers]
            if time.monotonic() > deadline:
                raise ControlError(
                    504, f"servers not deleted after {timeout} s: "
                         f"{[_brief(s) for s in left]}")
            time.sleep(0.1)

    # -- hosts -----------------------------------------------------------

    def hosts(self):
        services = {s["host"]: s for s in self.services()}
        found = []
        for host, compute in self.case.computes.items():
            service = services.get(host, {})
            found.append({
                "host": host,
                "running": host not in self.crashed,
                "state": service.get("state"),
                "status": service.get("status"),
                "forced_down": service.get("forced_down"),
                "disabled_reason": service.get("disabled_reason"),
                "service_id": service.get("id"),
                "updated_at": service.get("updated_at"),
                "driver_instances": len(
                    compute.manager.driver.list_instance_uuids()),
            })
        return found

    def host(self, name):
        for entry in self.hosts():
            if entry["host"] == name:
                return entry
        raise ControlError(404, f"no compute host {name!r}")

    def add_host(self, name):
        with self.lock:
            if name in self.case.computes:
                raise ControlError(409, f"compute host {name} exists")
            self.case._start_compute(host=name)
        return self.host(name)

    def crash(self, name):
        """Stop the host's nova-compute the way a dead host looks: RPC and
        heartbeats stop; the fake driver keeps its VMs defined."""
        with self.lock:
            compute = self._compute(name)
            if name in self.crashed:
                raise ControlError(409, f"compute host {name} is crashed")
            compute.stop()
            self.crashed.add(name)
        return self.host(name)

    def restart(self, name, wait_up=True, timeout=30):
        """Start the host's nova-compute again as after a reboot: a new
        service and manager over the same fake hypervisor, whose
        init_host() cleans up the instances evacuated away.  wait_up:
        until its first heartbeat (Nova sends it 5 s after the start);
        Nova then reports it up, unless it is forced down."""
        from unittest import mock

        with self.lock:
            compute = self._compute(name)
            if name not in self.crashed:
                compute.stop()
            cell = self.case.host_mappings[name].cell_mapping.name
            driver = compute.manager.driver
            with mock.patch("nova.virt.driver.load_compute_driver",
                            return_value=driver):
                new = self.case.start_service("compute", host=name,
                                              cell_name=cell)
            self.case.computes[name] = new
            self.started_count[name] = new.service_ref.report_count
            self.crashed.discard(name)
        if wait_up:
            self.wait_heartbeat([name], timeout)
        return self.host(name)

    def wait_heartbeat(self, names, timeout):
        """Until each host's running service sent a heartbeat since it
        started."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = [n for n in names
                       if self.case.computes[n].service_ref.report_count
                       <= self.started_count.get(n, -1)]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise ControlError(504, f"no heartbeat from {waiting} "
                                        f"after {timeout} s")
            time.sleep(0.1)

    def _compute(self, name):
        try:
            return self.case.computes[name]
        except KeyError:
            raise ControlError(404, f"no compute host {name!r}") from None

    def reset(self, timeout=60):
        """Crashed hosts restarted, every compute service unforced,
        enabled and up, every server deleted, the request log emptied."""
        restarted = sorted(self.crashed)
        for name in restarted:
            self.restart(name, wait_up=False)
        self.wait_heartbeat(restarted, timeout)
        for service in self.services():
            if service.get("forced_down"):
                self.force_up(service, timeout, restarted)
            if service["status"] != "enabled":
                self.set_service(service["id"], status="enabled")
        # Up before anything is deleted: a delete while the service looks
        # down is done in the API alone, and the VM would stay defined in
        # the host's fake driver.
        deadline = time.monotonic() + timeout
        while True:
            down = [h["host"] for h in self.hosts() if h["state"] != "up"]
            if not down:
                break
            if time.monotonic() > deadline:
                raise ControlError(504, f"{down} not up after {timeout} s")
            time.sleep(0.1)
        deleted = self.delete_servers(timeout)
        self.requests.clear()
        return {"deleted": deleted, "hosts": self.hosts()}

    def force_up(self, service, timeout, restarted=()):
        """Unset forced_down.  Nova refuses while evacuations from the host
        are ``done`` (not yet ``completed`` by the compute's restart): the
        host is restarted then, as an operator would."""
        status, answer = self.nova(
            "PUT", f"/os-services/{service['id']}", {"forced_down": False},
            expect=None)
        if status == 400 and "restarted" in json.dumps(answer):
            # A forced-down service reads down whatever its heartbeats
            # say: wait for init_host to complete the migrations instead.
            if service["host"] not in restarted:
                self.restart(service["host"], wait_up=False)
            deadline = time.monotonic() + timeout
            while status == 400 and time.monotonic() < deadline:
                time.sleep(0.5)
                status, answer = self.nova(
                    "PUT", f"/os-services/{service['id']}",
                    {"forced_down": False}, expect=None)
        if status != 200:
            raise ControlError(409, f"cannot force {service['host']} up: "
                                    f"{status} {answer}")

    def info(self):
        from nova import version

        return {"compute_url": self.compute_url,
                "nova_version": version.version_string(),
                "driver": self.args.driver,
                "service_down_time": self.args.service_down_time,
                "report_interval": self.args.report_interval,
                "default_project": DEFAULT_PROJECT,
                "states": list(STATES),
                "hosts": list(self.case.computes)}

    # -- routing ---------------------------------------------------------

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ["PATH_INFO"][len(CONTROL_PREFIX):].strip("/")
        parts = path.split("/") if path else []
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        try:
            body = self._body(environ)
            status, answer = self.route(method, parts, body, query)
        except ControlError as exc:
            status, answer = exc.status, {"error": exc.message}
        except Exception as exc:
            LOG.exception("control %s %s", method, path)
            status, answer = 500, {"error": f"{type(exc).__name__}: {exc}",
                                   "traceback": traceback.format_exc()}
        return json_response(start_response, status, answer)

    @staticmethod
    def _body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if not length:
            return {}
        try:
            body = json.loads(environ["wsgi.input"].read(length))
        except ValueError as exc:
            raise ControlError(400, f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ControlError(400, "body must be a JSON object")
        return body

    def route(self, method, parts, body, query):
        if parts == [] and method == "GET":
            return 200, self.info()
        if parts == ["hosts"]:
            if method == "GET":
                return 200, {"hosts": self.hosts()}
            if method == "POST":
                return 201, {"host": self.add_host(_required(body, "host"))}
        if len(parts) == 2 and parts[0] == "hosts" and method == "GET":
            return 200, {"host": self.host(parts[1])}
        if len(parts) == 3 and parts[0] == "hosts" and method == "POST":
            if parts[2] == "crash":
                return 200, {"host": self.crash(parts[1])}
            if parts[2] == "restart":
                return 200, {"host": self.restart(
                    parts[1], wait_up=body.get("wait_up", True),
                    timeout=float(body.get("timeout", 30)))}
        if parts == ["servers"]:
            if method == "POST":
                return 201, self.create_server(body)
            if method == "GET":
                return 200, {"servers": self.all_servers()}
            if method == "DELETE":
                return 200, {"deleted": self.delete_servers(
                    float(query.get("timeout", ["60"])[0]))}
        if parts == ["requests"]:
            if method == "GET":
                since = int(query.get("since", ["0"])[0])
                return 200, {"requests": self.requests.since(since)}
            if method == "DELETE":
                self.requests.clear()
                return 200, {"requests": []}
        if parts == ["reset"] and method == "POST":
            return 200, self.reset(float(body.get("timeout", 60)))
        raise ControlError(404, f"no control call {method} /{'/'.join(parts)}")


def _required(body, key):
    if not body.get(key):
        raise ControlError(400, f"{key!r} is required")
    return body[key]


def _brief(server):
    return {"id": server.get("id"), "status": server.get("status"),
            "vm_state": server.get("OS-EXT-STS:vm_state"),
            "task_state": server.get("OS-EXT-STS:task_state"),
            "host": server.get("OS-EXT-SRV-ATTR:host"),
            "fault": (server.get("fault") or {}).get("message")}


# -- housekeeping and serving ----------------------------------------------

def bound_memory(case, stopping, every=2.0):
    """Empty what Nova's fixtures keep for a test to read (the captured
    log, the notifications): in a long run they grow without bound."""
    stream = case.stdlog.logger._output
    while not stopping:
        time.sleep(every)
        handlers = [h for h in logging.getLogger().handlers
                    if getattr(h, "stream", None) is stream]
        lock = handlers[0].lock if handlers and handlers[0].lock else None
        if lock:
            lock.acquire()
        try:
            stream.seek(0)
            stream.truncate(0)
        finally:
            if lock:
                lock.release()
        case.notifier.reset()


def setup_logging(args):
    root = logging.getLogger()
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if args.debug else logging.INFO)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(process)d %(levelname)s [%(name)s] %(message)s"))
    root.addHandler(handler)
    if not args.debug:
        # Nova's fixture formats every DEBUG record to check it formats;
        # a long-running server need not pay for that.
        for h in list(root.handlers):
            if type(h).__name__ == "NullHandler":
                root.removeHandler(h)
    return handler


def bind(host, port):
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve(sock, app):
    """Serve app on sock; the function that stops it.  Eventlet's WSGI
    server under Nova's eventlet patching, else wsgiref with a thread per
    request."""
    from nova import utils

    if utils.concurrency_mode_threading():
        import socketserver
        from wsgiref import simple_server

        class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
            daemon_threads = True

        class Handler(simple_server.WSGIRequestHandler):
            def log_message(self, *a):
                pass

        server = Server((sock.getsockname()[0], 0), Handler,
                        bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_address = sock.getsockname()
        server.server_name, server.server_port = server.server_address
        server.setup_environ()
        server.set_app(app)
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        return server.shutdown
    import eventlet
    import eventlet.wsgi

    # Bound after Nova's monkey patching: already a green socket.
    thread = eventlet.spawn(eventlet.wsgi.server, sock, app,
                            log=_NullLog(), log_output=False,
                            socket_timeout=120, keepalive=True)
    return thread.kill


class _NullLog:
    def write(self, *a):
        pass

    def flush(self):
        pass


def main(argv=None):
    started = time.monotonic()
    args = parse_args(argv)
    hook = _setup_imports()
    # Set from the signal handler, polled: a handler must not switch
    # (green) threads.
    stopping = []

    def on_term(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    base = f"http://{args.host}:{port}"
    keystone = (read_keystone_settings(args.keystone) if args.keystone
                else None)
    case = build_cloud(args)
    if keystone is not None:
        use_nova_keystone_context()
    sys.excepthook = hook
    # After setUp: Nova's StandardLogging fixture replaces root's handlers.
    setup_logging(args)
    from oslo_config import cfg

    LOG.info("nova: report_interval %s, service_down_time %s, driver %s, "
             "computes %s", cfg.CONF.report_interval,
             cfg.CONF.service_down_time, cfg.CONF.compute_driver,
             ", ".join(case.computes))
    requests = RequestLog(args.request_log_size)
    control = Control(case, args, requests, base + NOVA_PREFIX)
    frontend = Frontend(control.app, control, requests, placement_app(case),
                        keystone=keystone)
    housekeeper = threading.Thread(target=bound_memory, args=(case, stopping),
                                   daemon=True)
    housekeeper.start()
    shutdown = serve(sock, frontend)
    ready = {"ready": True, "compute_url": base + NOVA_PREFIX,
             "control_url": base + CONTROL_PREFIX,
             "placement_url": base + PLACEMENT_PREFIX, "pid": os.getpid(),
             "port": port, "computes": list(case.computes),
             "keystone": keystone["auth_url"] if keystone else None,
             "startup_seconds": round(time.monotonic() - started, 2)}
    LOG.info("ready: %s", json.dumps(ready))
    print(json.dumps(ready), flush=True)
    while not stopping:
        time.sleep(0.2)
    LOG.info("SIGTERM: stopping")
    shutdown()
    try:
        case.doCleanups()
    except Exception:
        LOG.exception("cleaning up Nova's fixtures")
    LOG.info("stopped")
    logging.shutdown()
    # Nova's services leave threads behind that keep a normal exit waiting.
    os._exit(0)


if __name__ == "__main__":
    main()
