"""Tokens of an external (real) Keystone for the simulated cloud's Nova,
placement and Glance, as keystonemiddleware checks them for a real Nova.

    identity = ExternalKeystone(auth_url, "nova", password, "service")
    identity.adopt(cloud, {"admin": admin_id, "demo": demo_id})

``validate(token, service_token)`` asks Keystone (``GET /v3/auth/tokens``
with ``X-Subject-Token``, authenticated by the service user given here)
what a token is: user, project, roles.  Answers are cached until the
token's ``expires_at`` (at most ``cache_seconds``), so a recovery's many
calls cost Keystone one validation per token.  An expired token is refused
(401) unless the request also carries a valid ``X-Service-Token`` of a user
with a role of ``service_token_roles``: then the user's token is validated
with ``allow_expired=1``, within Keystone's ``[token]
allow_expired_window`` -- keystonemiddleware's rule for long-running
operations (``service_token_roles``, ``service_token_roles_required =
True``).

Projects: ``adopt`` moves the model's projects (admin, demo, service)
onto Keystone's projects of the same name, so that servers belong to
Keystone's project ids.  The simulated cloud's own
``/identity`` still answers for its local users; Nova no longer accepts
their tokens.
"""

import datetime
import json
import threading
import time
import urllib.error
import urllib.request

from instance_ha.simcloud import keystone
from instance_ha.simcloud.keystone import Context
from instance_ha.simcloud.keystone import Project

SERVICE_TOKEN_ROLES = ("service",)


class KeystoneUnavailable(RuntimeError):
    """The external Keystone did not answer as Keystone does."""


class ExternalKeystone(keystone.Identity):
    """An Identity whose ``validate`` asks a real Keystone."""

    def __init__(self, auth_url, username, password, project_name,
                 domain="Default", service_token_roles=SERVICE_TOKEN_ROLES,
                 cache_seconds=300.0, timeout=10.0):
        super().__init__()
        self.auth_url = auth_url.rstrip("/")
        if not self.auth_url.endswith("/v3"):
            self.auth_url += "/v3"
        self._credentials = (username, password, project_name, domain)
        self.service_token_roles = tuple(service_token_roles)
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._lock = threading.Lock()
        self._own_token = None          # (token id, renew at: epoch)
        self._cache = {}                # (token, allow_expired) -> entry
        self.validations = 0            # requests made to Keystone
        self.errors = []                # Keystone not answering
        # requests let in on an expired token and a service token
        self.expired_accepted = 0

    # -- the model's projects --------------------------------------------

    def adopt(self, cloud, projects):
        """Become ``cloud.identity``.  ``projects``: Keystone's project id
        of each name; the model's projects of those names become
        Keystone's (their servers follow)."""
        old = cloud.identity
        self.projects = {pid: Project(id=pid, name=name)
                         for name, pid in projects.items()}
        moved = {p.id: self.projects[projects[p.name]]
                 for p in old.projects.values() if p.name in projects}
        self.admin_project = moved.get(old.admin_project.id,
                                       old.admin_project)
        self.member_project = moved.get(old.member_project.id,
                                        old.member_project)
        for server in cloud.servers.values():
            if server.project_id in moved:
                server.project_id = moved[server.project_id].id
        cloud.identity = self
        return self

    def owner_of(self, project_id):
        return "0" * 32

    # -- tokens ------------------------------------------------------------

    def validate(self, token_id, service_token=None):
        """The Context of a valid token, else None (Nova answers 401)."""
        if not token_id:
            return None
        try:
            return self._validate(token_id, service_token)
        except KeystoneUnavailable as exc:
            self.errors.append(str(exc))
            return None

    def _validate(self, token_id, service_token):
        allow_expired = False
        if service_token:
            service, _ = self._lookup(service_token, allow_expired=False)
            if service is None or not set(service.roles) & set(
                    self.service_token_roles):
                return None
            allow_expired = True
        context, expires = self._lookup(token_id, allow_expired)
        if context is not None and expires <= time.time():
            with self._lock:
                self.expired_accepted += 1
        return context

    def _lookup(self, token_id, allow_expired):
        """(Context or None, the token's expires_at as epoch)."""
        key = (token_id, allow_expired)
        now = time.time()
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None and now < entry[0]:
            return entry[1], entry[2]
        context, expires = self._ask(token_id, allow_expired)
        if context is not None:
            until = now + self.cache_seconds
            if not allow_expired:
                until = min(until, expires)
            with self._lock:
                if len(self._cache) > 1000:
                    self._cache.clear()
                self._cache[key] = (until, context, expires)
        return context, expires

    def _ask(self, token_id, allow_expired):
        query = "?allow_expired=1" if allow_expired else ""
        status, body, _ = self._request(
            "GET", "/auth/tokens" + query, self._token(),
            {"X-Subject-Token": token_id})
        self.validations += 1
        if status != 200:
            return None, 0
        token = body["token"]
        project = token.get("project")
        if project is None:          # unscoped or domain-scoped
            return None, 0
        context = Context(user_id=token["user"]["id"],
                          project_id=project["id"],
                          roles=tuple(r["name"] for r in token["roles"]))
        return context, _epoch(token["expires_at"])

    def _token(self):
        """The service user's own token, renewed a minute before it
        expires (half-way through its life, for a life under 2 min)."""
        with self._lock:
            if self._own_token and time.time() < self._own_token[1]:
                return self._own_token[0]
        username, password, project_name, domain = self._credentials
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "password": password,
                "domain": {"name": domain}}}},
            "scope": {"project": {"name": project_name,
                                  "domain": {"name": domain}}}}}
        status, answer, headers = self._request("POST", "/auth/tokens",
                                                None, body=body)
        if status != 201:
            raise KeystoneUnavailable(
                f"the simulated cloud's service user {username} cannot "
                f"authenticate to {self.auth_url}: {status}")
        now = time.time()
        life = _epoch(answer["token"]["expires_at"]) - now
        token = (headers["X-Subject-Token"],
                 now + (life - 60 if life > 120 else life / 2))
        with self._lock:
            self._own_token = token
        return token[0]

    def _request(self, method, path, token, headers=None, body=None):
        request = urllib.request.Request(
            self.auth_url + path, method=method,
            data=None if body is None else json.dumps(body).encode())
        request.add_header("Accept", "application/json")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("X-Auth-Token", token)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request,
                                        timeout=self.timeout) as answer:
                return (answer.status, json.loads(answer.read() or b"{}"),
                        answer.headers)
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {}
            return exc.code, payload, exc.headers
        except (urllib.error.URLError, OSError) as exc:
            raise KeystoneUnavailable(f"{method} {self.auth_url}{path}: "
                                      f"{exc}") from exc


def _epoch(text):
    """Keystone's expires_at (2026-01-01T00:00:00.000000Z) as epoch."""
    value = datetime.datetime.strptime(
        text.rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()
