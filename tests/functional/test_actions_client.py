"""The client layer under the actions: where credentials come from, which
microversion each call uses, and no secret in any input or log line."""

import inspect
import logging

import pytest
from actions_support import clean_environment
from actions_support import context
from actions_support import error_of
from actions_support import run
from actions_support import write_clouds

from instance_ha import cloud_session
from instance_ha import pack
from instance_ha.actions.host_servers import HostServers
from instance_ha.actions.recover_servers import RecoverServers
from instance_ha.actions.service_force_down import ServiceForceDown
from instance_ha.simcloud import keystone
from instance_ha.simcloud import testing

pytest_plugins = ("actions_support",)


def listing_works():
    result = run(HostServers({"host": "compute1"}))
    assert not hasattr(result, "error"), result.error
    assert result["count"] == 2
    return result


@pytest.fixture
def sim(simcloud_factory, monkeypatch):
    clean_environment(monkeypatch)
    return simcloud_factory()


def test_named_cloud_from_os_cloud(sim, monkeypatch, tmp_path):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                       write_clouds(tmp_path, sim.clouds()))
    monkeypatch.setenv("OS_CLOUD", "simcloud")
    listing_works()
    assert cloud_session.get(context()).source == "cloud simcloud"


def test_instance_ha_cloud_wins_over_os_cloud(sim, monkeypatch, tmp_path):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                       write_clouds(tmp_path, sim.clouds()))
    monkeypatch.setenv("OS_CLOUD", "simcloud-user")
    error = error_of(run(HostServers({"host": "compute1"})))
    assert error["code"] == 403
    monkeypatch.setenv("INSTANCE_HA_CLOUD", "simcloud")
    listing_works()


def test_unknown_cloud_name(sim, monkeypatch, tmp_path):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                       write_clouds(tmp_path, sim.clouds()))
    monkeypatch.setenv("INSTANCE_HA_CLOUD", "nosuchcloud")
    error = error_of(run(HostServers({"host": "compute1"})))
    assert "cloud nosuchcloud from INSTANCE_HA_CLOUD" in error["reason"]
    assert len(sim.cloud.calls) == 0


def test_os_variables(sim, monkeypatch):
    admin = sim.cloud.identity.admin
    for name, value in {"OS_AUTH_URL": sim.auth_url,
                        "OS_USERNAME": admin.name,
                        "OS_PASSWORD": admin.password,
                        "OS_PROJECT_NAME": admin.project.name,
                        "OS_USER_DOMAIN_NAME": "Default",
                        "OS_PROJECT_DOMAIN_NAME": "Default",
                        "OS_IDENTITY_API_VERSION": "3",
                        "OS_REGION_NAME": keystone.REGION}.items():
        monkeypatch.setenv(name, value)
    listing_works()
    assert cloud_session.get(context()).source == "cloud envvars"


def test_no_credentials_at_all(sim):
    error = error_of(run(HostServers({"host": "compute1"})))
    assert "OS_* variables" in error["reason"]
    assert error["host"] == "compute1"


def test_application_credential(sim, monkeypatch, tmp_path):
    (credential,) = sim.cloud.identity.application_credentials.values()
    clouds = {"clouds": {"ha": {
        "auth_type": "v3applicationcredential",
        "auth": {"auth_url": sim.auth_url,
                 "application_credential_id": credential.id,
                 "application_credential_secret": credential.secret},
        "region_name": keystone.REGION}}}
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", write_clouds(tmp_path,
                                                             clouds))
    monkeypatch.setenv("INSTANCE_HA_CLOUD", "ha")
    listing_works()
    (token,) = sim.cloud.calls.calls(operation="keystone.token")
    assert token.status == 201


def test_admin_token_and_endpoint(sim, monkeypatch, tmp_path):
    token = testing.session(sim).get_token()
    clouds = {"clouds": {"ha": {
        "auth_type": "admin_token",
        "auth": {"token": token, "endpoint": sim.compute_url}}}}
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", write_clouds(tmp_path,
                                                             clouds))
    monkeypatch.setenv("OS_CLOUD", "ha")
    mark = len(sim.cloud.calls)
    listing_works()
    assert not [c for c in sim.cloud.calls.calls()[mark:]
                if c.operation.startswith("keystone.")]


def mistral_context(sim, token=None, catalog="token"):
    token = token or testing.session(sim).get_token()
    entries = keystone.catalog(sim.url)
    forms = {"token": {"catalog": entries},
             "wrapped": {"token": {"catalog": entries}},
             "list": entries, "none": None}
    return context(auth_token=token, auth_uri=sim.auth_url + "/v3",
                   project_id=sim.cloud.identity.admin_project.id,
                   region_name=keystone.REGION,
                   service_catalog=forms[catalog])


@pytest.mark.parametrize("form", ["token", "wrapped", "list"])
def test_the_mistral_context_token_wins(sim, monkeypatch, tmp_path, form):
    # A clouds.yaml naming the non-admin user is there too: not used.
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                       write_clouds(tmp_path, sim.clouds()))
    monkeypatch.setenv("OS_CLOUD", "simcloud-user")
    ctx = mistral_context(sim, catalog=form)
    mark = len(sim.cloud.calls)
    result = run(HostServers({"host": "compute1"}), ctx)
    assert result["count"] == 2
    # The request's token is used as it is: no new token is issued.
    assert not [c for c in sim.cloud.calls.calls()[mark:]
                if c.operation.startswith("keystone.")]
    assert cloud_session.get(ctx).source == "mistral-context"


def test_a_context_token_without_catalog(sim):
    error = error_of(run(HostServers({"host": "compute1"}),
                         mistral_context(sim, catalog="none")))
    assert "no service catalog" in error["reason"]


def test_a_context_without_token_falls_back_to_clouds_yaml(
        sim, monkeypatch, tmp_path):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                       write_clouds(tmp_path, sim.clouds()))
    monkeypatch.setenv("OS_CLOUD", "simcloud")
    ctx = context(auth_uri=sim.auth_url, project_id="x")
    assert run(HostServers({"host": "compute1"}), ctx)["count"] == 2


def test_a_keystone_503_is_retried(sim, monkeypatch, tmp_path):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                       write_clouds(tmp_path, sim.clouds()))
    monkeypatch.setenv("OS_CLOUD", "simcloud")
    sim.cloud.faults.add("keystone.token", status=503, times=1)
    listing_works()


def test_negotiated_once_and_chosen_per_call(sim, monkeypatch, tmp_path,
                                             pacemaker):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                       write_clouds(tmp_path, sim.clouds()))
    monkeypatch.setenv("OS_CLOUD", "simcloud")
    sim.cloud.kill_host("compute1")
    run(ServiceForceDown("compute1", "test"))
    servers = run(HostServers({"host": "compute1"}))["servers"]
    result = run(RecoverServers(servers, "compute1", timeout=10,
                                interval=0.1))
    assert [r["outcome"] for r in result["servers"]] == ["moved", "moved"]
    calls = [c for c in sim.cloud.calls.calls()
             if not c.operation.startswith("keystone.")]
    assert [c.operation for c in calls].count("nova.version") == 1
    by_operation = {}
    for call in calls:
        by_operation.setdefault(call.operation, set()).add(call.microversion)
    assert by_operation["evacuate"] == {"2.94"}
    assert by_operation["lock"] == {"2.96"}
    assert by_operation["unlock"] == {"2.96"}
    assert by_operation["services.update"] == {"2.96"}
    assert by_operation["servers.show"] == {"2.96"}
    assert by_operation["migrations.list"] == {"2.96"}
    for entry in servers:
        server = sim.cloud.servers[entry["id"]]
        assert (server.vm_state, server.power_state) == ("active", 1)
        assert server.host != "compute1"
    assert sim.cloud.calls.accepted_evacuations() == {
        entry["id"]: 1 for entry in servers}


def secrets_of(sim):
    """The passwords, the application credential secret, and every token
    the actions' sessions hold."""
    identity = sim.cloud.identity
    values = {identity.admin.password, identity.member.password}
    values |= {c.secret for c in identity.application_credentials.values()}
    values |= {cloud.session.get_token()
               for cloud in cloud_session._cache.values()}
    return values


def test_no_secret_in_any_log_line(sim, monkeypatch, tmp_path, caplog,
                                   pacemaker):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                       write_clouds(tmp_path, sim.clouds()))
    monkeypatch.setenv("OS_CLOUD", "simcloud")
    caplog.set_level(logging.DEBUG)
    sim.cloud.kill_host("compute1")
    sim.cloud.faults.add("evacuate", status=503, times=1)
    sim.cloud.faults.add("servers.show", status=503, times=1)
    run(ServiceForceDown("compute1", "test"))
    entry = run(HostServers({"host": "compute1"}))["servers"][0]
    missing = "8d7cf0b4-1111-4222-8333-944445555666"
    # One server locked, evacuated (a 503 retried), waited for (a 503
    # retried) and unlocked; one Nova does not know, which fails.
    result = run(RecoverServers(
        [entry, dict(entry, id=missing, name="gone")], "compute1",
        timeout=10, interval=0.1))
    assert [(r["name"], r["outcome"]) for r in result["servers"]] == [
        (entry["name"], "moved"), ("gone", "failed")]
    ctx = mistral_context(sim)
    run(HostServers({"host": "compute1"}), ctx)
    secrets = secrets_of(sim) | {ctx.security.auth_token}
    assert len(secrets) == 5
    text = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert "evacuat" in text and "retrying" in text
    for secret in secrets:
        assert secret not in text
        assert secret not in caplog.text


def test_no_action_takes_a_credential():
    words = ("password", "token", "secret", "credential", "auth")
    for entry_point in pack.action_entry_points():
        cls = entry_point.load()
        for name in inspect.signature(cls.__init__).parameters:
            assert not any(w in name.lower() for w in words), \
                (entry_point.name, name)


def test_a_wrong_password_is_one_clear_error(sim, monkeypatch, tmp_path):
    clouds = sim.clouds()
    clouds["clouds"]["simcloud"]["auth"]["password"] = "not-the-password"
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", write_clouds(tmp_path,
                                                             clouds))
    monkeypatch.setenv("OS_CLOUD", "simcloud")
    error = error_of(run(HostServers({"host": "compute1"})))
    assert error["code"] == 401
    assert "not-the-password" not in error["reason"]
    assert not [c for c in sim.cloud.calls.calls()
                if not c.operation.startswith("keystone.")]
