"""instance-ha install: idempotent, and all-or-nothing."""

import subprocess

import pytest

from instance_ha import mistral_client
from instance_ha import pack
from instance_ha import server_process

SMOKE = "instance_ha.smoke_test"


def install(*args):
    return subprocess.run(
        [*server_process.instance_ha_command(), "install", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def definitions(client):
    return {wf.name: (wf.definition, wf.updated_at)
            for wf in client.workflows.list()}


def test_install_creates_then_changes_nothing(start_server):
    server = start_server("--no-register")
    client = mistral_client.connect(mistral_url=server.url)
    assert definitions(client) == {}

    # Two installers at once (two controllers upgrading together): each
    # workflow is created by one, found unchanged by the other.
    racers = [subprocess.Popen(
        [*server_process.instance_ha_command(), "install", "--mistral-url",
         server.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, stdin=subprocess.DEVNULL) for _ in range(2)]
    results = [racer.communicate(timeout=120) for racer in racers]
    assert [r.returncode for r in racers] == [0, 0], results
    names = [wf.workflow for wf in pack.workflow_files()]
    for name in names:
        changes = sorted(line.split(": ", 1)[1] for out, _ in results
                         for line in out.splitlines()
                         if line.startswith(name + ": "))
        assert changes == ["created", "unchanged"], (name, results)
    after_first = definitions(client)
    for wf in pack.workflow_files():
        assert after_first[wf.workflow][0] == wf.text

    second = install("--mistral-url", server.url)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [f"{n}: unchanged" for n in names]
    assert definitions(client) == after_first


def test_install_updates_a_changed_workflow(mistral, embedded_server):
    stored = mistral.workflows.get(SMOKE).definition
    mistral.workflows.update(stored.replace("Proves that", "Checks that"))

    result = install("--mistral-url", embedded_server.url)
    assert result.returncode == 0, result.stderr
    assert f"{SMOKE}: updated" in result.stdout.splitlines()
    assert mistral.workflows.get(SMOKE).definition == stored


def test_install_verify_runs_the_smoke_workflow(mistral, embedded_server):
    result = install("--mistral-url", embedded_server.url, "--verify")
    assert result.returncode == 0, result.stderr
    assert f"{SMOKE}: SUCCESS" in result.stdout
    executions = mistral.executions.list(workflow_name=SMOKE)
    assert [e.state for e in executions] == ["SUCCESS"]


def test_install_against_mistral_lacking_our_actions_uploads_nothing(
        start_server, tmp_path):
    config = tmp_path / "deny.conf"
    config.write_text("[legacy_action_provider]\n"
                      "denylist = instance_ha.pack_info\n")
    server = start_server("--no-register", "--config", str(config))
    client = mistral_client.connect(mistral_url=server.url)

    result = install("--mistral-url", server.url)
    assert result.returncode == 1
    assert ("Mistral does not know the action(s) instance_ha.pack_info"
            in result.stderr)
    assert "No workflow was uploaded" in result.stderr
    assert "Traceback" not in result.stderr
    assert definitions(client) == {}


def test_install_of_a_workflow_mistral_rejects_uploads_nothing(mistral):
    from instance_ha import installer

    good = pack.workflow_files()
    bad = pack.parse_workflow_file("bad.yaml", """\
---
version: '2.0'
instance_ha.bad:
  tasks:
    t:
      action: std.noop
      on-success: nowhere
""")
    before = definitions(mistral)
    with pytest.raises(installer.InstallError, match="Mistral rejects bad"):
        installer.install(mistral, files=good + [bad])
    assert definitions(mistral) == before


@pytest.mark.parametrize("url, message", [
    ("http://127.0.0.1:{port}/v2", "connection refused or host unreachable"),
    ("ftp://127.0.0.1/v2", "not an http(s) URL"),
])
def test_unreachable_or_bad_mistral_url_is_a_clear_error(url, message):
    url = url.format(port=server_process.free_port())
    result = install("--mistral-url", url)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_keystone_without_credentials_is_a_clear_error(tmp_path):
    clouds = tmp_path / "clouds.yaml"
    port = server_process.free_port()
    clouds.write_text("clouds:\n  broken:\n    auth:\n"
                      f"      auth_url: http://127.0.0.1:{port}/v3\n"
                      "      username: u\n      password: p\n"
                      "      project_name: p\n"
                      "      user_domain_name: Default\n"
                      "      project_domain_name: Default\n")
    result = install("--os-cloud", "broken", "--clouds-yaml", str(clouds))
    assert result.returncode == 1
    assert "cannot authenticate to Keystone for Mistral" in result.stderr
    assert "Traceback" not in result.stderr
    assert "password: p" not in result.stderr


def write_clouds_yaml(path, sim):
    import yaml

    path.write_text(yaml.safe_dump(sim.clouds()))
    path.chmod(0o600)
    return str(path)


def test_install_through_keystone_with_mistral_url_override(
        simcloud, embedded_server, tmp_path):
    clouds = write_clouds_yaml(tmp_path / "clouds.yaml", simcloud)
    result = install("--os-cloud", "simcloud", "--clouds-yaml", clouds,
                     "--mistral-url", embedded_server.url)
    assert result.returncode == 0, result.stderr
    assert f"{SMOKE}: unchanged" in result.stdout
    tokens = simcloud.cloud.calls.calls(operation="keystone.token")
    assert [c.status for c in tokens] == [201]


def test_keystone_catalog_without_mistral_is_a_clear_error(
        simcloud, tmp_path):
    clouds = write_clouds_yaml(tmp_path / "clouds.yaml", simcloud)
    result = install("--os-cloud", "simcloud", "--clouds-yaml", clouds)
    assert result.returncode == 1
    assert "the Keystone catalog has no Mistral (workflowv2) endpoint" \
        in result.stderr
    assert "Traceback" not in result.stderr
