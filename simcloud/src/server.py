"""The simulated cloud on a real HTTP/1.1 socket: Keystone under /identity,
Glance under /image, placement under /placement, Nova at / and /v2.1;
keep-alive, no Nagle delay, per-operation latency, injected faults, and a
log of every call."""

import http.server
import socket
import threading
import time
import uuid

from instance_ha.simcloud import errors
from instance_ha.simcloud import glance
from instance_ha.simcloud import keystone
from instance_ha.simcloud import microversion
from instance_ha.simcloud import nova
from instance_ha.simcloud import placement
from instance_ha.simcloud.calllog import Call
from instance_ha.simcloud.model import Cloud
from instance_ha.simcloud.wire import Request
from instance_ha.simcloud.wire import Response
from instance_ha.simcloud.wire import Routed

# How long a keep-alive connection may stay idle.
IDLE_TIMEOUT = 120


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "simcloud"
    sys_version = ""
    timeout = IDLE_TIMEOUT

    def setup(self):
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self):
        self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        request = Request(method=self.command, path=path, query_string=query,
                          headers=self.headers, body=body,
                          base_url=self.server.base_url)
        self.server.simcloud.serve(self, request)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def send(self, response):
        content_type, payload = response.payload()
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format, *args):
        """The call log (SimCloud.cloud.calls) replaces the access log."""


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address, simcloud):
        self.simcloud = simcloud
        self.connections = set()
        super().__init__(address, _Handler)
        host, port = self.server_address[:2]
        self.base_url = f"http://{host}:{port}"


class SimCloud:
    """A running simulated cloud.  ``cloud`` is the model to inspect and
    steer (kill_host, faults, calls, ...)."""

    def __init__(self, cloud=None, host="127.0.0.1", port=0):
        self.cloud = cloud or Cloud()
        self._address = (host, port)
        self._httpd = None
        self._thread = None
        self._stopping = threading.Event()
        self.errors = []

    # -- life cycle ------------------------------------------------------

    def start(self):
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
            name="simcloud-http", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            for connection in list(self._httpd.connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None
        self.cloud.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- where it is -----------------------------------------------------

    @property
    def url(self):
        return self._httpd.base_url

    @property
    def auth_url(self):
        return self.url + keystone.PREFIX

    @property
    def compute_url(self):
        return self.url + nova.PREFIX

    @property
    def placement_url(self):
        return self.url + placement.PREFIX

    def clouds(self):
        """The clouds.yaml content: ``simcloud`` (admin) and
        ``simcloud-user`` (a member of project demo)."""
        identity = self.cloud.identity

        def entry(user):
            return {"auth_type": "password",
                    "auth": {"auth_url": self.auth_url,
                             "username": user.name,
                             "password": user.password,
                             "project_name": user.project.name,
                             "user_domain_name": "Default",
                             "project_domain_name": "Default"},
                    "region_name": keystone.REGION,
                    "interface": "public",
                    "identity_api_version": 3}

        return {"clouds": {"simcloud": entry(identity.admin),
                           "simcloud-user": entry(identity.member)}}

    # -- serving ---------------------------------------------------------

    def _route(self, request):
        path = request.path
        if path == keystone.PREFIX or path.startswith(keystone.PREFIX + "/"):
            return Routed(keystone.operation(request), None, None,
                               lambda: keystone.handle(self.cloud.identity,
                                                       request))
        if path == glance.PREFIX or path.startswith(glance.PREFIX + "/"):
            return Routed(glance.operation(request), None, None,
                               lambda: glance.handle(self.cloud, request))
        if path == placement.PREFIX or path.startswith(
                placement.PREFIX + "/"):
            return Routed(placement.operation(request), None, None,
                          lambda: placement.handle(self.cloud, request))
        return nova.route(self.cloud, request)

    def _fault_response(self, routed, rule):
        error = rule.error()
        if routed.operation.startswith("keystone."):
            return Response(
                error.code, errors.KeystoneError(error.code,
                                                 error.message).body())
        if routed.operation.startswith("placement."):
            return placement.error(error.code, "Injected fault",
                                   error.message, None,
                                   "req-" + str(uuid.uuid4()))
        return nova.error_response(error, routed.version)

    def _run(self, routed):
        """The answer; a bug in the simulator answers 500 as Nova does for
        an unexpected exception, and is kept for the tests to see."""
        try:
            return routed.run()
        except Exception as exc:
            self.errors.append(exc)
            return nova.error_response(
                errors.NovaError(500, errors.UNEXPECTED), routed.version)

    def serve(self, handler, request):
        started = time.monotonic()
        wall = time.time()
        routed = self._route(request)
        cloud = self.cloud
        ids = ()
        if routed.server_id:
            server = cloud.servers.get(routed.server_id)
            ids = (routed.server_id, server.name if server else None)
        rule = cloud.faults.for_request(routed.operation, ids)
        latency = cloud.settings.latency
        delay = latency.get(routed.operation, latency.get("*", 0.0))
        if delay:
            self._stopping.wait(delay)
        response = None
        if rule is not None and rule.status is not None:
            response = self._fault_response(routed, rule)
        elif rule is None or rule.apply:
            response = self._run(routed)
        answered = rule is None or rule.timeout is None
        cloud.calls.record(Call(
            time=wall, method=request.method, path=request.path,
            query=request.query_string, operation=routed.operation,
            microversion=(microversion.to_string(routed.version)
                          if routed.version else None),
            server_id=routed.server_id,
            status=response.status if response is not None else None,
            project_id=routed.project_id,
            duration=time.monotonic() - started, answered=answered))
        if answered:
            handler.send(response)
        else:
            self._stopping.wait(rule.timeout)
            handler.close_connection = True
