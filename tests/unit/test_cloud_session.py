"""Where the actions' credentials come from, without a cloud: the
catalog forms Mistral may hand over, and the refusals."""

import os

import pytest
import yaml
from mistral_lib.actions import context as mistral_context

from instance_ha import cloud_session

CATALOG = [
    {"type": "compute", "endpoints": [
        {"interface": "public", "region_id": "R1", "url": "https://n1"},
        {"interface": "internal", "region_id": "R1", "url": "http://n1i"},
        {"interface": "public", "region_id": "R2", "url": "https://n2"}]},
    {"type": "identity", "endpoints": [
        {"interface": "public", "region": "R1", "url": "https://k1"}]},
]


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("OS_", "INSTANCE_HA_CLOUD")):
            monkeypatch.delenv(name)
    cloud_session.clear_cache()
    yield
    cloud_session.clear_cache()


def ctx(**security):
    return mistral_context.ActionContext(
        mistral_context.SecurityContext(**security),
        mistral_context.ExecutionContext())


@pytest.mark.parametrize("form", [
    {"catalog": CATALOG}, {"token": {"catalog": CATALOG}}, CATALOG])
def test_catalog_forms(form):
    cloud = cloud_session.get(ctx(auth_token="t", service_catalog=form,
                                  region_name="R1"))
    assert cloud.source == "mistral-context"
    assert cloud.endpoint("compute") == "https://n1"
    assert cloud.client_kwargs("compute")["endpoint_override"] == \
        "https://n1"
    assert cloud.endpoint("image") is None
    with pytest.raises(cloud_session.CredentialsError):
        cloud.client_kwargs("image")


def test_region_and_interface_choose_the_endpoint(monkeypatch):
    monkeypatch.setenv("OS_INTERFACE", "internal")
    cloud = cloud_session.get(ctx(auth_token="t", region_name="R1",
                                  service_catalog=CATALOG))
    assert cloud.endpoint("compute") == "http://n1i"
    cloud = cloud_session.get(ctx(auth_token="t", region_name="R2",
                                  service_catalog=CATALOG))
    assert cloud.endpoint("compute") is None


def test_a_token_without_catalog_is_refused():
    with pytest.raises(cloud_session.CredentialsError) as error:
        cloud_session.get(ctx(auth_token="t"))
    assert "no service catalog" in str(error.value)


def test_sessions_are_cached_per_credentials():
    first = cloud_session.get(ctx(auth_token="t1", service_catalog=CATALOG))
    assert cloud_session.get(ctx(auth_token="t1",
                                 service_catalog=CATALOG)) is first
    assert cloud_session.get(ctx(auth_token="t2",
                                 service_catalog=CATALOG)) is not first


def test_the_session_has_a_timeout():
    cloud = cloud_session.get(ctx(auth_token="t", service_catalog=CATALOG))
    assert cloud.session.timeout == cloud_session.DEFAULT_TIMEOUT


def test_nothing_configured():
    with pytest.raises(cloud_session.CredentialsError) as error:
        cloud_session.get(ctx())
    assert "OS_* variables" in str(error.value)


def test_clouds_yaml_with_its_own_timeout(monkeypatch, tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"c": {
        "auth_type": "password", "api_timeout": 7,
        "auth": {"auth_url": "http://k", "username": "u",
                 "password": "p", "project_name": "x"}}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    monkeypatch.setenv("OS_CLOUD", "c")
    cloud = cloud_session.get(None)
    assert cloud.source == "cloud c"
    assert cloud.session.timeout == 7.0
    monkeypatch.setenv("INSTANCE_HA_CLOUD", "missing")
    with pytest.raises(cloud_session.CredentialsError) as error:
        cloud_session.get(None)
    assert "missing from INSTANCE_HA_CLOUD" in str(error.value)
    assert "p" not in str(error.value).split()


def test_an_endpoint_override_names_where_a_service_is(monkeypatch,
                                                       tmp_path):
    """admin_token has no catalog: its endpoint answers for every
    service, unless clouds.yaml says where one is."""
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"c": {
        "auth_type": "admin_token",
        "auth": {"endpoint": "http://nova/v2.1", "token": "t"},
        "placement_endpoint_override": "http://nova/placement"}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    monkeypatch.setenv("OS_CLOUD", "c")
    cloud = cloud_session.get(None)
    assert cloud.endpoint("placement") == "http://nova/placement"
    assert cloud.endpoint("compute") == "http://nova/v2.1"
