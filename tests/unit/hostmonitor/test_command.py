"""``instance-ha hosts`` and ``instance-ha hostmonitor`` through click."""

import json
import os

import pytest
from click.testing import CliRunner

from instance_ha import cli


@pytest.fixture
def run(tmp_path):
    """Invoke instance-ha; stonith_admin is a stand-in that has no fencer
    (the real one would ask whatever cluster runs on this machine)."""
    no_fencer = tmp_path / "stonith_admin"
    no_fencer.write_text("#!/bin/sh\necho 'Could not connect to fencer' >&2"
                         "\nexit 102\n")
    no_fencer.chmod(0o755)

    def invoke(*args, env=None):
        args = list(args)
        if args[0] in ("hosts", "hostmonitor"):
            args[1:1] = ["--stonith-admin", str(no_fencer)]
        return CliRunner().invoke(cli.main, args, env=env)
    return invoke


def test_main_has_the_commands(run):
    result = run("--help")
    assert result.exit_code == 0
    assert "hosts" in result.output and "hostmonitor" in result.output


def test_hosts_from_saved_xml(run, path):
    result = run("hosts", "--xml", path("crm_mon", "rn1-fenced.xml"),
                 "--fence-history", path("fence", "rn1-after-failure.xml"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "quorum: yes; DC: cn1"
    assert lines[1].split()[:4] == ["NODE", "TYPE", "STATE", "DECISION"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"cn1", "rn1", "rn2", "rn3"}
    assert "failed_fenced" in rows["rn1"]
    assert "offline, connection Stopped failed" in rows["rn1"]
    assert "online" in rows["rn2"]


def test_hosts_json_shape(run, path):
    result = run("hosts", "--json", "--xml",
                 path("crm_mon", "rn1-fenced.xml"), "--fence-history",
                 path("fence", "rn1-after-failure.xml"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == ["quorum", "nodes"]
    assert data["quorum"] is True
    assert [list(n) for n in data["nodes"]] == [
        ["name", "type", "decision", "reason"]] * 4
    assert {n["name"]: (n["type"], n["decision"]) for n in data["nodes"]} == {
        "cn1": ("member", "ignored"), "rn1": ("remote", "failed_fenced"),
        "rn2": ("remote", "online"), "rn3": ("remote", "online")}


def test_hosts_json_without_quorum(run, path):
    result = run("hosts", "--json", "--xml",
                 path("crm_mon", "rn1-fenced-noquorum.xml"),
                 "--fence-history", path("fence", "rn1-after-failure.xml"))
    data = json.loads(result.output)
    assert data["quorum"] is False
    rn1 = [n for n in data["nodes"] if n["name"] == "rn1"][0]
    assert rn1["decision"] == "failed_unfenced"


def test_hosts_legacy_xml_with_embedded_history(run, path):
    result = run("hosts", "--json", "--xml",
                 path("crm_mon", "rn1-fenced+history.xml"))
    decisions = {n["name"]: n["decision"]
                 for n in json.loads(result.output)["nodes"]}
    assert decisions["rn1"] == "failed_fenced"
    result = run("hosts", "--json", "--xml",
                 path("crm_mon", "rn1-fenced.legacy.xml"))
    decisions = {n["name"]: n["decision"]
                 for n in json.loads(result.output)["nodes"]}
    assert decisions["rn1"] == "failed_unfenced"  # no history given


def test_hosts_threshold_and_computes_options(run, path):
    args = ["hosts", "--xml", path("crm_mon", "rn1-rn2-fenced.xml"),
            "--fence-history", path("fence", "all-rn1-rn2.xml")]
    held = run(*args)
    assert held.exit_code == 0
    assert "HELD: 2 of 3 compute hosts are down" in held.output
    assert "HELD" not in run(*args, "--threshold", "70").output
    narrowed = run(*args, "--json", "--computes", "rn1,rn3",
                   "--controllers", "cn*")
    decisions = {n["name"]: n["decision"]
                 for n in json.loads(narrowed.output)["nodes"]}
    assert decisions == {"cn1": "ignored", "rn1": "failed_fenced",
                         "rn2": "ignored", "rn3": "online"}


def test_hosts_from_the_live_command_on_a_cib_file(run, path):
    # The default path: the real crm_mon (here on a CIB file).
    env = {"CIB_file": path("cib", "rn1-fenced.xml"), "TZ": "UTC"}
    result = run("hosts", "--json", env=env)
    assert result.exit_code == 0, result.output
    rn1 = [n for n in json.loads(result.output)["nodes"]
           if n["name"] == "rn1"][0]
    assert rn1["decision"] == "failed_unfenced"
    assert "no fence history" in rn1["reason"]


def _one_line_error(result, *fragments):
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception,
                                                  SystemExit)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: cannot read the cluster: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_hosts_garbage_xml(run, tmp_path):
    garbage = tmp_path / "garbage.xml"
    garbage.write_bytes(b"<pacemaker-result><nodes><node name=")
    _one_line_error(run("hosts", "--xml", str(garbage)), "not XML")


def test_hosts_missing_file(run):
    _one_line_error(run("hosts", "--xml", "/nonexistent.xml"),
                    "No such file")


def test_hosts_bad_fence_history(run, path):
    _one_line_error(
        run("hosts", "--xml", path("crm_mon", "rn1-fenced.xml"),
            "--fence-history",
            path("fence", "stonith_admin-not-connected.xml")),
        "Not connected")


def test_hosts_crm_mon_missing(run):
    _one_line_error(run("hosts", "--crm-mon", "/nonexistent/crm_mon"),
                    "not found")


def test_hosts_crm_mon_not_on_path(run, tmp_path):
    _one_line_error(run("hosts", env={"PATH": str(tmp_path)}),
                    "crm_mon: not found")


def test_hosts_crm_mon_fails(run, tmp_path):
    failing = tmp_path / "crm_mon"
    failing.write_text("#!/bin/sh\necho 'crm_mon: Connection to cluster "
                       "failed: Transport endpoint is not connected' >&2\n"
                       "exit 102\n")
    failing.chmod(0o755)
    _one_line_error(run("hosts", "--crm-mon", str(failing)),
                    "exit status 102", "Transport endpoint")


def test_hosts_cib_unreachable(run, tmp_path):
    # The real crm_mon exits 0 here, with no nodes: still an error.
    env = {"CIB_file": str(tmp_path / "missing.xml")}
    _one_line_error(run("hosts", env=env), "Could not connect to the CIB")


def test_hostmonitor_once_on_a_cib_file(run, cib_copy, caplog):
    import logging
    import signal

    caplog.set_level(logging.INFO, logger="instance_ha.hostmonitor")
    before = signal.getsignal(signal.SIGTERM)
    env = {"CIB_file": cib_copy("rn1-fenced"), "TZ": "UTC"}
    result = run("hostmonitor", "--once", "--no-store", "--mistral-url",
                 "http://127.0.0.1:9/v2", env=env)
    assert result.exit_code == 0, result.output
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("remote rn1: failed_unfenced: offline")
               for m in messages), messages
    assert "remote rn2: online: online, connection rn2 Started" in messages
    assert signal.getsignal(signal.SIGTERM) is before


def test_hostmonitor_rejects_a_bad_url(run):
    result = run("hostmonitor", "--once", "--mistral-url", "ftp://x")
    assert result.exit_code == 1
    assert "not an http(s) URL" in result.output


def test_hostmonitor_help_lists_its_options(run):
    result = run("hostmonitor", "--help")
    for option in ("--interval", "--debounce", "--threshold", "--computes",
                   "--on-shared-storage", "--store", "--pass-timeout",
                   "--state-file", "--watchdog-timeout", "--max-attempts",
                   "--evacuation-delay"):
        assert option in result.output


def test_hostmonitor_once_keeps_the_agent_state_file(run, cib_copy,
                                                     tmp_path):
    """One pass of the agent's monitor: its state, in the agent's state
    file format, for the next start of the daemon."""
    from instance_ha.agent import statefile

    path = tmp_path / "hostmonitor.state"
    env = {"CIB_file": cib_copy("rn1-fenced"), "TZ": "UTC"}
    result = run("hostmonitor", "--once", "--state-file", str(path),
                 "--mistral-url", "http://127.0.0.1:9/v2", env=env)
    assert result.exit_code == 0, result.output
    state = statefile.load(str(path))
    assert state["passes"] == 1
    assert state["logged"]["rn1"][0] == "failed_unfenced"
    assert state["watch"] == {}


def test_hostmonitor_refuses_a_timeout_its_pass_cannot_hold(run):
    result = run("hostmonitor", "--once", "--no-store", "--mistral-url",
                 "http://127.0.0.1:9/v2", "--timeout", "50")
    assert result.exit_code == 2
    assert "request_timeout=50 does not fit the monitor timeout of 60 s " \
        "(--pass-timeout)" in result.output
    fits = run("hostmonitor", "--once", "--no-store", "--mistral-url",
               "http://127.0.0.1:9/v2", "--timeout", "50", "--pass-timeout",
               "63", env={"CIB_file": "/nonexistent/cib.xml"})
    assert fits.exit_code == 0, fits.output


def test_command_module_imports_only_click_at_top():
    import ast

    from instance_ha.hostmonitor import command

    with open(command.__file__) as f:
        tree = ast.parse(f.read())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add(node.module.split(".")[0])
    assert top <= {"click", "json", "os", "sys"}, top
    assert os.path.basename(command.__file__) == "command.py"


def test_package_facade_is_lazy_and_complete(path):
    import subprocess
    import sys

    code = ("import sys\n"
            "from instance_ha import hostmonitor\n"
            "assert 'lxml' not in sys.modules, 'package import loads lxml'\n"
            "status = hostmonitor.read_file(sys.argv[1])\n"
            "a = hostmonitor.assess(status, hostmonitor.Policy())\n"
            "print(a.verdict('rn1').decision)\n")
    result = subprocess.run(
        [sys.executable, "-c", code,
         path("crm_mon", "rn1-fenced+history.xml")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "failed_fenced"
