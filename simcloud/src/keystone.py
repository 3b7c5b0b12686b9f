"""A Keystone v3 for the simulated cloud: projects, users, roles,
application credentials, tokens with a service catalog, version discovery.

Served under /identity: GET /identity (version list), GET /identity/v3
(the v3 version), POST /identity/v3/auth/tokens (password and
application_credential methods, 201 with X-Subject-Token), GET
/identity/v3/auth/tokens (validate X-Subject-Token)."""

import base64
import dataclasses
import datetime
import hashlib
import hmac
import secrets
import time
import uuid

from instance_ha.simcloud import errors
from instance_ha.simcloud.wire import BadJSON
from instance_ha.simcloud.wire import Response

TOKEN_LIFETIME = 3600.0
DOMAIN = {"id": "default", "name": "Default"}
REGION = "RegionOne"
ADMIN_PASSWORD = "simcloud-admin-password"
MEMBER_PASSWORD = "simcloud-demo-password"
APP_CREDENTIAL_SECRET = "simcloud-app-credential-secret"


@dataclasses.dataclass
class Context:
    """Who is calling: what a validated token says."""
    user_id: str
    project_id: str
    roles: tuple
    request_id: str = ""

    @property
    def is_admin(self):
        return "admin" in self.roles


@dataclasses.dataclass
class Project:
    id: str
    name: str


@dataclasses.dataclass
class User:
    id: str
    name: str
    password: str
    project: Project            # the default project
    # project id -> role names: the user's role assignments
    assignments: dict = dataclasses.field(default_factory=dict)

    @property
    def roles(self):
        return self.assignments[self.project.id]


@dataclasses.dataclass
class ApplicationCredential:
    id: str
    name: str
    secret: str
    user: User


@dataclasses.dataclass
class _Token:
    context: Context
    user: User
    project: Project
    methods: list
    issued_at: datetime.datetime

    @property
    def expires_at(self):
        return self.issued_at + datetime.timedelta(seconds=TOKEN_LIFETIME)


def _role_names(admin):
    return ("admin", "member", "reader") if admin else ("member", "reader")


class Identity:
    """Users and tokens.  By default: project ``admin`` with user ``admin``
    (role admin, also on project ``service`` as Masakari's privileged user
    expects), project ``demo`` with user ``demo`` (role member), and an
    application credential of ``admin`` named ``simcloud``."""

    def __init__(self, admin_password=ADMIN_PASSWORD,
                 member_password=MEMBER_PASSWORD,
                 app_credential_secret=APP_CREDENTIAL_SECRET):
        # Tokens are signed, not stored (as Keystone's Fernet tokens), so
        # a client that authenticates before every call costs no memory.
        self._key = secrets.token_bytes(32)
        self.projects = {}
        self.users = {}
        self.application_credentials = {}
        self.admin_project = self.add_project("admin")
        self.member_project = self.add_project("demo")
        self.admin = self.add_user("admin", admin_password,
                                   self.admin_project, admin=True)
        self.member = self.add_user("demo", member_password,
                                    self.member_project)
        self.assign(self.admin, self.add_project("service"), admin=True)
        self.add_application_credential(self.admin, "simcloud",
                                        app_credential_secret)

    def add_project(self, name):
        project = Project(id=uuid.uuid4().hex, name=name)
        self.projects[project.id] = project
        return project

    def add_user(self, name, password, project, admin=False):
        user = User(id=uuid.uuid4().hex, name=name, password=password,
                    project=project)
        self.assign(user, project, admin)
        self.users[user.id] = user
        return user

    def assign(self, user, project, admin=False):
        user.assignments[project.id] = _role_names(admin)

    def add_application_credential(self, user, name, secret):
        credential = ApplicationCredential(id=uuid.uuid4().hex, name=name,
                                           secret=secret, user=user)
        self.application_credentials[credential.id] = credential
        return credential

    def owner_of(self, project_id):
        for user in self.users.values():
            if user.project.id == project_id:
                return user.id
        return uuid.uuid4().hex

    def find_project(self, ref):
        for project in self.projects.values():
            if ref in (project.id, project.name):
                return project
        raise ValueError(f"unknown project {ref!r}")

    # -- tokens --------------------------------------------------------------

    def _sign(self, payload):
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def _issue(self, user, project, methods):
        issued = int(time.time())
        payload = ":".join([user.id, project.id, str(issued),
                            ",".join(methods), secrets.token_hex(8)])
        encoded = base64.urlsafe_b64encode(payload.encode()).decode()
        token_id = encoded + "." + self._sign(encoded.encode())
        return token_id, self.lookup(token_id)

    def lookup(self, token_id):
        """The token, if it is ours, unexpired, and its user still has a
        role on its project."""
        encoded, _, signature = (token_id or "").partition(".")
        if not hmac.compare_digest(signature.encode(),
                                   self._sign(encoded.encode()).encode()):
            return None
        user_id, project_id, issued, methods, _ = base64.urlsafe_b64decode(
            encoded).decode().split(":")
        user = self.users.get(user_id)
        if (user is None or project_id not in user.assignments
                or int(issued) + TOKEN_LIFETIME < time.time()):
            return None
        context = Context(user_id=user.id, project_id=project_id,
                          roles=user.assignments[project_id])
        return _Token(context=context, user=user,
                      project=self.projects[project_id],
                      methods=methods.split(","),
                      issued_at=datetime.datetime.fromtimestamp(
                          int(issued), datetime.timezone.utc).replace(
                              tzinfo=None))

    def validate(self, token_id, service_token=None):
        """The Context of a valid token, else None.  (``service_token``,
        the request's X-Service-Token: for external_keystone; ignored
        here.)"""
        token = self.lookup(token_id)
        return None if token is None else token.context

    def authenticate(self, auth):
        """(token id, token) for a v3 auth request body's "auth"."""
        identity = _get(auth, "identity", dict)
        methods = _get(identity, "methods", list)
        if "password" in methods:
            user = self._by_password(_get(identity, "password", dict))
            project = self._scope(auth.get("scope"), user)
        elif "application_credential" in methods:
            user = self._by_app_credential(
                _get(identity, "application_credential", dict))
            project = user.project
        else:
            raise errors.unauthenticated()
        return self._issue(user, project, methods)

    def _by_password(self, password):
        given = _get(password, "user", dict)
        user = self._find_user(given)
        if user is None or given.get("password") != user.password:
            raise errors.unauthenticated()
        return user

    def _find_user(self, given):
        if "id" in given:
            return self.users.get(given["id"])
        domain = given.get("domain") or {}
        if domain.get("id", "default") != "default" and \
                domain.get("name", "Default") != "Default":
            return None
        for user in self.users.values():
            if user.name == given.get("name"):
                return user
        return None

    def _scope(self, scope, user):
        """The project a token is for: the one asked for (by id, or by name
        in the default domain) if the user has a role on it, else 401; the
        user's default project when no scope is asked for."""
        if not scope:
            return user.project
        wanted = scope.get("project") if isinstance(scope, dict) else None
        if not isinstance(wanted, dict):
            raise errors.unauthenticated()
        for project_id in user.assignments:
            project = self.projects[project_id]
            if wanted.get("id", project.id) == project.id and \
                    wanted.get("name", project.name) == project.name:
                return project
        raise errors.unauthenticated()

    def _by_app_credential(self, given):
        credential = None
        if "id" in given:
            credential = self.application_credentials.get(given["id"])
        else:
            user = self._find_user(given.get("user") or {})
            for candidate in self.application_credentials.values():
                if candidate.user is user and \
                        candidate.name == given.get("name"):
                    credential = candidate
        if credential is None or given.get("secret") != credential.secret:
            raise errors.unauthenticated()
        return credential.user


def _get(mapping, key, kind):
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, kind):
        raise errors.KeystoneError(
            400, f"Invalid input for field '{key}': it is required and "
                 f"must be of type {kind.__name__}.")
    return value


# -- HTTP --------------------------------------------------------------------

PREFIX = "/identity"


def _v3_version(base_url):
    return {"id": "v3.14", "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self",
                       "href": f"{base_url}{PREFIX}/v3/"}],
            "media-types": [{
                "base": "application/json",
                "type": "application/vnd.openstack.identity-v3+json"}]}


def catalog(base_url):
    def endpoints(url):
        return [{"id": uuid.uuid5(uuid.NAMESPACE_URL,
                                  url + interface).hex,
                 "interface": interface, "region_id": REGION,
                 "region": REGION, "url": url}
                for interface in ("public", "internal", "admin")]

    return [
        {"id": "c0", "type": "compute", "name": "nova",
         "endpoints": endpoints(f"{base_url}/v2.1")},
        {"id": "c1", "type": "identity", "name": "keystone",
         "endpoints": endpoints(f"{base_url}{PREFIX}")},
        {"id": "c2", "type": "image", "name": "glance",
         "endpoints": endpoints(f"{base_url}/image")},
        {"id": "c3", "type": "placement", "name": "placement",
         "endpoints": endpoints(f"{base_url}/placement")},
    ]


def token_body(token, base_url):
    user = token.user
    return {"token": {
        "methods": token.methods,
        "user": {"id": user.id, "name": user.name, "domain": DOMAIN,
                 "password_expires_at": None},
        "audit_ids": [secrets.token_urlsafe(16)],
        "issued_at": token.issued_at.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "expires_at": token.expires_at.strftime(
            "%Y-%m-%dT%H:%M:%S.000000Z"),
        "project": {"id": token.project.id, "name": token.project.name,
                    "domain": DOMAIN},
        "is_domain": False,
        "roles": [{"id": uuid.uuid5(uuid.NAMESPACE_DNS, role).hex,
                   "name": role} for role in token.context.roles],
        "catalog": catalog(base_url),
    }}


def operation(request):
    """The operation name a request is logged and fault-matched under."""
    if request.path.rstrip("/").endswith("/auth/tokens"):
        return "keystone.token"
    return "keystone.discovery"


def handle(identity, request):
    path = request.path.rstrip("/")
    try:
        if path == PREFIX and request.method == "GET":
            return Response(300, {"versions": {"values": [
                _v3_version(request.base_url)]}})
        if path == PREFIX + "/v3" and request.method == "GET":
            return Response(200, {"version": _v3_version(request.base_url)})
        if path == PREFIX + "/v3/auth/tokens":
            if request.method == "POST":
                return _issue_token(identity, request)
            if request.method == "GET":
                return _check_token(identity, request)
        raise errors.KeystoneError(404, "The resource could not be found.")
    except errors.KeystoneError as exc:
        headers = []
        if exc.code == 401:
            headers.append(("WWW-Authenticate",
                            f'Keystone uri="{request.base_url}{PREFIX}"'))
        return Response(exc.code, exc.body(), headers)


def _issue_token(identity, request):
    try:
        auth = request.json().get("auth")
    except (BadJSON, AttributeError):
        raise errors.KeystoneError(
            400, "The request body is not valid JSON.") from None
    if not isinstance(auth, dict):
        raise errors.KeystoneError(
            400, "Invalid input for field 'auth': it is required.")
    token_id, token = identity.authenticate(auth)
    return Response(201, token_body(token, request.base_url),
                    [("X-Subject-Token", token_id)])


def _check_token(identity, request):
    if identity.validate(request.headers.get("X-Auth-Token")) is None:
        raise errors.unauthenticated()
    token_id = request.headers.get("X-Subject-Token")
    token = identity.lookup(token_id)
    if token is None:
        raise errors.KeystoneError(
            404, f"Could not find token: {token_id}.")
    return Response(200, token_body(token, request.base_url),
                    [("X-Subject-Token", token_id)])
