"""The OCF agent as Pacemaker and ocf-tester run it: the installed file
(``instance-ha install-agent``), its meta-data against ra-api-1.dtd, every
action's exit code, ocf-tester itself."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
from click.testing import CliRunner

from instance_ha import cli
from instance_ha.agent import statefile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DTD_DIR = "/usr/share/resource-agents"
# Nothing listens on port 9 (discard) of 127.0.0.1; no node matches.
SAFE_PARAMS = {"OCF_RESKEY_mistral_url": "http://127.0.0.1:9/v2",
               "OCF_RESKEY_computes": "no-such-node-*"}
# Pacemaker's tools read this (missing) file instead of a live cluster
# that may run on this machine (the e2e tests): a monitor here never
# sees nor touches a real CIB.
NO_CIB = {"CIB_file": "/nonexistent/instance-ha-test-cib.xml"}


@pytest.fixture(scope="module")
def installed():
    """The agents installed by install-agent into a directory that user
    nobody can read (ocf-tester runs meta-data as nobody)."""
    root = tempfile.mkdtemp(prefix="instance-ha-agent-test-")
    os.chmod(root, 0o755)
    result = CliRunner().invoke(cli.main, [
        "install-agent", "--ocf-root", os.path.join(root, "ocf"),
        "--alert-path", os.path.join(root, "alert", "instance-ha-alert")])
    assert result.exit_code == 0, result.output
    yield {"agent": os.path.join(root, "ocf", "resource.d", "openstack",
                                 "instance-ha"),
           "alert": os.path.join(root, "alert", "instance-ha-alert"),
           "output": result.output}
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def rsctmp(tmp_path):
    return str(tmp_path / "rsctmp")


def run(agent, action, rsctmp, **env):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("OCF_", "HA_"))}
    environ.update(OCF_ROOT="/usr/lib/ocf", OCF_RESOURCE_INSTANCE="t1",
                   HA_RSCTMP=rsctmp)
    environ.update(SAFE_PARAMS)
    environ.update(NO_CIB)
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run([agent, action], capture_output=True, text=True,
                          env=environ, timeout=60)


def test_install_agent_sets_this_interpreter(installed):
    with open(installed["agent"]) as f:
        text = f.read()
    assert f"PYTHON='{os.path.abspath(sys.executable)}'" in text
    assert "INSTANCE_HA_PYTHON" not in text  # no environment override
    for path in (installed["agent"], installed["alert"]):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o755, (path, oct(mode))
    assert "ocf:openstack:instance-ha" in installed["output"]


def test_install_agent_refuses_an_interpreter_without_instance_ha(
        tmp_path):
    result = CliRunner().invoke(cli.main, [
        "install-agent", "--ocf-root", str(tmp_path / "ocf"),
        "--alert-path", str(tmp_path / "alert"),
        "--python", "/bin/false"])
    assert result.exit_code != 0
    assert "cannot import instance_ha.agent.ocf" in result.output
    assert not (tmp_path / "ocf").exists()


def test_meta_data_is_valid_against_ra_api_1_dtd(installed, rsctmp):
    proc = run(installed["agent"], "meta-data", rsctmp)
    assert proc.returncode == 0
    assert "<version>1.1</version>" in proc.stdout  # the OCF standard
    assert proc.stdout.startswith('<?xml version="1.0"?>\n<!DOCTYPE '
                                  'resource-agent SYSTEM "ra-api-1.dtd">')
    check = subprocess.run(["xmllint", "--noout", "--valid", "-"],
                           input=proc.stdout, capture_output=True,
                           text=True, cwd=DTD_DIR)
    assert check.returncode == 0, check.stderr
    # resource-agents' own schema too (make check of resource-agents).
    rng = subprocess.run(
        ["xmllint", "--noout", "--relaxng",
         os.path.join(DTD_DIR, "metadata.rng"), "-"], input=proc.stdout,
        capture_output=True, text=True)
    assert rng.returncode == 0, rng.stderr


def test_meta_data_lists_no_password_parameter(installed, rsctmp):
    text = run(installed["agent"], "meta-data", rsctmp).stdout
    assert "password" not in text.lower().replace(
        "passwords never go into a parameter", "")
    for name in ("mistral_url", "cloud", "clouds_yaml", "workflow",
                 "on_shared_storage", "computes", "threshold",
                 "evacuation_delay", "watchdog_timeout", "max_attempts"):
        assert f'<parameter name="{name}"' in text


def test_meta_data_declares_return_hosts_off_as_the_agent_reads_it(
        installed, rsctmp):
    import xml.etree.ElementTree as ET

    from instance_ha.agent import config as config_module

    root = ET.fromstring(run(installed["agent"], "meta-data",
                             rsctmp).stdout)
    (parameter,) = [p for p in root.iter("parameter")
                    if p.get("name") == "return_hosts"]
    content = parameter.find("content")
    assert (content.get("type"), content.get("default")) == ("boolean",
                                                             "false")
    assert config_module.from_environ(
        {"OCF_RESKEY_mistral_url": "http://127.0.0.1:9/v2"}
    ).return_hosts is False
    assert config_module.from_environ(
        {"OCF_RESKEY_mistral_url": "http://127.0.0.1:9/v2",
         "OCF_RESKEY_return_hosts": "true"}).return_hosts is True


@pytest.mark.skipif(os.geteuid() != 0, reason="su needs root")
def test_meta_data_works_as_nobody_without_any_environment(installed):
    proc = subprocess.run(
        ["su", "nobody", "-s", "/bin/sh", "-c",
         f"env -i {installed['agent']} meta-data"],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "<resource-agent name=\"instance-ha\"" in proc.stdout


@pytest.mark.parametrize("action", ["notify", "promote", "demote", "reload",
                                    "reload-agent", "migrate_to",
                                    "migrate_from", "recover", "bogus"])
def test_other_actions_are_unimplemented(installed, rsctmp, action):
    assert run(installed["agent"], action, rsctmp).returncode == 3


def test_start_stop_monitor_are_idempotent_and_local(installed, rsctmp):
    agent = installed["agent"]
    state = os.path.join(rsctmp, "instance-ha-t1.state")
    assert run(agent, "monitor", rsctmp).returncode == 7
    probe = run(agent, "monitor", rsctmp, OCF_RESKEY_CRM_meta_interval="0")
    assert probe.returncode == 7
    assert run(agent, "start", rsctmp).returncode == 0
    assert os.path.isfile(state)
    assert run(agent, "start", rsctmp).returncode == 0
    # Started: 0, whatever Pacemaker (not running here) and Mistral
    # (nothing listens) answer; both are logged.
    monitor = run(agent, "monitor", rsctmp)
    assert monitor.returncode == 0
    assert "cannot read the cluster" in monitor.stderr
    assert run(agent, "monitor", rsctmp,
               OCF_RESKEY_CRM_meta_interval="0").returncode == 0
    assert run(agent, "stop", rsctmp).returncode == 0
    assert not os.path.exists(state)
    assert run(agent, "stop", rsctmp).returncode == 0
    assert run(agent, "monitor", rsctmp).returncode == 7


def test_stop_and_probe_work_without_python(installed, rsctmp, tmp_path):
    agent = installed["agent"]
    assert run(agent, "start", rsctmp).returncode == 0
    broken = tmp_path / "broken-agent"
    with open(agent) as f:
        text = f.read().replace(f"PYTHON='{os.path.abspath(sys.executable)}'",
                                "PYTHON='/nonexistent/python3'")
    broken.write_text(text)
    broken.chmod(0o755)
    missing = run(str(broken), "monitor", rsctmp)
    assert missing.returncode == 5
    # resource-agents' ocf_exit_reason: the line Pacemaker shows.
    assert "ocf-exit-reason:instance-ha: cannot run /nonexistent/python3" \
        in missing.stderr
    assert run(str(broken), "start", rsctmp).returncode == 5
    assert run(str(broken), "stop", rsctmp).returncode == 0
    assert run(str(broken), "monitor", rsctmp).returncode == 7
    # ocf-tester's "binaries missing" probe
    assert run(agent, "monitor", rsctmp, OCF_TESTER_FAIL_HAVE_BINARY="1",
               OCF_RESKEY_CRM_meta_interval="0").returncode == 7


@pytest.mark.parametrize("params, code, reason", [
    ({"OCF_RESKEY_mistral_url": None}, 6, "set mistral_url"),
    ({"OCF_RESKEY_mistral_url": "127.0.0.1:8989"}, 6, "not an http(s) URL"),
    ({"OCF_RESKEY_threshold": "150"}, 6, "threshold=150 is out of range"),
    ({"OCF_RESKEY_on_shared_storage": "maybe"}, 6, "not a boolean"),
    ({"OCF_RESKEY_evacuation_delay": "-1"}, 6, "evacuation_delay=-1"),
    ({"OCF_RESKEY_max_attempts": "x"}, 6, "max_attempts='x'"),
    ({"OCF_RESKEY_workflow": "bad name"}, 6, "not a workflow name"),
    ({"OCF_RESKEY_clouds_yaml": "relative.yaml"}, 6, "absolute path"),
    ({"OCF_RESKEY_clouds_yaml": "/nonexistent/clouds.yaml"}, 2,
     "No such file"),
    ({"OCF_RESKEY_host_map": "rn1"}, 6, "is not NODE=HOST"),
    ({"OCF_RESKEY_return_hosts": "maybe"}, 6,
     "return_hosts='maybe' is not a boolean"),
    ({"OCF_RESKEY_mistral_url": None, "OCF_RESKEY_cloud": "nosuchcloud",
      "OS_CLIENT_CONFIG_FILE": "/dev/null"}, 6,
     "cannot load Keystone credentials for Mistral (cloud nosuchcloud)"),
    ({"OCF_RESKEY_recovery_method": "fast"}, 6, "recovery_method must be "
                                                "one of auto"),
    ({"OCF_RESKEY_reserved_hosts": "spare1 spare1"}, 6,
     "reserved_hosts names a host twice"),
    ({"OCF_RESKEY_policy": "{evacuate"}, 6, "policy='{evacuate' cannot be "
                                            "read"),
    ({"OCF_RESKEY_policy": '{"evacuate": "some"}'}, 6, "policy evacuate"),
    ({"OCF_RESKEY_concurrency": "0"}, 6, "concurrency must be an integer"),
    ({"OCF_RESKEY_restart_groups": "db app db"}, 6,
     "restart_groups names a restart group twice"),
    ({"OCF_RESKEY_workflow": "instance_ha.host_evacuation"}, 6,
     "workflow='instance_ha.host_evacuation' is not a workflow of the "
     "instance-ha pack (instance_ha.host_evacuate, "),
    ({"OCF_RESKEY_workflow": "instance_ha.instance_restart"}, 6,
     "workflow=instance_ha.instance_restart does not take the input the "
     "agent gives a failed host's run ("),
    # No CIB here: the monitor timeout the meta-data advertises, 60 s.
    ({"OCF_RESKEY_request_timeout": "49"}, 6,
     "request_timeout=49 does not fit the monitor timeout of 60 s (the "
     "agent's default; the CIB could not be read): a monitor pass works "
     "for at most 48 s; lower request_timeout or make the monitor timeout "
     "at least 62 s"),
])
def test_bad_parameters_give_the_ocf_code_and_an_exit_reason(
        installed, rsctmp, params, code, reason):
    for action in ("validate-all", "start"):
        proc = run(installed["agent"], action, rsctmp, **params)
        assert proc.returncode == code, (action, proc.stderr)
        reasons = [line for line in proc.stderr.splitlines()
                   if line.startswith("ocf-exit-reason:")]
        assert len(reasons) == 1 and reason in reasons[0], proc.stderr
    assert not os.path.exists(os.path.join(rsctmp, "instance-ha-t1.state"))
    # A stop never fails, even misconfigured (a failed stop fences).
    assert run(installed["agent"], "stop", rsctmp, **params).returncode == 0


def test_a_pack_workflow_and_a_request_timeout_that_fits_are_valid(
        installed, rsctmp):
    for params in ({"OCF_RESKEY_workflow": "instance_ha.host_evacuate"},
                   {"OCF_RESKEY_request_timeout": "48"}):
        proc = run(installed["agent"], "validate-all", rsctmp, **params)
        assert proc.returncode == 0, proc.stderr


def cib_with_agent(tmp_path, op='interval="10s" timeout="20s"',
                   op_defaults=None, resource="t1"):
    """A CIB file (for CIB_file) where ``resource`` is this agent, its
    monitor operation with the attributes ``op``."""
    with open(os.path.join(REPO, "tests", "unit", "hostmonitor", "fixtures",
                           "cib", "rn1-fenced.xml")) as f:
        text = f.read()
    primitive = (f'<primitive id="{resource}" class="ocf" '
                 'provider="openstack" type="instance-ha"><operations>'
                 f'<op id="{resource}-monitor" name="monitor" {op}/>'
                 '</operations></primitive>')
    defaults = ("" if op_defaults is None else
                '<op_defaults><meta_attributes id="op-options"><nvpair '
                'id="op-options-timeout" name="timeout" '
                f'value="{op_defaults}"/></meta_attributes></op_defaults>')
    text = text.replace("    </resources>\n",
                        f"{primitive}</resources>{defaults}\n", 1)
    path = tmp_path / "cib.xml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("cib, request_timeout, reason", [
    ({}, "16", None),
    ({}, "17", "request_timeout=17 does not fit the monitor timeout of "
               "20 s (the monitor operation of t1): a monitor pass works "
               "for at most 16 s; lower request_timeout or make the "
               "monitor timeout at least 22 s"),
    ({"op": 'interval="10s" timeout="PT1M"'}, "48", None),
    ({"op": 'interval="10s" timeout="90000ms"'}, "73", "monitor timeout "
     "of 90 s (the monitor operation of t1)"),
    ({"op": 'interval="10s"', "op_defaults": "2min"}, "100",
     "monitor timeout of 120 s (op_defaults)"),
    ({"op": 'interval="10s"'}, "17", "monitor timeout of 20 s (Pacemaker's "
                                     "default: the monitor operation of t1 "
                                     "sets none)"),
    ({"op": 'interval="0s" timeout="5s"'}, "300", None),  # a probe only
    ({"resource": "other"}, "49", "monitor timeout of 60 s (the agent's "
                                  "default; the CIB has no resource t1)"),
])
def test_request_timeout_must_fit_the_monitor_operation_in_the_cib(
        installed, rsctmp, tmp_path, cib, request_timeout, reason):
    """Pacemaker passes start and validate-all their own timeout, not the
    monitor's: the agent reads its monitor operation from the CIB."""
    env = {"CIB_file": cib_with_agent(tmp_path, **cib),
           "OCF_RESKEY_request_timeout": request_timeout}
    for action in ("validate-all", "start"):
        proc = run(installed["agent"], action, rsctmp, **env)
        reasons = [line for line in proc.stderr.splitlines()
                   if line.startswith("ocf-exit-reason:")]
        if reason is None:
            assert proc.returncode == 0, proc.stderr
            assert reasons == []
        else:
            assert proc.returncode == 6, proc.stderr
            assert len(reasons) == 1 and reason in reasons[0], proc.stderr
    run(installed["agent"], "stop", rsctmp)


def test_clouds_yaml_readable_by_others_is_a_warning(installed, rsctmp,
                                                     tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  x:\n    auth_type: admin_token\n"
                      "    auth: {endpoint: 'http://127.0.0.1:9/v2', "
                      "token: t}\n")
    clouds.chmod(0o644)
    proc = run(installed["agent"], "validate-all", rsctmp,
               OCF_RESKEY_clouds_yaml=str(clouds),
               OCF_RESKEY_cloud="x")
    assert proc.returncode == 0
    assert "make it 0600" in proc.stderr
    clouds.chmod(0o600)
    proc = run(installed["agent"], "validate-all", rsctmp,
               OCF_RESKEY_clouds_yaml=str(clouds),
               OCF_RESKEY_cloud="x")
    assert proc.returncode == 0 and "0600" not in proc.stderr


def test_ocf_tester_passes(installed, rsctmp):
    """resource-agents' ocf-tester, as CI runs it (as root it also runs
    meta-data as nobody)."""
    tester = shutil.which("ocf-tester") or "/usr/sbin/ocf-tester"
    assert os.path.exists(tester), "ocf-tester (Debian resource-agents) " \
        "is not installed"
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("OCF_", "HA_"))}
    environ["HA_RSCTMP"] = rsctmp
    environ.update(NO_CIB)
    proc = subprocess.run(
        [tester, "-n", "ocftest",
         "-o", f"mistral_url={SAFE_PARAMS['OCF_RESKEY_mistral_url']}",
         "-o", f"computes={SAFE_PARAMS['OCF_RESKEY_computes']}",
         installed["agent"]], capture_output=True, text=True, env=environ,
        timeout=300)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed all tests" in proc.stdout
    assert "Tests failed" not in proc.stdout + proc.stderr


def test_state_file_path_is_the_same_in_sh_and_python(installed, rsctmp):
    assert run(installed["agent"], "start", rsctmp).returncode == 0
    path = statefile.path({"HA_RSCTMP": rsctmp,
                           "OCF_RESOURCE_INSTANCE": "t1"})
    assert os.path.isfile(path)
    # The sh front alone (no Python) removes that same file.
    with open(installed["agent"]) as f:
        text = f.read().replace(f"PYTHON='{os.path.abspath(sys.executable)}'",
                                "PYTHON='/nonexistent/python3'")
    front = os.path.join(rsctmp, "front")
    with open(front, "w") as f:
        f.write(text)
    os.chmod(front, 0o755)
    assert run(front, "stop", rsctmp).returncode == 0
    assert not os.path.exists(path)


def test_stop_succeeds_when_the_interpreter_cannot_import_instance_ha(
        installed, rsctmp):
    """A failed stop gets the controller fenced: an interpreter that runs
    but cannot import the package must not fail it."""
    assert run(installed["agent"], "start", rsctmp).returncode == 0
    path = statefile.path({"HA_RSCTMP": rsctmp,
                           "OCF_RESOURCE_INSTANCE": "t1"})
    broken = os.path.join(rsctmp, "broken-python")
    with open(broken, "w") as f:
        f.write("#!/bin/sh\necho \"ModuleNotFoundError: No module named "
                "'instance_ha'\" >&2\nexit 1\n")
    os.chmod(broken, 0o755)
    with open(installed["agent"]) as f:
        text = f.read().replace(f"PYTHON='{os.path.abspath(sys.executable)}'",
                                f"PYTHON='{broken}'")
    front = os.path.join(rsctmp, "front-broken")
    with open(front, "w") as f:
        f.write(text)
    os.chmod(front, 0o755)
    result = run(front, "stop", rsctmp)
    assert result.returncode == 0, result.stderr
    assert not os.path.exists(path)
    assert "state file removed" in result.stderr
