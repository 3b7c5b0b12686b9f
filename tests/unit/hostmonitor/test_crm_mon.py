"""crm_mon XML (both formats, made by Pacemaker 2.1.5's own tools) to data,
and running crm_mon: missing, failing, hanging."""

import datetime
import os
import stat

import pytest

from instance_ha.hostmonitor import crm_mon
from instance_ha.hostmonitor import pcmk

UTC = datetime.timezone.utc


def test_all_remotes_online(mon):
    status = mon("remotes-online")
    assert status.format == "pacemaker-result"
    assert status.quorum is True
    assert status.dc == "cn1"
    assert [(n.name, n.type) for n in status.nodes] == [
        ("cn1", "member"), ("rn1", "remote"), ("rn2", "remote"),
        ("rn3", "remote")]
    assert all(n.healthy for n in status.nodes)
    rn1 = status.node("rn1")
    assert rn1.connection.resource == "rn1"
    assert rn1.connection.role == "Started"
    assert rn1.connection.failed is False
    assert status.node("cn1").is_dc is True
    assert status.node("cn1").connection is None
    assert status.fence_events is None  # CIB_file: no fence history


def test_remote_lost_is_offline_and_unclean(mon):
    rn1 = mon("rn1-lost").node("rn1")
    assert (rn1.online, rn1.unclean, rn1.healthy) == (False, True, False)
    assert rn1.connection.failed is True
    assert "unclean" in rn1.state()


def test_remote_fenced_is_offline_and_clean(mon):
    rn1 = mon("rn1-fenced").node("rn1")
    assert (rn1.online, rn1.unclean, rn1.healthy) == (False, False, False)
    assert rn1.connection.role == "Stopped"


def test_connection_starting_is_not_healthy_although_online(mon):
    rn1 = mon("rn1-starting").node("rn1")
    assert rn1.online is True
    assert rn1.unclean is False
    assert rn1.connection.role == "Starting"
    assert rn1.healthy is False
    assert "connection Starting" in rn1.state()


def test_member_lost_and_fenced(mon):
    lost = mon("members-cn3-lost").node("cn3")
    fenced = mon("members-cn3-fenced").node("cn3")
    assert (lost.type, lost.online, lost.unclean) == ("member", False, True)
    assert (fenced.online, fenced.unclean, fenced.healthy) == (
        False, False, False)
    assert mon("members-online").node("cn3").healthy is True


def test_stonith_enabled_option(mon):
    assert mon("members-cn3-fenced").stonith_enabled is True
    assert mon("members-cn3-fenced.legacy").stonith_enabled is True
    assert mon("members-cn3-lost-nostonith").stonith_enabled is False


def test_quorum_lost(mon):
    status = mon("rn1-fenced-noquorum")
    assert status.quorum is False
    assert status.dc == "cn1"


def test_standby_and_maintenance(mon):
    status = mon("rn2-standby-rn3-maintenance")
    assert (status.node("rn2").standby, status.node("rn2").maintenance) == (
        True, False)
    assert (status.node("rn3").standby, status.node("rn3").maintenance) == (
        False, True)


@pytest.mark.parametrize("name", ["remotes-online", "rn1-lost",
                                  "rn1-fenced", "members-cn3-fenced"])
def test_legacy_format_reads_the_same(mon, name):
    new, legacy = mon(name), mon(f"{name}.legacy")
    assert legacy.format == "crm_mon"
    assert new.format == "pacemaker-result"
    assert legacy.nodes == new.nodes
    assert (legacy.quorum, legacy.dc) == (new.quorum, new.dc)


def test_connection_history_gives_last_up(mon):
    # The failed recurring monitor is the last moment the host was up.
    rn1 = mon("rn1-fenced").node("rn1")
    failed = [op for op in rn1.connection.operations
              if op.task == "monitor" and op.rc != 0]
    assert len(failed) == 1
    assert failed[0].interval_ms == 5000
    assert failed[0].on_node == "cn1"
    assert rn1.connection.last_up() == failed[0].last_rc_change
    # Came back after the fence: a later successful monitor.
    back = mon("rn1-returned-stopped").node("rn1")
    assert back.connection.last_up() > rn1.connection.last_up()


def test_embedded_fence_history(mon):
    status = mon("rn1-fenced+history")
    assert [(e.target, e.action, e.status) for e in status.fence_events] == [
        ("rn1", "reboot", "success")]


@pytest.mark.parametrize("text, message", [
    (b"", "empty output"),
    (b"<pacemaker-result><nodes>", "not XML"),
    (b"garbage \x00\xff", "not XML"),
    (b"<html><body>hello</body></html>", "root element <html>"),
    (b"<pacemaker-result><status code='0' message='OK'/></pacemaker-result>",
     "no <summary> or <nodes>"),
    (b"<pacemaker-result><summary/><nodes><node online='true'/></nodes>"
     b"</pacemaker-result>", "without a name"),
])
def test_bad_documents_are_errors(text, message):
    with pytest.raises(pcmk.ClusterReadError, match=message):
        crm_mon.parse(text)


def test_truncated_real_output_is_an_error(path):
    with open(path("crm_mon", "rn1-fenced.xml"), "rb") as f:
        text = f.read()
    with pytest.raises(pcmk.ClusterReadError, match="not XML"):
        crm_mon.parse(text[: len(text) // 2])


def test_error_status_is_an_error():
    text = (b'<pacemaker-result api-version="2.25" request="crm_mon">'
            b'<status code="102" message="Not connected"><errors>'
            b"<error>crm_mon: Connection to cluster failed</error>"
            b"</errors></status></pacemaker-result>")
    with pytest.raises(pcmk.ClusterReadError,
                       match="status 102: Not connected"):
        crm_mon.parse(text)


def test_no_dc_means_no_quorum(path):
    with open(path("crm_mon", "remotes-online.xml")) as f:
        text = f.read()
    text = text.replace('present="true"', 'present="false"')
    status = crm_mon.parse(text)
    assert (status.quorum, status.dc) == (False, None)


def test_missing_file():
    with pytest.raises(pcmk.ClusterReadError, match="No such file"):
        crm_mon.read_file("/nonexistent/crm_mon.xml")


# --- running the real crm_mon on the generated CIBs ----------------------

def test_read_runs_crm_mon_on_a_cib_file(path, cib_env):
    status = crm_mon.read(env=cib_env(path("cib", "rn1-fenced.xml")))
    assert status.node("rn1").online is False
    assert status.node("rn1").unclean is False
    assert status.node("rn2").healthy is True
    # crm_mon gives no fence history for a CIB file.
    assert status.fence_events is None


def test_read_legacy_option(path, cib_env):
    status = crm_mon.read(legacy=True,
                          env=cib_env(path("cib", "remotes-online.xml")))
    assert status.format == "crm_mon"
    assert all(n.healthy for n in status.nodes)


def test_read_cluster_without_any_fence_history(path, cib_env, tmp_path):
    # crm_mon on a CIB file has no history and stonith_admin has no fencer
    # (exit 102, its real output replayed): the history stays unknown and
    # the read still succeeds.
    stonith_admin = _script(
        tmp_path, f"cat {path('fence', 'stonith_admin-not-connected.xml')}"
        "\nexit 102\n")
    status = crm_mon.read_cluster(
        stonith_admin=stonith_admin,
        env=cib_env(path("cib", "rn1-fenced.xml")))
    assert status.fence_events is None
    assert status.node("rn1").online is False


def test_read_cluster_asks_stonith_admin_for_down_nodes(path, cib_env,
                                                        tmp_path):
    calls = tmp_path / "calls"
    stonith_admin = _script(
        tmp_path, f'echo "$@" >> {calls}\n'
        f"cat {path('fence', 'rn1-after-failure.xml')}\n")
    status = crm_mon.read_cluster(
        stonith_admin=stonith_admin,
        env=cib_env(path("cib", "rn1-fenced.xml")))
    # Only the node that is down, and always with --verbose.
    assert calls.read_text().splitlines() == [
        "--history rn1 --verbose --output-as=xml"]
    assert [e.status for e in status.fence_events] == ["success"] * 2


def test_crm_mon_missing_binary():
    with pytest.raises(pcmk.ClusterReadError, match="not found"):
        crm_mon.read(crm_mon="/nonexistent/crm_mon")


def test_crm_mon_missing_from_path(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))
    with pytest.raises(pcmk.ClusterReadError, match="crm_mon: not found"):
        crm_mon.read(env=env)


def test_crm_mon_that_cannot_reach_the_cib(cib_env, tmp_path):
    # Measured: crm_mon 2.1.5 exits 0 with status "OK" and an <error>, and
    # no nodes at all.  That is not "no hosts, all fine".
    env = cib_env(str(tmp_path / "no-such-cib.xml"))
    with pytest.raises(pcmk.ClusterReadError,
                       match="not a cluster status.*Could not connect"):
        crm_mon.read(env=env)
    with pytest.raises(pcmk.ClusterReadError,
                       match="not a cluster status"):
        crm_mon.read(env=env, legacy=True)


def test_crm_mon_non_zero_exit(tmp_path):
    # The real crm_mon, made to fail (unknown option: exit status 64).
    script = _script(tmp_path, 'exec crm_mon --no-such-option "$@"\n')
    with pytest.raises(pcmk.ClusterReadError, match="exit status 64"):
        crm_mon.read(crm_mon=script)


def _script(tmp_path, body):
    script = tmp_path / "fake-crm_mon"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_crm_mon_that_hangs_is_timed_out(tmp_path):
    script = _script(tmp_path, "exec sleep 30\n")
    started = datetime.datetime.now()
    with pytest.raises(pcmk.ClusterReadError, match="no answer within"):
        crm_mon.read(crm_mon=script, timeout=0.5)
    assert (datetime.datetime.now() - started).total_seconds() < 10


def test_crm_mon_printing_garbage_with_exit_0(tmp_path):
    script = _script(tmp_path, "echo 'Segmentation fault'\n")
    with pytest.raises(pcmk.ClusterReadError, match="not XML"):
        crm_mon.read(crm_mon=script)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-21 06:06:09Z", datetime.datetime(2026, 11, 21, 6, 6, 9,
                                               tzinfo=UTC)),
    ("2026-11-21 06:06:09.123456Z",
     datetime.datetime(2026, 11, 21, 6, 6, 9, 123456, tzinfo=UTC)),
    ("2026-11-21 07:06:09.5 +01:00",
     datetime.datetime(2026, 11, 21, 6, 6, 9, 500000, tzinfo=UTC)),
    ("2026-11-21 01:06:09 -0500",
     datetime.datetime(2026, 11, 21, 6, 6, 9, tzinfo=UTC)),
    ("Sat Nov 21 06:06:10 2026",  # ctime, local time (TZ=UTC here)
     datetime.datetime(2026, 11, 21, 6, 6, 10, tzinfo=UTC)),
    ("1795241170", datetime.datetime(2026, 11, 21, 6, 6, 10, tzinfo=UTC)),
    ("", None),
])
def test_time_formats(text, expected):
    assert pcmk.parse_time(text) == expected


def test_unknown_time_format():
    with pytest.raises(pcmk.ClusterReadError, match="unknown time format"):
        pcmk.parse_time("yesterday")
