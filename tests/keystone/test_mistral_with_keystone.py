"""Clients of the Keystone-authenticated Mistral: mistral_client and the
``instance-ha`` commands find Mistral through the real Keystone's catalog
and authenticate; without credentials, or with a wrong password, one
clear line."""

import subprocess

import keystone_support
import requests

from instance_ha import mistral_client
from instance_ha import server_process


def instance_ha(*args, env=None):
    return subprocess.run([*server_process.instance_ha_command(), *args],
                          capture_output=True, text=True, timeout=120,
                          env=env)


def test_connect_finds_mistral_in_the_catalog_and_authenticates(
        auth_mistral):
    client = mistral_client.connect(cloud="keystone-admin",
                                    clouds_yaml=str(auth_mistral.clouds_yaml))
    assert client.executions.http_client.base_url == \
        auth_mistral.server.url
    names = {w.name for w in client.workflows.list()}
    assert "instance_ha.host_evacuate" in names


def test_mistral_refuses_a_request_without_a_token(auth_mistral):
    answer = requests.get(auth_mistral.server.url + "/executions",
                          timeout=30)
    assert answer.status_code == 401


def test_status_through_keystone(auth_mistral):
    done = instance_ha("status", "--os-cloud", "keystone-admin",
                       "--clouds-yaml", str(auth_mistral.clouds_yaml))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_install_through_keystone_changes_nothing_and_verifies(
        auth_mistral):
    """The admin registered the pack at the fixture: a second install
    through the catalog leaves every workflow unchanged, and the smoke
    workflow runs on the executor with the request's context."""
    done = instance_ha("install", "--verify", "--os-cloud", "keystone-admin",
                       "--clouds-yaml", str(auth_mistral.clouds_yaml))
    assert done.returncode == 0, done.stderr
    outcomes = [line for line in done.stdout.splitlines()
                if not line.startswith(("instance_ha.smoke", "Warn"))]
    assert outcomes and all(line.endswith(": unchanged")
                            for line in outcomes), done.stdout
    assert ": SUCCESS (execution " in done.stdout


def test_status_with_a_wrong_password_is_one_clear_line(auth_mistral,
                                                        tmp_path):
    keystone = auth_mistral.keystone
    wrong = "not-" + keystone.passwords["admin"]
    clouds = server_process.write_clouds_yaml(
        str(tmp_path / "clouds.yaml"),
        {"clouds": {"wrong": keystone.cloud_entry("admin", wrong)}})
    done = instance_ha("status", "--os-cloud", "wrong",
                       "--clouds-yaml", clouds)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        "Error: cannot authenticate to Keystone for Mistral: "), lines
    assert "401" in lines[0] or "authentic" in lines[0].lower(), lines
    for password in keystone.passwords.values():
        assert password not in done.stderr + done.stdout


def test_status_without_credentials_is_one_clear_line(auth_mistral,
                                                      tmp_path):
    done = instance_ha("status",
                       env=keystone_support.without_credentials(tmp_path))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: "), lines
    assert "Traceback" not in done.stderr


def test_the_users_are_who_the_tier_says(auth_mistral):
    """The roles the other tests rest on, as Keystone gives them."""
    keystone = auth_mistral.keystone
    for user, (project, roles) in keystone_support.USERS.items():
        session = keystone.session(user)
        assert session.get_project_id() == keystone.projects[project]
        access = session.auth.get_access(session)
        assert set(access.role_names) >= set(roles), (user, access.role_names)
        if "admin" not in roles:
            assert "admin" not in access.role_names, user
