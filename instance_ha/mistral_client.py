"""A python-mistralclient connection, from a plain URL or from Keystone.

A plain ``--mistral-url`` is for the embedded server (no auth).  Otherwise the
Keystone session comes from clouds.yaml or ``OS_*`` variables through
openstacksdk's standard loader, and Mistral's endpoint from the catalog.
"""

import requests
from keystoneauth1 import exceptions as ks_exceptions
from mistralclient.api import base as mistral_base
from mistralclient.api import client as mistral_api

DEFAULT_TIMEOUT = 30.0
SERVICE_TYPE = "workflowv2"


class MistralError(Exception):
    """Mistral could not be reached, or refused a request."""


class _TimeoutSession(requests.Session):
    """requests has no session-wide timeout; a hung Mistral must not hang
    us."""

    def __init__(self, timeout):
        super().__init__()
        self._timeout = timeout

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


# Everything python-mistralclient raises for an unreachable or failing
# Mistral, whichever session carries the requests.
TRANSPORT_ERRORS = (
    requests.RequestException,
    ks_exceptions.ClientException,
    mistral_base.APIException,
)


def connect(mistral_url=None, cloud=None, clouds_yaml=None,
            timeout=DEFAULT_TIMEOUT):
    """A mistralclient ``Client``; raises MistralError when none can be made.

    With ``mistral_url`` and no ``cloud``: no authentication.  Otherwise a
    keystoneauth session for ``cloud`` (or ``OS_CLOUD``, or ``OS_*``
    variables), and ``mistral_url`` overrides the catalog's endpoint; the
    cloud's ``region_name`` goes with every request (``X-Region-Name``).
    """
    if mistral_url and not cloud:
        url = normalise_url(mistral_url)
        return mistral_api.client(mistral_url=url,
                                  session=_TimeoutSession(timeout))
    session, region = keystone_session(cloud, clouds_yaml, timeout)
    url = (normalise_url(mistral_url) if mistral_url
           else catalog_endpoint(session, region))
    # X-Region-Name: Mistral hands it to the actions (their security
    # context's region_name), which then take Nova's endpoints of the
    # cloud's region from the catalog, not the first region's.
    return mistral_api.client(mistral_url=url, session=session,
                              region_name=region.get_region_name())


def keystone_session(cloud=None, clouds_yaml=None, timeout=DEFAULT_TIMEOUT):
    """A keystoneauth session (it authenticates on first use) and the
    cloud's region settings, from openstacksdk's loader."""
    from openstack import config as os_config
    from openstack import exceptions as sdk_exceptions

    try:
        loader = os_config.OpenStackConfig(
            config_files=[clouds_yaml] if clouds_yaml else None)
        region = loader.get_one(cloud=cloud, api_timeout=timeout)
        return region.get_session(), region
    except (sdk_exceptions.SDKException, ks_exceptions.ClientException) \
            as exc:
        raise MistralError(f"cannot load Keystone credentials for Mistral "
                           f"(cloud {cloud or 'from OS_* variables'}): "
                           f"{exc}") from exc


def catalog_endpoint(session, region):
    """Mistral's endpoint in the Keystone catalog."""
    try:
        return session.get_endpoint(
            service_type=SERVICE_TYPE, interface=region.get_interface(),
            region_name=region.get_region_name())
    except ks_exceptions.EndpointNotFound as exc:
        raise MistralError("the Keystone catalog has no Mistral "
                           f"({SERVICE_TYPE}) endpoint: {exc}") from exc
    except (ks_exceptions.ClientException, requests.RequestException) \
            as exc:
        raise MistralError(f"cannot authenticate to Keystone for Mistral: "
                           f"{describe(exc)}") from exc


def normalise_url(url):
    """Accept ``http://host:8989`` as well as ``http://host:8989/v2``."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise MistralError(f"not an http(s) URL: {url}")
    return url if url.endswith("/v2") else url + "/v2"


def describe(exc):
    """One line for an operator, without a traceback."""
    if isinstance(exc, mistral_base.APIException):
        return f"Mistral answered {exc.error_code}: {exc.error_message}"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or host unreachable"
    if isinstance(exc, requests.Timeout):
        return "no answer within the timeout"
    return str(exc) or type(exc).__name__
