"""Real Keystone for tests: Keystone 30 of its own venv
(tools/keystone-venv.sh) on SQLite, served by tests/keystone_server.py on
127.0.0.1, stopped by its PID.

    keystone = Keystone(workdir, token_expiration=3600).start()
    keystone.add_service("compute", "nova", compute_url)
    session = keystone.session("admin")
    clouds = keystone.clouds_yaml(path, "admin", "tenant")
    ...
    keystone.stop()

What it holds after ``start``: the bootstrap admin (user ``admin``, role
admin on project ``admin`` and on the system), region RegionOne, the
identity endpoint, roles admin, member, reader, service, project
``service`` with the service users ``mistral`` (keystonemiddleware in
front of Mistral's API, and the service token of the pack's actions) and
``nova`` (the compute API's own token validation), project ``demo`` with
``tenant`` (member, reader: a non-admin of another project), and
``observer``, a member (no admin) of project ``admin``.
Passwords are random, made here, and written only to
files of the work directory (keystone.conf is not one of them: the
bootstrap password goes through OS_BOOTSTRAP_PASSWORD).

The fixture for it is ``keystone_support.keystone_fixture`` (a session
fixture any tier's conftest can take up: see tests/keystone/conftest.py).
"""

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request

from instance_ha import server_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "keystone_server.py")
REGION = "RegionOne"
DOMAIN = "Default"
USERS = {
    # name: (project, roles)
    "admin": ("admin", ("admin",)),
    "mistral": ("service", ("service",)),
    "nova": ("service", ("service", "admin")),
    "tenant": ("demo", ("member", "reader")),
    "observer": ("admin", ("member", "reader")),
}
CONF = """\
[DEFAULT]
use_stderr = true

[database]
connection = sqlite:///{db}

[token]
provider = fernet
expiration = {expiration}
allow_expired_window = {allow_expired_window}

[fernet_tokens]
key_repository = {keys}/fernet

[fernet_receipts]
key_repository = {keys}/receipts

[credential]
key_repository = {keys}/credential

[cache]
enabled = false

[identity]
# The fewest bcrypt rounds: a token costs ms, not a second of CPU (with
# a short [token] expiration keystoneauth authenticates again before
# nearly every request: it renews a token with less than 120 s left).
password_hash_rounds = 4

[oslo_policy]
enforce_new_defaults = true
enforce_scope = true
"""


class Unavailable(RuntimeError):
    """The Keystone venv is not built."""


class KeystoneError(RuntimeError):
    """Keystone refused a request of the harness."""


def venv_dir():
    """$KEYSTONE_VENV (relative: to the checkout), else <repo>/.keystone."""
    path = os.environ.get("KEYSTONE_VENV") or ".keystone"
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def venv_python():
    python = os.path.join(venv_dir(), "bin", "python")
    if not os.path.exists(os.path.join(venv_dir(), ".keystone-built")) \
            or not os.access(python, os.X_OK):
        raise Unavailable(
            f"no Keystone venv at {venv_dir()}: run "
            f"tools/keystone-venv.sh {os.environ.get('KEYSTONE_VENV', '')}"
            .rstrip())
    return python


def require_venv(skip, fail):
    """The venv's python; else skip(reason) with KEYSTONE_SKIP_MISSING=1,
    fail(reason) without (pytest.skip / pytest.fail)."""
    try:
        return venv_python()
    except Unavailable as exc:
        if os.environ.get("KEYSTONE_SKIP_MISSING") == "1":
            skip(str(exc))
        fail(str(exc))


class Keystone(server_process.Child):
    """One real Keystone, its database and keys in ``workdir``."""

    def __init__(self, workdir, token_expiration=3600,
                 allow_expired_window=172800):
        self.workdir = str(workdir)
        self.token_expiration = int(token_expiration)
        self.allow_expired_window = int(allow_expired_window)
        self.host = "127.0.0.1"
        self.port = None
        self.conf = os.path.join(self.workdir, "keystone.conf")
        self.output_file = os.path.join(self.workdir, "keystone.out")
        self.passwords = {name: secrets.token_urlsafe(18) for name in USERS}
        self.users = {}         # name -> user id
        self.projects = {}      # name -> project id
        self.roles = {}         # name -> role id
        self.process = None
        self._admin_token = None

    # -- where it is -----------------------------------------------------

    @property
    def url(self):
        """The identity endpoint (v3)."""
        return f"http://{self.host}:{self.port}/v3"

    @property
    def pid(self):
        return self.process.pid if self.process else None

    # -- life cycle ------------------------------------------------------

    def start(self, timeout=90.0):
        python = venv_python()
        os.makedirs(self.workdir, exist_ok=True)
        keys = os.path.join(self.workdir, "keys")
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(CONF.format(
                db=os.path.join(self.workdir, "keystone.sqlite"),
                expiration=self.token_expiration,
                allow_expired_window=self.allow_expired_window, keys=keys))
        self.port = server_process.free_port(self.host)
        manage = [python, "-W", "ignore",
                  os.path.join(os.path.dirname(python), "keystone-manage"),
                  "--config-file", self.conf]
        user = _user_and_group()
        for step in (["fernet_setup", *user], ["credential_setup", *user],
                     ["db_sync"]):
            self._manage(manage + step)
        self._manage(manage + [
            "bootstrap", "--bootstrap-username", "admin",
            "--bootstrap-project-name", "admin",
            "--bootstrap-role-name", "admin",
            "--bootstrap-region-id", REGION,
            "--bootstrap-public-url", self.url,
            "--bootstrap-internal-url", self.url],
            env={"OS_BOOTSTRAP_PASSWORD": self.passwords["admin"]})
        env = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=self.conf,
                   KEYSTONE_LISTEN=f"{self.host}:{self.port}")
        env.pop("PYTHONPATH", None)
        with open(self.output_file, "ab") as out:
            self.process = subprocess.Popen(
                [python, "-W", "ignore", SERVER],
                stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, cwd=self.workdir)
        self._wait_ready(timeout)
        self._populate()
        return self

    def _manage(self, command, env=None):
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=self.workdir,
            env=dict(os.environ, **(env or {})), timeout=300)
        if done.returncode != 0:
            raise KeystoneError(
                f"keystone-manage {command[5]} failed "
                f"({done.returncode}): {done.stderr[-1500:]}")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        ready = f"keystone ready at {self.url}"
        while True:
            if self.process.poll() is not None:
                raise KeystoneError(
                    f"keystone exited with {self.process.returncode}: "
                    f"{self.tail()}")
            if ready in self.tail(200):
                try:
                    self.request("GET", "/", expect=(200, 300))
                    return
                except (KeystoneError, OSError):
                    pass
            if time.monotonic() > deadline:
                raise KeystoneError(f"keystone not ready after {timeout} s:"
                                    f" {self.tail()}")
            time.sleep(0.2)

    # -- its content -------------------------------------------------------

    def _populate(self):
        self._admin_token = self.token("admin", system=True)
        self.projects["admin"] = self._find("projects", "admin")
        self.users["admin"] = self._find("users", "admin")
        # bootstrap makes them (service too, since Keystone 2023.2)
        for role in ("admin", "member", "reader", "service"):
            self.roles[role] = self._find("roles", role)
        for project in ("service", "demo"):
            self.projects[project] = self._create("projects", {"project": {
                "name": project, "domain_id": "default"}})
        for name, (project, roles) in USERS.items():
            if name != "admin":
                self.users[name] = self._create("users", {"user": {
                    "name": name, "domain_id": "default",
                    "default_project_id": self.projects[project],
                    "password": self.passwords[name]}})
            for role in roles:
                self.request(
                    "PUT", f"/projects/{self.projects[project]}/users/"
                           f"{self.users[name]}/roles/{self.roles[role]}",
                    expect=(204,))

    def add_service(self, service_type, name, url, interfaces=("public",
                                                                 "internal"),
                    region=REGION):
        """A catalog entry: the service (made once per type and name) and
        its endpoints in ``region``."""
        _, body, _ = self.request(
            "GET", f"/services?type={service_type}")
        found = [s["id"] for s in body["services"] if s["name"] == name]
        service = found[0] if found else self._create(
            "services", {"service": {"type": service_type, "name": name,
                                     "enabled": True}})
        for interface in interfaces:
            self._create("endpoints", {"endpoint": {
                "service_id": service, "interface": interface,
                "region_id": region, "url": url, "enabled": True}})
        return service

    def add_region(self, region):
        """Another region of the catalog (RegionOne is bootstrap's)."""
        self.request("POST", "/regions", {"region": {"id": region}},
                     expect=(201,))

    def _find(self, kind, name):
        _, body, _ = self.request("GET", f"/{kind}?name={name}")
        found = body[kind]
        if not found:
            raise KeystoneError(f"no {kind[:-1]} {name}")
        return found[0]["id"]

    def _create(self, kind, body):
        _, answer, _ = self.request("POST", f"/{kind}", body, expect=(201,))
        return answer[next(iter(answer))]["id"]

    # -- talking to it -----------------------------------------------------

    def token(self, user, project=None, system=False, password=None):
        """A token id of ``user`` scoped to its project (or ``project``,
        or the system)."""
        scope = ({"system": {"all": True}} if system else
                 {"project": {"name": project or USERS[user][0],
                              "domain": {"name": DOMAIN}}})
        body = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"name": DOMAIN},
                     "password": password or self.passwords[user]}}},
            "scope": scope}}
        _, _, headers = self.request("POST", "/auth/tokens", body,
                                     expect=(201,), token=False)
        return headers["X-Subject-Token"]

    def request(self, method, path, body=None, expect=(200,), token=True):
        """(status, decoded body, headers) of a v3 request made with the
        system admin's token; KeystoneError unless the status is expected
        (``expect``: statuses, or (200, 300) a range for "/")."""
        url = self.url + path if path != "/" else self.url
        request = urllib.request.Request(
            url, method=method,
            data=None if body is None else json.dumps(body).encode())
        request.add_header("Accept", "application/json")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if token and self._admin_token:
            request.add_header("X-Auth-Token", self._admin_token)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, raw, headers = (answer.status, answer.read(),
                                        answer.headers)
        except urllib.error.HTTPError as exc:
            status, raw, headers = exc.code, exc.read(), exc.headers
        ok = (expect[0] <= status < expect[1]) if path == "/" \
            else status in expect
        if not ok:
            raise KeystoneError(f"{method} {path}: {status} "
                                f"{raw[:300].decode(errors='replace')}")
        return status, json.loads(raw or b"{}"), headers

    def session(self, user, password=None):
        """A keystoneauth session of ``user`` on its project."""
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v3

        return ks_session.Session(auth=v3.Password(
            auth_url=self.url, username=user,
            password=password or self.passwords[user],
            project_name=USERS[user][0], user_domain_name=DOMAIN,
            project_domain_name=DOMAIN))

    def cloud_entry(self, user, password=None, region=REGION):
        """The clouds.yaml entry of ``user`` on its project."""
        return {"auth_type": "password",
                "auth": {"auth_url": self.url, "username": user,
                         "password": password or self.passwords[user],
                         "project_name": USERS[user][0],
                         "user_domain_name": DOMAIN,
                         "project_domain_name": DOMAIN},
                "region_name": region, "interface": "public",
                "identity_api_version": 3}

    def application_credential(self, user, seconds, name):
        """A new application credential of ``user`` on its project that
        expires in ``seconds``: (id, secret).  Keystone caps every token
        made from it at that time, whatever ``[token] expiration``."""
        import datetime

        expires = (datetime.datetime.now(datetime.timezone.utc)
                   + datetime.timedelta(seconds=seconds))
        request = urllib.request.Request(
            f"{self.url}/users/{self.users[user]}/application_credentials",
            method="POST", data=json.dumps({"application_credential": {
                "name": name,
                "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S")}})
            .encode())
        request.add_header("Content-Type", "application/json")
        request.add_header("X-Auth-Token", self.token(user))
        with urllib.request.urlopen(request, timeout=30) as answer:
            created = json.loads(answer.read())["application_credential"]
        return created["id"], created["secret"]

    def app_credential_entry(self, credential_id, secret):
        """The clouds.yaml entry of an application credential."""
        return {"auth_type": "v3applicationcredential",
                "auth": {"auth_url": self.url,
                         "application_credential_id": credential_id,
                         "application_credential_secret": secret},
                "region_name": REGION, "interface": "public",
                "identity_api_version": 3}

    def clouds_yaml(self, path, *users):
        """A clouds.yaml (mode 0600) with a cloud ``keystone-<user>`` for
        each user."""
        return server_process.write_clouds_yaml(str(path), {"clouds": {
            f"keystone-{user}": self.cloud_entry(user) for user in users}})

    def authtoken_options(self, user="mistral"):
        """keystonemiddleware's [keystone_authtoken] options, as a dict,
        for a service in front of which this Keystone checks tokens
        (memcached off)."""
        return {"www_authenticate_uri": self.url, "auth_url": self.url,
                "auth_type": "password", "username": user,
                "password": self.passwords[user],
                "project_name": USERS[user][0], "user_domain_name": DOMAIN,
                "project_domain_name": DOMAIN, "region_name": REGION,
                "memcached_servers": "",
                "service_token_roles_required": "true"}

    def authtoken_settings(self, user="mistral"):
        """authtoken_options as an ini section."""
        return "[keystone_authtoken]\n" + "".join(
            f"{key} = {value}\n".replace(" = \n", " =\n")
            for key, value in self.authtoken_options(user).items())


# Variables that hand a process OpenStack credentials.
CREDENTIAL_VARIABLES = ("OS_", "INSTANCE_HA_CLOUD")


def without_credentials(home):
    """This process's environment without any credential: no OS_*, no
    INSTANCE_HA_CLOUD, HOME and XDG_CONFIG_HOME in ``home``, an empty
    directory (no ~/.config/openstack/clouds.yaml)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(CREDENTIAL_VARIABLES)}
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = os.path.join(str(home), ".config")
    return env


def _user_and_group():
    import grp
    import pwd

    return ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name,
            "--keystone-group", grp.getgrgid(os.getgid()).gr_name]


def keystone_fixture(tmp_path_factory, skip, fail, **options):
    """Generator body of a session fixture: one started Keystone, stopped
    (SIGTERM, then SIGKILL) by its PID after the session.

        @pytest.fixture(scope="session")
        def keystone(tmp_path_factory):
            yield from keystone_support.keystone_fixture(
                tmp_path_factory, pytest.skip, pytest.fail)
    """
    require_venv(skip, lambda reason: fail(reason, pytrace=False))
    keystone = Keystone(tmp_path_factory.mktemp("keystone"), **options)
    try:
        keystone.start()
        yield keystone
    finally:
        keystone.stop(timeout=10)
        keystone.kill()
