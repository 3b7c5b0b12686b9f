"""The simulated cloud's Keystone, version discovery and microversion
negotiation, and the HTTP layer: keep-alive, clouds.yaml, the command."""

import http.client
import json
import os
import stat

import openstack.config
import pytest
import yaml
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from novaclient import api_versions
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from instance_ha.simcloud import testing


def test_password_auth_finds_compute_in_the_catalog(simcloud):
    session = testing.session(simcloud)
    assert session.get_endpoint(service_type="compute",
                                interface="public") == simcloud.compute_url
    assert session.get_user_id() == simcloud.cloud.identity.admin.id
    access = session.auth.get_access(session)
    assert "admin" in access.role_names
    assert access.project_name == "admin"


def test_scope_to_an_assigned_project_only(simcloud):
    def token_for(username, password, project):
        auth = v3.Password(auth_url=simcloud.auth_url, username=username,
                           password=password, project_name=project,
                           user_domain_name="Default",
                           project_domain_name="Default")
        session = ks_session.Session(auth=auth)
        return session.auth.get_access(session)

    identity = simcloud.cloud.identity
    # Masakari's privileged user defaults to project "service".
    access = token_for("admin", identity.admin.password, "service")
    assert (access.project_name, "admin" in access.role_names) == (
        "service", True)
    with pytest.raises(ks_exc.Unauthorized):
        token_for("demo", identity.member.password, "admin")


def test_every_session_gets_a_fresh_token(simcloud):
    tokens = {testing.session(simcloud).get_token() for _ in range(3)}
    assert len(tokens) == 3
    for token in tokens:
        assert simcloud.cloud.identity.validate(token) is not None


def test_wrong_password_is_401(simcloud):
    auth = v3.Password(auth_url=simcloud.auth_url, username="admin",
                       password="wrong", project_name="admin",
                       user_domain_name="Default",
                       project_domain_name="Default")
    with pytest.raises(ks_exc.Unauthorized) as error:
        ks_session.Session(auth=auth).get_token()
    assert error.value.http_status == 401
    assert "The request you have made requires authentication." in \
        str(error.value)


def test_application_credential(simcloud):
    credential = next(iter(
        simcloud.cloud.identity.application_credentials.values()))
    auth = v3.ApplicationCredential(
        auth_url=simcloud.auth_url, application_credential_id=credential.id,
        application_credential_secret=credential.secret)
    nova = nova_client.Client("2.53", session=ks_session.Session(auth=auth))
    assert len(nova.servers.list(search_opts={"all_tenants": True})) == 6
    bad = v3.ApplicationCredential(
        auth_url=simcloud.auth_url, application_credential_id=credential.id,
        application_credential_secret="wrong")
    with pytest.raises(ks_exc.Unauthorized):
        ks_session.Session(auth=bad).get_token()


def test_identity_version_discovery(simcloud):
    session = ks_session.Session()
    listing = session.get(simcloud.auth_url, raise_exc=False)
    assert listing.status_code == 300
    assert listing.json()["versions"]["values"][0]["id"] == "v3.14"
    v3_doc = session.get(simcloud.auth_url + "/v3").json()
    assert v3_doc["version"]["status"] == "stable"


def test_bad_token_is_refused_by_nova(simcloud):
    response = ks_session.Session().get(
        simcloud.compute_url + "/servers",
        headers={"X-Auth-Token": "not-a-token"}, raise_exc=False)
    assert response.status_code == 401


def test_compute_version_discovery(simcloud):
    session = ks_session.Session()
    root = session.get(simcloud.url + "/").json()
    (current,) = root["versions"]
    assert (current["id"], current["min_version"], current["version"]) == (
        "v2.1", "2.1", "2.104")
    doc = session.get(simcloud.compute_url + "/").json()["version"]
    assert (doc["min_version"], doc["version"]) == ("2.1", "2.104")


def test_novaclient_negotiates_its_own_maximum(simcloud):
    nova = testing.nova(simcloud, "2.1")
    version = api_versions.discover_version(
        nova, api_versions.APIVersion("2.96"))
    assert version.get_string() == "2.96"
    with pytest.raises(nova_exc.UnsupportedVersion):
        nova_client.Client("2.latest", session=testing.session(simcloud))


def test_response_echoes_the_microversion(simcloud):
    response = testing.request(simcloud, "GET", "/servers", version="2.60")
    assert response.headers["OpenStack-API-Version"] == "compute 2.60"
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.60"
    assert "OpenStack-API-Version" in response.headers["Vary"]
    legacy = testing.request(
        simcloud, "GET", "/servers",
        headers={"X-OpenStack-Nova-API-Version": "2.12"})
    assert legacy.headers["OpenStack-API-Version"] == "compute 2.12"
    default = testing.request(simcloud, "GET", "/servers")
    assert default.headers["OpenStack-API-Version"] == "compute 2.1"
    latest = testing.request(simcloud, "GET", "/servers", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "compute 2.104"
    assert simcloud.cloud.calls.calls(operation="servers.index")[
        0].microversion == "2.60"


@pytest.mark.parametrize("version, code, message", [
    ("2.105", 406, "Version 2.105 is not supported by the API. Minimum is "
                   "2.1 and maximum is 2.104."),
    ("3.0", 406, "Version 3.0 is not supported by the API. Minimum is 2.1 "
                 "and maximum is 2.104."),
    ("two", 400, "API Version String two is of invalid format. Must be of "
                 "format MajorNum.MinorNum."),
])
def test_unacceptable_microversions(simcloud, version, code, message):
    response = testing.request(simcloud, "GET", "/servers", version=version)
    assert response.status_code == code
    assert list(response.json().values())[0]["message"] == message


def test_keep_alive_and_no_body_for_202(simcloud):
    token = testing.session(simcloud).get_token()
    host, port = simcloud.url[len("http://"):].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/v2.1/servers?all_tenants=1",
                           headers={"X-Auth-Token": token})
        first = connection.getresponse()
        assert first.status == 200
        assert len(json.loads(first.read())["servers"]) == 6
        socket_before = connection.sock
        server_id = next(iter(simcloud.cloud.servers))
        connection.request("POST", f"/v2.1/servers/{server_id}/action",
                           body=json.dumps({"os-stop": None}),
                           headers={"X-Auth-Token": token,
                                    "Content-Type": "application/json"})
        second = connection.getresponse()
        assert (second.status, second.read()) == (202, b"")
        assert connection.sock is socket_before
    finally:
        connection.close()


def test_clouds_yaml_loads_with_openstack_config(simcloud, tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump(simcloud.clouds()))
    config = openstack.config.OpenStackConfig(config_files=[str(path)])
    admin = nova_client.Client(
        "2.53", session=config.get_one("simcloud").get_session())
    assert len(admin.servers.list(search_opts={"all_tenants": True})) == 6
    user = nova_client.Client(
        "2.53", session=config.get_one("simcloud-user").get_session())
    assert len(user.servers.list()) == 6
    with pytest.raises(nova_exc.Forbidden):
        user.servers.list(search_opts={"all_tenants": True})


def test_command_runs_until_sigterm(simcloud_process_factory):
    process = simcloud_process_factory("--hosts", "2", "--vms-per-host",
                                       "3", "--latency", "0.1")
    try:
        mode = stat.S_IMODE(os.stat(process.clouds_yaml).st_mode)
        assert mode == 0o600
        config = openstack.config.OpenStackConfig(
            config_files=[process.clouds_yaml])
        nova = nova_client.Client(
            "2.53", session=config.get_one("simcloud").get_session())
        servers = nova.servers.list(search_opts={"all_tenants": True,
                                                 "host": "compute2"})
        assert sorted(s.name for s in servers) == ["compute2-vm1",
                                                   "compute2-vm2",
                                                   "compute2-vm3"]
        assert sorted(h.hypervisor_hostname
                      for h in nova.hypervisors.list()) == ["compute1",
                                                            "compute2"]
    finally:
        status, out, err = process.stop()
    assert status == 0
    assert yaml.safe_load(out)["clouds"].keys() == {"simcloud",
                                                    "simcloud-user"}
    assert "2 hosts and 6 servers" in err


def test_command_reads_a_topology_file(simcloud_process_factory, tmp_path):
    path = tmp_path / "topology.yaml"
    path.write_text("hosts:\n  - name: left\n    servers: [{name: solo}]\n"
                    "  - name: right\n")
    process = simcloud_process_factory("--config", str(path))
    config = openstack.config.OpenStackConfig(
        config_files=[process.clouds_yaml])
    nova = nova_client.Client(
        "2.53", session=config.get_one("simcloud").get_session())
    (server,) = nova.servers.list(search_opts={"all_tenants": True})
    assert (server.name, getattr(server, "OS-EXT-SRV-ATTR:host")) == (
        "solo", "left")


def test_command_refuses_a_bad_topology(tmp_path):
    path = tmp_path / "topology.yaml"
    path.write_text("hosts:\n  - name: left\n    cpus: 4\n")
    process = testing.SimCloudProcess("--config", str(path))
    with pytest.raises(RuntimeError, match="bad topology: unknown host keys"):
        process.start()
    process.stop()
