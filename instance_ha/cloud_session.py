"""The keystoneauth session the pack's actions talk to the cloud with.

Credentials come, in this order, from:

1. the Mistral execution's security context, when Mistral runs with
   Keystone and the context carries a token: the request's token is used
   as it is against the endpoints of its service catalog, as mistral-extra's
   OpenStack actions do (keystoneauth ``token_endpoint.Token``).  The token
   is not exchanged for a new one: it is already scoped to the caller's
   project, and a trust-scoped token may not be rescoped.  Mistral renews
   nothing: every action of the execution carries the token of the request
   that started it, also once it has expired.  So when the action runs in
   a Mistral process with Keystone auth (``[pecan] auth_enable``, and
   ``[keystone_authtoken] auth_type`` set: Mistral's own service user),
   each request also carries a service token of that user
   (``X-Service-Token``, keystoneauth ``ServiceTokenAuthWrapper``): a
   service behind keystonemiddleware then accepts the expired user token
   within Keystone's ``[token] allow_expired_window`` (doc/keystone.rst);
2. a named cloud of clouds.yaml: ``INSTANCE_HA_CLOUD``, else ``OS_CLOUD``
   (the file: openstacksdk's search path, or ``OS_CLIENT_CONFIG_FILE``);
3. ``OS_*`` variables.

2 and 3 are read by openstacksdk's loader (``openstack.config``), so every
auth type it knows works (password, v3applicationcredential, admin_token,
...).  Credentials are never action inputs: Mistral stores and shows inputs.

Sessions are cached per process and per credentials, so that consecutive
actions on one executor reuse one token.

Where a service is: the catalog, except that a cloud of clouds.yaml (or
OS_* variables) may name it with openstacksdk's
``<service>_endpoint_override`` (e.g. ``placement_endpoint_override``):
``Cloud.endpoint`` answers with that.  An auth type without a catalog
(``admin_token`` with an endpoint) needs it for every service other than
the one its endpoint is.
"""

import collections
import hashlib
import json
import os
import sys
import threading

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

DEFAULT_TIMEOUT = 30.0
CLOUD_VARIABLE = "INSTANCE_HA_CLOUD"
DEFAULT_INTERFACE = "public"
_CACHE_SIZE = 16
_cache = collections.OrderedDict()
_cache_lock = threading.Lock()


class CredentialsError(Exception):
    """No usable credentials, or the configuration is broken."""


class Cloud:
    """A session and where its services are."""

    def __init__(self, session, source, interface=None, region_name=None,
                 catalog=None, overrides=None):
        self.session = session
        self.source = source
        self.interface = interface
        self.region_name = region_name
        self._catalog = catalog
        # service type -> the configured <service>_endpoint_override
        self._overrides = overrides or (lambda service_type: None)

    def endpoint(self, service_type):
        """The URL of a service: its configured endpoint override, else
        the catalog's; None when there is neither."""
        override = self._overrides(service_type)
        if override:
            return override
        if self._catalog is None:
            return self.session.get_endpoint(
                service_type=service_type, interface=self.interface,
                region_name=self.region_name)
        return _catalog_url(self._catalog, service_type, self.interface,
                            self.region_name)

    def client_kwargs(self, service_type):
        """keyword arguments for a python-*client built on the session."""
        if self._catalog is None:
            return {"session": self.session,
                    "endpoint_type": self.interface,
                    "region_name": self.region_name}
        url = self.endpoint(service_type)
        if url is None:
            raise CredentialsError(
                f"the Mistral request's service catalog has no "
                f"{service_type} endpoint ({self.interface})")
        return {"session": self.session, "endpoint_override": url}


def get(context=None, timeout=None):
    """The Cloud for an action run with this mistral-lib ActionContext."""
    timeout = timeout or DEFAULT_TIMEOUT
    security = getattr(context, "security", None)
    if security is not None and getattr(security, "auth_token", None):
        return _from_security_context(security, timeout)
    return _from_config(timeout)


def clear_cache():
    with _cache_lock:
        _cache.clear()


def _cached(key, build):
    digest = hashlib.sha256(
        json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    with _cache_lock:
        cloud = _cache.get(digest)
        if cloud is not None:
            _cache.move_to_end(digest)
            return cloud
    cloud = build()
    with _cache_lock:
        _cache[digest] = cloud
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return cloud


# -- 1. Mistral's security context --------------------------------------

def _from_security_context(security, timeout):
    catalog = _catalog_entries(security.service_catalog)
    if not catalog:
        raise CredentialsError("the Mistral request carries a token but no "
                               "service catalog")
    interface = os.environ.get("OS_INTERFACE") or DEFAULT_INTERFACE
    region = getattr(security, "region_name", None)
    verify = _verify(security)
    key = ["context", security.auth_token, catalog, interface, region,
           verify, timeout]

    def build():
        identity = security.auth_uri or _catalog_url(
            catalog, "identity", interface, region)
        auth = token_endpoint.Token(endpoint=identity,
                                    token=security.auth_token)
        service = _mistral_service_auth()
        if service is not None:
            from keystoneauth1 import service_token

            auth = service_token.ServiceTokenAuthWrapper(
                user_auth=auth, service_auth=service)
        session = ks_session.Session(auth=auth, verify=verify,
                                     timeout=timeout)
        return Cloud(session, "mistral-context", interface, region,
                     catalog)

    return _cached(key, build)


_service_auth = []


def _mistral_service_auth():
    """The auth plugin of Mistral's service user (``[keystone_authtoken]``
    of this Mistral process, loaded as Mistral loads it for its trusts),
    one per process; None outside Mistral or with Mistral's auth off."""
    if "mistral" not in sys.modules:
        return None
    with _cache_lock:
        if _service_auth:
            return _service_auth[0]
    from keystoneauth1 import loading
    from oslo_config import cfg

    conf = cfg.CONF
    try:
        enabled = conf.pecan.auth_enable
        loading.register_auth_conf_options(conf, "keystone_authtoken")
        auth_type = conf.keystone_authtoken.auth_type
    except (cfg.Error, AttributeError):
        return None
    if not enabled or not auth_type:
        return None
    auth = loading.load_auth_from_conf_options(conf, "keystone_authtoken")
    with _cache_lock:
        if not _service_auth:
            _service_auth.append(auth)
        return _service_auth[0]


def _verify(security):
    if getattr(security, "insecure", False):
        return False
    return getattr(security, "auth_cacert", None) or True


def _catalog_entries(service_catalog):
    """The v3 catalog list, whichever form Mistral stored: the token body
    ({"catalog": [...]}), {"token": {...}}, or the list itself."""
    if isinstance(service_catalog, dict):
        if "token" in service_catalog:
            service_catalog = service_catalog["token"]
        service_catalog = service_catalog.get("catalog")
    return service_catalog if isinstance(service_catalog, list) else None


def _catalog_url(catalog, service_type, interface, region):
    for service in catalog:
        if service.get("type") != service_type:
            continue
        for endpoint in service.get("endpoints", []):
            if region and endpoint.get("region_id",
                                       endpoint.get("region")) != region:
                continue
            if "interface" in endpoint:
                if endpoint["interface"] == interface:
                    return endpoint["url"]
            elif endpoint.get(interface + "URL"):
                return endpoint[interface + "URL"]
    return None


# -- 2. and 3. clouds.yaml, OS_* ----------------------------------------

def _from_config(timeout):
    from keystoneauth1 import exceptions as ks_exceptions
    from openstack import config as os_config
    from openstack import exceptions as sdk_exceptions

    name = os.environ.get(CLOUD_VARIABLE) or None
    try:
        loader = os_config.OpenStackConfig()
        region = loader.get_one(cloud=name)
    except (sdk_exceptions.SDKException,
            ks_exceptions.ClientException) as exc:
        raise CredentialsError(
            f"cannot load the cloud credentials ({_describe_source(name)}): "
            f"{exc}") from None
    config = dict(region.config)
    if not config.get("api_timeout"):
        region.config["api_timeout"] = timeout
    if not config.get("auth_type") or not config.get("auth"):
        raise CredentialsError(
            f"no cloud credentials: set {CLOUD_VARIABLE} or OS_CLOUD (and "
            "OS_CLIENT_CONFIG_FILE for a clouds.yaml outside the standard "
            "places), or OS_* variables")
    key = ["config", region.name, config, timeout]

    def build():
        try:
            session = region.get_session()
        except (sdk_exceptions.SDKException,
                ks_exceptions.ClientException) as exc:
            raise CredentialsError(
                f"cannot build a session for cloud {region.name}: {exc}"
            ) from None
        return Cloud(session, f"cloud {region.name}",
                     region.get_interface() or DEFAULT_INTERFACE,
                     region.get_region_name(),
                     overrides=lambda service_type: _override(
                         region, service_type))

    return _cached(key, build)


def _override(region, service_type):
    """``<service>_endpoint_override`` of the cloud's config, or None."""
    return region.config.get(
        f"{service_type.replace('-', '_')}_endpoint_override") or None


def _describe_source(name):
    if name:
        return f"cloud {name} from {CLOUD_VARIABLE}"
    if os.environ.get("OS_CLOUD"):
        return f"cloud {os.environ['OS_CLOUD']} from OS_CLOUD"
    return "OS_* variables"
