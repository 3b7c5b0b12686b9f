"""Capture crm_mon / stonith_admin XML from a live cluster as fixtures for
the hostmonitor unit tests (tests/unit/hostmonitor/fixtures/live/).

Run as root from the repository root:

    .venv/bin/python -m tests.e2e.capture_fixtures [--out DIR]

It starts the live cluster of tests/e2e/cluster.py twice (cn1 + remote
nodes rn1 and rn2), kills rn1's pacemaker-remoted with SIGKILL, and saves
the tools' output, unmodified, at each state; then it writes README.txt
saying how and when each file was made.  About 1 minute.
"""

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a script: import the harness
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    from e2e.cluster import LiveCluster
    from e2e.cluster import node_attrs
    from e2e.cluster import pacemaker_version
    from e2e.cluster import resource_attrs
else:
    from .cluster import LiveCluster
    from .cluster import node_attrs
    from .cluster import pacemaker_version
    from .cluster import resource_attrs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests/unit/hostmonitor/fixtures/live")

CRM_MON = ["crm_mon", "-1", "--output-as=xml"]
CRM_MON_FENCING = CRM_MON + ["--include=fencing-succeeded"]
HISTORY = ["stonith_admin", "--history", "rn1", "--verbose",
           "--output-as=xml"]
LAST = ["stonith_admin", "--last", "rn1", "--output-as=xml"]

FENCE_DELAY = 4          # s, keeps rn1 unclean long enough to capture it
RECONNECT = 8            # s, reconnect_interval of the remote resources


def rn1(xml):
    node = node_attrs(xml, "rn1")
    return node["online"], node["unclean"]


class Capture:
    def __init__(self, out):
        self.out = out
        self.made = []   # (file, command, state)

    def save(self, cluster, name, argv, state, ok_rc=(0,)):
        proc = subprocess.run(argv, capture_output=True, timeout=20,
                              stdin=subprocess.DEVNULL)
        if proc.returncode not in ok_rc:
            raise RuntimeError(f"{argv}: exit {proc.returncode}: "
                               f"{proc.stderr.decode()}{proc.stdout.decode()}")
        with open(os.path.join(self.out, name), "wb") as f:
            f.write(proc.stdout)
        command = " ".join(argv)
        if proc.returncode:
            command += f"   (exit code {proc.returncode})"
        self.made.append((name, command, state))
        print(f"  {name}: {state}")


def capture_success(cap):
    """rn1 killed, fenced after FENCE_DELAY, then reconnected."""
    with LiveCluster(remotes=["rn1", "rn2"], fence_delay=FENCE_DELAY,
                     reconnect_interval=RECONNECT) as cluster:
        print(f"cluster 1 (fencing succeeds), logs in {cluster.scratch}")
        cap.save(cluster, "crm_mon_all_online.xml", CRM_MON,
                 "cn1, rn1 and rn2 online; no fencing yet")
        killed = cluster.kill_remote("rn1")
        cluster.wait_for(lambda x: rn1(x) == ("false", "true"), 3)
        assert not cluster.fence_calls(), "fenced before the capture"
        cap.save(cluster, "crm_mon_rn1_unclean.xml", CRM_MON,
                 f"{time.time() - killed:.1f}s after kill -9 of rn1's "
                 "pacemaker-remoted: rn1 online=false unclean=true, fencing "
                 f"pending (pcmk_delay_base={FENCE_DELAY}s)")
        cap.save(cluster, "stonith_history_rn1_pending.xml", HISTORY,
                 "same moment: the pending fence event of rn1")
        cluster.wait_for(lambda x: rn1(x) == ("false", "false"),
                         FENCE_DELAY + 20)
        assert len(cluster.fence_calls()) == 1
        cap.save(cluster, "crm_mon_rn1_fenced.xml", CRM_MON,
                 f"{time.time() - killed:.1f}s after the kill, right after "
                 "rn1 was fenced: online=false unclean=false")
        cap.save(cluster, "stonith_history_rn1_success.xml", HISTORY,
                 "after the successful fencing of rn1")
        cap.save(cluster, "crm_mon_fencing_succeeded.xml", CRM_MON_FENCING,
                 "after the successful fencing of rn1 (fence_history "
                 "included)")
        cap.save(cluster, "stonith_last_rn1_success.xml", LAST,
                 "after the successful fencing of rn1")
        # The cluster retries the connection every reconnect_interval; while
        # an attempt is pending crm_mon shows rn1 online="true" and its
        # connection resource "Starting" although the daemon is dead.
        cluster.wait_for(
            lambda x: resource_attrs(x, "rn1")["role"] == "Starting",
            RECONNECT + 10)
        assert not cluster.remote_connected("rn1")
        cap.save(cluster, "crm_mon_rn1_fenced_reconnecting.xml", CRM_MON,
                 f"{time.time() - killed:.1f}s after the kill: rn1 fenced, "
                 "daemon still dead, the cluster retrying the connection "
                 "(reconnect_interval): rn1 shows online=true unclean=false, "
                 "resource rn1 role=Starting")
        cluster.restart_remote("rn1")
        cap.save(cluster, "crm_mon_rn1_back_online.xml", CRM_MON_FENCING,
                 "rn1's pacemaker-remoted restarted and reconnected after "
                 "the fencing (fence_history included)")
        assert len(cluster.fence_calls()) == 1
    shutil.rmtree(cluster.scratch)  # the logs are kept only on failure


def capture_failure(cap):
    """Fencing of rn1 made to fail: the controller retries, then gives
    up (stonith-max-attempts=10); rn1 stays unclean."""
    with LiveCluster(remotes=["rn1", "rn2"], fence_delay=0,
                     fence_fail=["rn1"]) as cluster:
        print(f"cluster 2 (fencing fails), logs in {cluster.scratch}")
        killed = cluster.kill_remote("rn1")

        def failed_events():
            return sum(1 for e in cluster.fence_history("rn1")
                       if e["status"] == "failed")

        count, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            now = failed_events()
            if now != count:
                count, stable_since = now, time.monotonic()
            elif count >= 2 and time.monotonic() - stable_since > 3:
                break
            time.sleep(0.5)
        xml = cluster.crm_mon_xml()
        assert rn1(xml) == ("false", "true"), rn1(xml)
        cap.save(cluster, "crm_mon_rn1_fencing_failed.xml", CRM_MON,
                 f"{time.time() - killed:.1f}s after kill -9 of rn1's "
                 f"daemon, fence agent failing for rn1: {count} failed "
                 "attempts, no more retries; rn1 online=false unclean=true")
        cap.save(cluster, "stonith_history_rn1_failed.xml", HISTORY,
                 "same moment: only failed fence events for rn1")
        cap.save(cluster, "crm_mon_fencing_failed.xml", CRM_MON_FENCING,
                 "same moment, fence_history included")
        # 2.1.5 answers a node never fenced with exit 74 "I/O error".
        cap.save(cluster, "stonith_last_rn1_failed.xml", LAST,
                 "same moment: rn1 never fenced successfully", ok_rc=(0, 74))
    shutil.rmtree(cluster.scratch)


README = """\
Live Pacemaker output for the hostmonitor unit tests
====================================================

Captured {when} by tests/e2e/capture_fixtures.py on a live
cluster started by tests/e2e/cluster.py (Debian 12, {version}, corosync on
127.0.0.1):
cluster node cn1 (DC), Pacemaker Remote nodes rn1 (10.99.0.2) and rn2
(10.99.1.2) each in its own network namespace, fence device fence_rec
(stonith:fence_recorder, pcmk_host_list="rn1 rn2"), remote resources with
monitor interval 5s.  Failure = kill -9 of rn1's pacemaker-remoted.

Regenerate (root; about 1 minute; overwrites these files and this README):

    .venv/bin/python -m tests.e2e.capture_fixtures

The files are the tools' output, unmodified.  Times are real (UTC).

Cluster 1: pcmk_delay_base={delay}s, reconnect_interval={reconnect}s
Cluster 2: no fence delay, fence agent failing (exit 1) for rn1

{table}

Notes for parsers (measured on this cluster):
* Remote nodes are <node type="remote">; the node name is the connection
  resource id (rn1), which is also a <resource> (ocf:pacemaker:remote).
* crm_mon_rn1_fenced_reconnecting.xml: after fencing, while the cluster
  retries the connection to the dead daemon, crm_mon shows rn1
  online="true" unclean="false" (resource rn1 role="Starting"; a moment
  later even role="Started" failed="false" while the start is still
  pending).  "online" alone does not mean the host is back; the
  connection is up when the CIB node_state of rn1 has in_ccm="true"
  (cibadmin --query; LiveCluster.remote_connected() checks that).
* Without --verbose, stonith_admin --history shows only one (the oldest)
  event in 2.1.5; these files use --verbose (newest first).
* fence_event completed="YYYY-MM-DD HH:MM:SSZ" (UTC, whole seconds);
  a pending event has status="pending" and no completed attribute.
* The default crm_mon XML includes <fence_history> with pending and failed
  events only; --include=fencing-succeeded adds the successful ones.
* stonith_admin --last for a node never fenced successfully exits 74
  ("I/O error occurred") with no <last-fenced> element.
* Each fencing attempt that fails is one status="failed" event; the
  controller gives up after stonith-max-attempts (10) and rn1 stays
  unclean="true".
"""


def write_readme(cap, when, version):
    rows = []
    for name, command, state in cap.made:
        rows.append(f"{name}\n    command: {command}\n    state:   {state}")
    with open(os.path.join(cap.out, "README.txt"), "w") as f:
        f.write(README.format(
            when=when, version=version, delay=FENCE_DELAY,
            reconnect=RECONNECT, table="\n\n".join(rows)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    version = pacemaker_version()
    when = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    cap = Capture(args.out)
    started = time.monotonic()
    capture_success(cap)
    capture_failure(cap)
    write_readme(cap, when, version)
    print(f"{len(cap.made)} files in {args.out} "
          f"({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
