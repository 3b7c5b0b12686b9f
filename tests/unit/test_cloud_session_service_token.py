"""The service token beside the execution's token (doc/keystone.rst):
added when the action runs in a Mistral process with Keystone auth, not
otherwise."""

import pytest
from keystoneauth1 import plugin
from keystoneauth1 import service_token
from keystoneauth1 import token_endpoint
from mistral_lib.actions import context as mistral_context

from instance_ha import cloud_session

CATALOG = [{"type": "compute", "endpoints": [
    {"interface": "public", "region_id": "R1", "url": "https://n1"}]}]


class ServiceUser(plugin.BaseAuthPlugin):
    def get_token(self, session, **kwargs):
        return "service-token"


@pytest.fixture(autouse=True)
def clean():
    cloud_session.clear_cache()
    yield
    cloud_session.clear_cache()


def cloud():
    return cloud_session.get(mistral_context.ActionContext(
        mistral_context.SecurityContext(auth_token="user-token",
                                        service_catalog=CATALOG),
        mistral_context.ExecutionContext()))


def test_without_mistrals_service_user_only_the_users_token(monkeypatch):
    monkeypatch.setattr(cloud_session, "_mistral_service_auth",
                        lambda: None)
    auth = cloud().session.auth
    assert isinstance(auth, token_endpoint.Token)


def test_with_mistrals_service_user_both_tokens(monkeypatch):
    monkeypatch.setattr(cloud_session, "_mistral_service_auth",
                        ServiceUser)
    session = cloud().session
    assert isinstance(session.auth, service_token.ServiceTokenAuthWrapper)
    assert session.get_auth_headers() == {
        "X-Auth-Token": "user-token", "X-Service-Token": "service-token"}


def test_outside_a_mistral_process_no_service_user(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "mistral", raising=False)
    assert cloud_session._mistral_service_auth() is None
