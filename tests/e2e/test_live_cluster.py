"""The live-cluster harness itself, proven against a real cluster:
corosync + pacemakerd on cn1, pacemaker-remoted nodes in network
namespaces, the recording fence agent."""

import contextlib
import fcntl
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from . import cluster as harness
from .cluster import LiveCluster
from .cluster import avoid_remotes
from .cluster import has_quorum
from .cluster import node_attrs
from .cluster import pid_alive
from .cluster import remote_online
from .cluster import resource_attrs
from .conftest import require_live_cluster

pytestmark = pytest.mark.slow

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# An alert agent for the harness's "extra alerts" parameter: one line per
# alert.  Alert agents run as hacluster; the scratch dir is readable.
ALERT_AGENT = """#!/bin/sh
echo "kind=$CRM_alert_kind node=$CRM_alert_node task=$CRM_alert_task \
rc=$CRM_alert_rc desc=$CRM_alert_desc" >> "$CRM_alert_recipient"
"""


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True,
                         text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def link_exists(name):
    return subprocess.run(["ip", "link", "show", name],
                          capture_output=True).returncode == 0


def snapshot_files():
    """What the harness changes on the host, to compare before/after."""
    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    return {
        "test OCF provider": os.path.exists(TEST_PROVIDER),
        "corosync.conf": read(harness.COROSYNC_CONF),
        "fence agent": read(harness.FENCE_AGENT_PATH),
        "authkey": read(harness.AUTHKEY),
        "cib dir": sorted(os.listdir(harness.CIB_DIR)),
        "pengine dir": sorted(os.listdir(harness.PENGINE_DIR)),
        "state dirs": [
            (os.stat(d).st_uid, os.stat(d).st_gid, os.stat(d).st_mode)
            for d in (os.path.dirname(harness.CIB_DIR), harness.CIB_DIR,
                      harness.PENGINE_DIR)],
    }


@contextlib.contextmanager
def machine_lock():
    """Hold the harness's machine lock: another run's cluster (another
    test run on the same machine) cannot start meanwhile."""
    fd = harness.acquire_machine_lock()
    try:
        yield
    finally:
        harness.release_machine_lock(fd)


def snapshot_locked():
    with machine_lock():
        return snapshot_files()


def assert_all_gone(processes, remotes, before):
    alive = [p for p in processes if pid_alive(p["pid"], p["starttime"])]
    assert alive == []
    with machine_lock():
        assert harness._running_daemons() == {}
        for name in remotes:
            assert name not in netns_names()
            assert not link_exists("veth-" + name)
        assert snapshot_files() == before
        assert not os.path.exists(
            os.path.join(harness.BASE_DIR, "state.json"))


class Boom(Exception):
    pass


TEST_PROVIDER = "/usr/lib/ocf/resource.d/ihae2etest"
DUMMY_AGENT = "/usr/lib/ocf/resource.d/pacemaker/Dummy"


def test_remote_online_and_everything_stopped_even_on_failure():
    """(1) the remote node comes online; (5) after the context exits, here
    through an exception, no PID it started is alive, the namespace and
    veth are gone and the host files are as before."""
    require_live_cluster()
    before = snapshot_locked()
    # An OCF agent installed for the run in a provider directory of its
    # own, as issue 7's agent will be (here: a copy of ocf:pacemaker:Dummy).
    with open(DUMMY_AGENT) as f:
        agent = f.read()
    cluster = LiveCluster(
        remotes=["rn1"],
        host_files={TEST_PROVIDER + "/Dummy": agent},
        resources=['<primitive id="ihatest" class="ocf" '
                   'provider="ihae2etest" type="Dummy"/>'],
        constraints=avoid_remotes("ihatest", ["rn1"]))
    with pytest.raises(Boom):
        with cluster:
            print(f"live cluster logs: {cluster.scratch}")
            assert os.access(TEST_PROVIDER + "/Dummy", os.X_OK)
            cluster.wait_for(
                lambda x: resource_attrs(x, "ihatest")["role"] == "Started",
                20, "ihatest started")
            xml = cluster.crm_mon_xml()
            assert has_quorum(xml)
            assert node_attrs(xml, "cn1")["online"] == "true"
            assert node_attrs(xml, "cn1")["type"] == "member"
            rn1 = node_attrs(xml, "rn1")
            assert rn1["type"] == "remote"
            assert (rn1["online"], rn1["unclean"]) == ("true", "false")
            assert remote_online(xml, "rn1")
            assert cluster.remote_connected("rn1")
            assert resource_attrs(xml, "fence_rec")["role"] == "Started"
            # No fencing at start-up (no startup fencing of rn1).
            assert cluster.fence_calls() == []
            assert cluster.fence_history("rn1") == []
            # The remote daemon really runs in namespace rn1.
            pid = cluster.pid("rn1")
            assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(
                "/run/netns/rn1").st_ino
            assert os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat(
                "/proc/self/ns/net").st_ino
            with open(harness.COROSYNC_CONF) as f:
                assert "ring0_addr: 127.0.0.1" in f.read()
            processes = cluster.started_processes()
            keys = sorted(p["key"] for p in processes)
            assert keys == ["corosync"] + ["pacemakerd"] + [
                "pacemakerd-child"] * 6 + ["rn1"]
            assert all(pid_alive(p["pid"], p["starttime"])
                       for p in processes)
            raise Boom()
    assert_all_gone(processes, ["rn1"], before)
    print(f"timings: {cluster.timings}")
    shutil.rmtree(cluster.scratch)


def test_kill_remote_fenced_once_then_restart(start_live_cluster):
    """(2) kill -9 of rn1's pacemaker-remoted: rn1 offline unclean, then
    fenced exactly once, clean offline, a fence-history success completed
    after the kill; rn2 untouched; caller-supplied resources, constraints
    and alerts work.  (4) restart_remote brings rn1 back online."""
    # The fencer's delay may end up to 1 s early (below): nothing can be
    # fenced before fence_delay - 1 s.
    fence_delay, reconnect = 3, 3
    remotes = ["rn1", "rn2"]
    cluster = start_live_cluster(
        remotes=remotes, fence_delay=fence_delay,
        reconnect_interval=reconnect,
        scratch_files={"alert.sh": (ALERT_AGENT, 0o755)},
        resources=['<primitive id="dummy" class="ocf" provider="pacemaker"'
                   ' type="Dummy"/>'],
        constraints=avoid_remotes("dummy", remotes),
        alerts=['<alert id="rec" path="{scratch}/alert.sh">'
                '<recipient id="rec-r" value="{scratch}/alerts.log"/>'
                '</alert>'])
    xml = cluster.wait_for(
        lambda x: (resource_attrs(x, "dummy") or {}).get("role")
        == "Started", 20, "dummy started")
    dummy_nodes = [n.get("name") for n in xml.iter("resource")
                   if n.get("id") == "dummy" for n in n.iterfind("node")]
    assert dummy_nodes == ["cn1"]
    rn1_pid = cluster.pid("rn1")

    killed_at = cluster.kill_remote("rn1")
    assert not pid_alive(rn1_pid)
    cluster.wait_for(
        lambda x: (node_attrs(x, "rn1")["online"],
                   node_attrs(x, "rn1")["unclean"]) == ("false", "true"),
        fence_delay - 1, "rn1 offline unclean")
    seen_unclean = time.time()
    # Within the fence delay: nothing fenced yet.
    assert seen_unclean - killed_at < fence_delay - 1
    assert cluster.fence_calls() == []

    xml = cluster.wait_for(
        lambda x: (node_attrs(x, "rn1")["online"],
                   node_attrs(x, "rn1")["unclean"]) == ("false", "false"),
        fence_delay + 20, "rn1 fenced")
    fenced_seen = time.time()
    calls = cluster.fence_calls()
    assert [(c["target"], c["action"], c["result"]) for c in calls] == [
        ("rn1", "reboot", "ok")]
    # pcmk_delay_base was applied.  The fencer waits with GLib's
    # g_timeout_add_seconds, whose first tick is aligned to a whole
    # second of the process clock, so it may fire up to 1 s early
    # (seen in CI: 1.86 s after the kill with a 2 s delay).
    assert calls[0]["time"] - killed_at >= fence_delay - 1
    assert calls[0]["time"] <= fenced_seen
    assert remote_online(xml, "rn2")
    print(f"kill -9 -> unclean seen {seen_unclean - killed_at:.2f}s, "
          f"fence agent called {calls[0]['time'] - killed_at:.2f}s, "
          f"clean offline seen {fenced_seen - killed_at:.2f}s")

    history = cluster.fence_history("rn1")
    assert [(e["action"], e["status"]) for e in history] == [
        ("reboot", "success")]
    # completed has whole seconds
    assert history[0]["completed_epoch"] >= math.floor(killed_at)
    assert history[0]["completed_epoch"] <= fenced_seen + 1
    assert cluster.fence_history("rn2") == []

    # The alert agent was called for the fencing (asynchronously).
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(cluster.path("alerts.log")) as f:
            alerts = f.read().splitlines()
        fencing = [a for a in alerts if a.startswith("kind=fencing")]
        if fencing:
            break
        time.sleep(0.2)
    assert any("node=rn1" in a and "rc=0" in a for a in fencing), alerts

    # Down for longer than reconnect_interval: the cluster tries to
    # reconnect (meanwhile crm_mon shows rn1 online="true" with its
    # connection resource not Started), but does not fence rn1 again.
    time.sleep(reconnect + 1)
    xml = cluster.crm_mon_xml()
    assert node_attrs(xml, "rn1")["unclean"] == "false"
    assert not cluster.remote_connected("rn1")
    assert cluster.remote_connected("rn2")
    assert len(cluster.fence_calls()) == 1

    restarted_at = time.time()
    xml = cluster.restart_remote("rn1")
    print(f"rn1 back online {time.time() - restarted_at:.1f}s after restart")
    assert remote_online(xml, "rn1") and remote_online(xml, "rn2")
    assert cluster.pid("rn1") != rn1_pid
    assert len(cluster.fence_calls()) == 1
    assert len(cluster.fence_history("rn1")) == 1
    assert len(cluster.started_processes()) == 1 + 1 + 6 + 3


def test_fencing_made_to_fail_leaves_node_unclean(start_live_cluster):
    """(3) with fencing made to fail for rn1, rn1 stays offline unclean;
    the fence history shows failed attempts and no success."""
    cluster = start_live_cluster(remotes=["rn1"], fence_delay=0)
    cluster.set_fence_failure("rn1")
    killed_at = cluster.kill_remote("rn1")
    cluster.wait_for(
        lambda x: sum(1 for e in x.iter("fence_event")
                      if e.get("target") == "rn1"
                      and e.get("status") == "failed") >= 2,
        20, "two failed fencing attempts")
    # Watch for a while: never clean, never fenced.
    deadline = time.time() + 3
    while time.time() < deadline:
        rn1 = node_attrs(cluster.crm_mon_xml(), "rn1")
        assert (rn1["online"], rn1["unclean"]) == ("false", "true")
        time.sleep(0.2)
    history = cluster.fence_history("rn1")
    statuses = {e["status"] for e in history}
    assert "success" not in statuses
    failed = [e for e in history if e["status"] == "failed"]
    assert len(failed) >= 2
    assert all(e["completed_epoch"] >= math.floor(killed_at) for e in failed)
    calls = cluster.fence_calls()
    assert len(calls) >= 2
    assert {(c["target"], c["result"]) for c in calls} == {("rn1", "failed")}


CHILD = """
import json, os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from e2e.cluster import LiveCluster
cluster = LiveCluster(remotes=["rn1"])
with cluster:
    print(json.dumps({"scratch": cluster.scratch,
                      "processes": cluster.started_processes()}), flush=True)
    if sys.argv[2] == "TERM":
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(120)
"""


def run_child(mode):
    """A separate Python process that starts a cluster and then gets
    SIGTERM (TERM) or is SIGKILLed by us (KILL).  After a KILL the machine
    lock is taken at once (blocking) and its fd returned, so that no other
    run cleans up the dead run's cluster before this test looks at it."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, TESTS_DIR, mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock_fd = None
    try:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        started = json.loads(line)
        print(f"child cluster logs: {started['scratch']}")
        if mode == "KILL":
            lock_fd = os.open(os.path.join(harness.BASE_DIR, "lock"),
                              os.O_RDWR)
            child.kill()
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        rc = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return rc, started, lock_fd


def test_sigterm_and_sigkill_of_the_test_process_are_cleaned_up():
    """(5, interrupted) SIGTERM to the test process stops the cluster;
    after SIGKILL (no Python cleanup possible) the next run stops what the
    dead run's state file lists, by PID, before it starts."""
    require_live_cluster()
    before = snapshot_locked()

    rc, started, _ = run_child("TERM")
    assert rc != 0
    assert_all_gone(started["processes"], ["rn1"], before)
    shutil.rmtree(started["scratch"])

    rc, started, lock_fd = run_child("KILL")
    assert rc == -signal.SIGKILL
    cluster = LiveCluster(remotes=["rn1"])
    cluster._lock_fd = lock_fd  # start() uses the lock held since the kill
    try:
        # The cluster outlived the killed process...
        assert all(pid_alive(p["pid"], p["starttime"])
                   for p in started["processes"])
        assert "rn1" in netns_names()
    except BaseException:
        cluster._release_lock()
        raise
    # ...until the next run cleans it up.
    with cluster:
        assert not any(pid_alive(p["pid"], p["starttime"])
                       for p in started["processes"])
        assert remote_online(cluster.crm_mon_xml(), "rn1")
        processes = cluster.started_processes()
    assert_all_gone(started["processes"] + processes, ["rn1"], before)
    shutil.rmtree(cluster.scratch)
    shutil.rmtree(started["scratch"])
