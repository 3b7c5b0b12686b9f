"""Real Nova for tests: tests/realnova/nova_server.py run as a child
process with the python of its own venv (tools/realnova-venv.sh), and a
client for its control API.

    nova = RealNova(workdir).start()
    created = nova.create_server("compute1", state="stopped",
                                 metadata={"HA_Enabled": "True"})
    nova.crash("compute1")
    nova.wait_service_state("compute1", "down")
    clouds = nova.write_clouds_yaml(workdir + "/clouds.yaml")
    ...
    nova.stop()

The compute API is real Nova 34's, at ``compute_url``; a token
``admin:<project>`` is an admin of that project, ``member:<project>`` a
member (see nova_server.parse_token).  ``RealNova(workdir,
keystone=options)`` takes a real Keystone's tokens instead
(keystonemiddleware's options; tests/keystone/test_roles_on_real_nova.py).
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from instance_ha import server_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "nova_server.py")
ADMIN_PROJECT = "admin"
DEFAULT_PROJECT = "demo"
CLOUD = "realnova"
MEMBER_CLOUD = "realnova-member"
# nova()'s and placement()'s default token: an admin's.
AN_ADMIN = object()


class Unavailable(RuntimeError):
    """The real-Nova venv is not built."""


class ControlError(RuntimeError):
    """A control call that the harness refused or could not do."""

    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def venv_dir():
    """$REALNOVA_VENV (relative: to the checkout), else <repo>/.realnova."""
    path = os.environ.get("REALNOVA_VENV") or ".realnova"
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def venv_python():
    python = os.path.join(venv_dir(), "bin", "python")
    if not os.path.exists(os.path.join(venv_dir(), ".realnova-built")) \
            or not os.access(python, os.X_OK):
        raise Unavailable(
            f"no real-Nova venv at {venv_dir()}: run "
            f"tools/realnova-venv.sh {os.environ.get('REALNOVA_VENV', '')}"
            .rstrip())
    return python


def require_venv(skip, fail):
    """The venv's python; without the venv, ``fail`` with one line (pytest's
    fail, called with pytrace=False), or ``skip`` with
    REALNOVA_SKIP_MISSING=1."""
    try:
        return venv_python()
    except Unavailable as exc:
        if os.environ.get("REALNOVA_SKIP_MISSING") == "1":
            skip(str(exc))
        fail(str(exc), pytrace=False)


class RealNova(server_process.Child):
    """One nova_server.py child, stopped by its PID."""

    def __init__(self, workdir, computes=("compute1", "compute2",
                                          "compute3"),
                 driver="fake.MediumFakeDriver", service_down_time=6,
                 report_interval=1, extra_args=(), keystone=None,
                 admin_token=None):
        self.workdir = str(workdir)
        # keystonemiddleware [keystone_authtoken] options: take only that
        # Keystone's tokens (nova_server.py --keystone); admin_token() then
        # gives the token of an admin for this harness's own requests.
        self.keystone = keystone
        self._admin_token = admin_token or (lambda: f"admin:{ADMIN_PROJECT}")
        self.computes = list(computes)
        self.driver = driver
        self.service_down_time = service_down_time
        self.report_interval = report_interval
        self.extra_args = list(extra_args)
        self.log_file = os.path.join(self.workdir, "nova.log")
        self.output_file = os.path.join(self.workdir, "nova_server.out")
        self.process = None
        self.ready = None

    @property
    def pid(self):
        return self.process.pid if self.process else None

    @property
    def compute_url(self):
        return self.ready["compute_url"]

    @property
    def control_url(self):
        return self.ready["control_url"]

    @property
    def placement_url(self):
        """The cloud's placement API (nova_server.py serves it)."""
        return self.ready["placement_url"]

    # -- the child process ---------------------------------------------

    def start(self, timeout=120.0):
        """Start the child and wait for its ready line."""
        command = [venv_python(), SERVER,
                   "--computes", ",".join(self.computes),
                   "--driver", self.driver,
                   "--service-down-time", str(self.service_down_time),
                   "--report-interval", str(self.report_interval),
                   "--log-file", self.log_file, *self.extra_args]
        if self.keystone is not None:
            # A file of the work directory (0600): no password in argv.
            settings = os.path.join(self.workdir, "keystone_authtoken.json")
            fd = os.open(settings, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.keystone, f)
            command += ["--keystone", settings]
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                            "PYTHONSAFEPATH")}
        started = time.monotonic()
        with open(self.output_file, "ab") as out:
            offset = out.tell()
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, cwd=self.workdir)
        deadline = started + timeout
        while self.ready is None:
            self.ready = self._ready_line(offset)
            if self.ready is not None:
                break
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nova_server.py exited with {self.process.returncode}:"
                    f" {self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"nova_server.py not ready after "
                                   f"{timeout} s: {self.tail()}")
            time.sleep(0.1)
        self.start_seconds = round(time.monotonic() - started, 2)
        return self

    def _ready_line(self, offset):
        try:
            with open(self.output_file, "rb") as f:
                f.seek(offset)
                lines = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            if line.startswith("{") and '"ready"' in line:
                try:
                    ready = json.loads(line)
                except ValueError:
                    continue
                if ready.get("pid") == self.process.pid:
                    return ready
        return None

    def rss_kb(self):
        """The child's resident memory (kB), from /proc."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None


    # -- clouds.yaml -----------------------------------------------------

    def clouds(self, project=ADMIN_PROJECT, member_project=DEFAULT_PROJECT):
        """clouds.yaml content: ``realnova`` (an admin) and
        ``realnova-member`` (a member of ``member_project``), keystoneauth's
        admin_token auth type: the endpoint and a fixed token; placement
        at ``placement_endpoint_override`` (admin_token has no
        catalog)."""

        def entry(token):
            return {"auth_type": "admin_token",
                    "auth": {"endpoint": self.compute_url, "token": token},
                    "placement_endpoint_override": self.placement_url,
                    "interface": "public"}

        return {"clouds": {CLOUD: entry(f"admin:{project}"),
                           MEMBER_CLOUD: entry(f"member:{member_project}")}}

    def write_clouds_yaml(self, path, **kwargs):
        """Write clouds() to path (mode 0600); the path."""
        return str(server_process.write_clouds_yaml(path,
                                                    self.clouds(**kwargs)))

    @staticmethod
    def cloud_env(clouds_yaml, cloud=CLOUD):
        """The environment that points instance_ha's code at the cloud."""
        return server_process.cloud_env(str(clouds_yaml), cloud=cloud)

    # -- HTTP --------------------------------------------------------------

    def _call(self, method, url, body=None, headers=None, timeout=180.0):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers=dict(headers or {}))
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def control(self, method, path, body=None, timeout=180.0):
        """A control API call; its JSON answer, ControlError if not 2xx."""
        status, answer = self._call(method, self.control_url + path, body,
                                    timeout=timeout)
        if status >= 300:
            message = answer.get("error") if isinstance(answer, dict) \
                else answer
            raise ControlError(status, message)
        return answer

    def nova(self, method, path, body=None, token=AN_ADMIN,
             microversion=None):
        """A compute API request over HTTP, as a client sends it:
        (status, decoded body).  ``token``: an admin's by default; None:
        no token."""
        token = self._admin_token() if token is AN_ADMIN else token
        headers = {}
        if token:
            headers["X-Auth-Token"] = token
        if microversion:
            headers["OpenStack-API-Version"] = f"compute {microversion}"
        return self._call(method, self.compute_url + path, body, headers)

    def placement(self, method, path, token=AN_ADMIN, microversion=None):
        """A placement API request over HTTP: (status, decoded body);
        ``token`` as nova()'s."""
        token = self._admin_token() if token is AN_ADMIN else token
        headers = {"X-Auth-Token": token} if token else {}
        if microversion:
            headers["OpenStack-API-Version"] = f"placement {microversion}"
        return self._call(method, self.placement_url + path, None, headers)

    # -- control calls -----------------------------------------------------

    def info(self):
        """GET /_control/"""
        return self.control("GET", "/")

    def create_server(self, host, state="active", metadata=None,
                      project=None, name=None, flavor=None, lock=None,
                      networks=None, timeout=60):
        """POST /_control/servers: a server created through Nova's API on
        ``host``, brought to ``state`` (nova_server.STATES) and waited
        for.  ``lock``: {"reason": ..., "by": "owner" | "admin"}.
        Returns {"id": ..., "server": <Nova's view, latest microversion>}.
        """
        body = {"host": host, "state": state, "timeout": timeout}
        for key, value in (("metadata", metadata), ("project", project),
                           ("name", name), ("flavor", flavor),
                           ("lock", lock), ("networks", networks)):
            if value is not None:
                body[key] = value
        return self.control("POST", "/servers", body,
                            timeout=timeout * 4 + 30)

    def servers(self):
        """GET /_control/servers: every server, every project."""
        return self.control("GET", "/servers")["servers"]

    def server(self, server_id, microversion="2.96"):
        """Nova's view of a server (admin, over HTTP)."""
        status, body = self.nova("GET", f"/servers/{server_id}",
                                 microversion=microversion)
        if status != 200:
            raise ControlError(status, body)
        return body["server"]

    def delete_servers(self, timeout=60):
        """DELETE /_control/servers: delete all; the deleted ids."""
        return self.control("DELETE", f"/servers?timeout={timeout}",
                            timeout=timeout + 30)["deleted"]

    def hosts(self):
        """GET /_control/hosts"""
        return self.control("GET", "/hosts")["hosts"]

    def host(self, name):
        """GET /_control/hosts/<name>"""
        return self.control("GET", f"/hosts/{name}")["host"]

    def add_host(self, name):
        """POST /_control/hosts {"host": name}: a new nova-compute."""
        host = self.control("POST", "/hosts", {"host": name})["host"]
        self.computes.append(name)
        return host

    def crash(self, name):
        """POST /_control/hosts/<name>/crash"""
        return self.control("POST", f"/hosts/{name}/crash")["host"]

    def restart(self, name, wait_up=True, timeout=30):
        """POST /_control/hosts/<name>/restart {"wait_up": ...}: a new
        nova-compute over the host's fake hypervisor; wait_up: until its
        first heartbeat (5 s after the start, as Nova sends it).  Nova
        then says up, unless the service is forced down."""
        return self.control("POST", f"/hosts/{name}/restart",
                            {"wait_up": wait_up, "timeout": timeout},
                            timeout=timeout + 30)["host"]

    def requests(self, since=0):
        """GET /_control/requests?since=<seq>: the compute API requests
        recorded (oldest first), each {seq, time, method, path, status,
        microversion, project, user, duration}."""
        return self.control("GET", f"/requests?since={since}")["requests"]

    def clear_requests(self):
        """DELETE /_control/requests"""
        self.control("DELETE", "/requests")

    def reset(self, timeout=60):
        """POST /_control/reset: crashed hosts restarted, every compute
        service unforced, enabled and up, every server deleted, requests
        cleared."""
        return self.control("POST", "/reset", {"timeout": timeout},
                            timeout=timeout * 3 + 30)

    def fresh_host(self, prefix="host"):
        """A new compute host nothing ran on yet; its name."""
        names = {h["host"] for h in self.hosts()}
        n = 1
        while f"{prefix}{n}" in names:
            n += 1
        self.add_host(f"{prefix}{n}")
        return f"{prefix}{n}"

    # -- Nova's view, over HTTP -------------------------------------------

    def service(self, host, binary="nova-compute"):
        status, body = self.nova(
            "GET", f"/os-services?host={host}&binary={binary}",
            microversion="2.53")
        if status != 200 or not body["services"]:
            raise ControlError(status, body)
        return body["services"][0]

    def wait_service_state(self, host, state, timeout=None):
        """Until Nova reports the host's nova-compute ``state`` (up or
        down); the seconds it took."""
        timeout = timeout or self.service_down_time * 3 + 10
        started = time.monotonic()
        while self.service(host)["state"] != state:
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"{host} nova-compute not {state} after {timeout} s: "
                    f"{self.service(host)}")
            time.sleep(0.2)
        return time.monotonic() - started

    def wait_server(self, server_id, timeout=60, **expected):
        """Until the server's fields (e.g. status="SHUTOFF",
        **{"OS-EXT-SRV-ATTR:host": "compute2"}) match; the server."""
        deadline = time.monotonic() + timeout
        while True:
            server = self.server(server_id)
            if all(server.get(k) == v for k, v in expected.items()):
                return server
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"server {server_id} not {expected} after {timeout} s:"
                    f" {server}")
            time.sleep(0.1)


MUTATING = ("POST", "PUT", "DELETE")


def mutations(nova, since):
    """The requests that changed something, after ``since``."""
    return [r for r in nova.requests(since) if r["method"] in MUTATING]


def last_seq(nova):
    """The sequence number of the newest request (0: none yet)."""
    requests = nova.requests()
    return requests[-1]["seq"] if requests else 0
