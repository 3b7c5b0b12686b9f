"""``python -m bench.fencing``: from "fencing confirmed" to the first
evacuate call, through the real code paths of the resource agent and of
the alert agent.

Every trial: a fresh simulated cloud whose failed host is named after the
Pacemaker node (``rn1``, VMS active HA VMs; ``rn2``, ``rn3`` spares), the
bench's embedded Mistral (one for the whole run, on the code measured:
bench/source.py), then one failure, and

* t1 = the first evacuate call the simulated cloud answered 200 (its call
  log, wall clock);
* t0 = depends on the path:

``agent-cib`` (offline, no cluster): the OCF agent as Pacemaker's
    executor runs it (``resource_agents/instance-ha monitor`` of the code
    measured, as a child process, OCF_RESKEY_* environment), reading real
    ``crm_mon`` output of CIB files (``CIB_file``; the hostmonitor
    fixtures made by crm_simulate).  No fencer runs, so the fence history
    is unavailable and the agent's proof is its own: one monitor sees rn1
    lost (unclean, ``rn1-lost``), the next sees it clean (``rn1-fenced``)
    and notes it (its memory is updated after its decision), the third
    decides ``failed_fenced`` and hands over.  t0 = the end of that third
    monitor's cluster read: the exit of the last ``crm_mon`` /
    ``stonith_admin`` it ran (PATH wrappers that run the real binaries and
    note when they return).  Also the monitor process's start: t0 - start
    is its Python start-up and its read.
``agent-live`` and ``alert-live`` (root; the live cluster of tests/e2e:
    corosync + pacemakerd for cn1, pacemaker-remoted for rn1 and rn2 in
    network namespaces, fence_recorder): the agent is installed as
    ``instance-ha install-agent`` does (``agent_code`` in the JSON: the
    code it runs under Pacemaker, read from pacemaker-execd's
    environment).  A kill -9 of
    rn1's pacemaker-remoted; Pacemaker fences rn1.  t0 = the fencing
    event's own time as Pacemaker hands it to alert agents
    (``CRM_alert_timestamp_epoch`` + ``_usec``), written by a second,
    recording-only alert beside the real one.  ``agent-live``: no
    instance-ha alert; the agent's recurring monitor (every
    ``--interval`` s, 10 s as shipped) finds the fencing; each kill waits
    a random 0..interval s first, so that the fencing falls anywhere in
    the monitor's period.  ``alert-live``:
    the real alert agent (installed as install-agent does) wakes the agent
    (``crm_resource --refresh``: a probe, which is a full monitor pass);
    the recurring monitor is every ``--alert-interval`` s (default 120)
    so that it does not race the alert.  The alert's log line says
    whether it woke the agent.

The JSON goes to bench/results/<UTC date-time>-<name>.json with every
trial (and the load average before and after each).  Nothing asserts a
time.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench import source as source_module

REPO = source_module.REPO
FIXTURES = os.path.join(REPO, "tests", "unit", "hostmonitor", "fixtures",
                        "cib")
HOST = "rn1"
WRAPPED = ("crm_mon", "stonith_admin")
WRAPPER = """#!/bin/sh
# bench/fencing.py: run the real {name}, then note when it returned.
{real} "$@"
rc=$?
echo "{name} $(date +%s.%N)" >> "{log}"
exit $rc
"""
RECORDER = """#!/bin/sh
# bench/fencing.py: a recording-only alert (the time of each fencing event
# as Pacemaker hands it to alert agents).
[ "$CRM_alert_kind" = "fencing" ] || exit 0
echo "bench-fence-alert epoch=$CRM_alert_timestamp_epoch \
usec=$CRM_alert_timestamp_usec now=$(date +%s.%N) node=$CRM_alert_node \
rc=$CRM_alert_rc desc=$CRM_alert_desc" >> "$CRM_alert_recipient"
exit 0
"""


def topology(vms, latency):
    from bench import lab as lab_module

    hosts = [{"name": HOST, "servers": [
        {"name": f"{HOST}-vm{i}", "id": lab_module.server_id(f"{HOST}-vm{i}"),
         "metadata": dict(lab_module.HA)} for i in range(1, vms + 1)]}]
    hosts += [{"name": name, **lab_module.SPARE_HOST}
              for name in ("rn2", "rn3")]
    config = lab_module.topology(0, 0, latency)
    config["hosts"] = hosts
    return config


def first_evacuate(sim, after=0.0):
    times = [c.time for c in sim.cloud.calls.calls(operation="evacuate",
                                                   status=200)
             if c.time >= after]
    return min(times) if times else None


def milestones(sim, t0):
    """The workflow's first call of each kind (service disabled, servers
    listed, first lock, first evacuate), seconds after t0."""
    from bench import analysis

    return analysis.analyse(sim, [s.id for s in sim.cloud.servers.values()],
                            t0)["milestones_s"]


def wait_for(predicate, timeout, what, step=0.05):
    from instance_ha.simcloud import testing  # the measured snapshot's

    return testing.wait_for(predicate, timeout, interval=step, what=what)


def executions_of(client, host):
    from instance_ha.hostmonitor import trigger

    prefix = f"{trigger.DESCRIPTION_PREFIX}{host} ("
    return [e for e in client.executions.list(
        workflow_name=trigger.WORKFLOW, sort_keys="created_at",
        sort_dirs="desc", limit=20)
        if (e.description or "").startswith(prefix)]


def wait_recovered(lab, sim, known, timeout=300):
    """The new execution for HOST (not in ``known``), followed to its end;
    the simulated cloud then has no VM left on HOST."""
    new = wait_for(lambda: [e for e in executions_of(lab.client, HOST)
                            if e.id not in known], timeout,
                   "an execution for " + HOST)
    execution = new[0]  # newest first

    def finished():
        e = lab.client.executions.get(execution.id)
        return e if e.state in ("SUCCESS", "ERROR", "CANCELLED") else None

    done = wait_for(finished, timeout, f"execution {execution.id}", 0.2)
    return done, len(new), len(sim.cloud.servers_on(HOST))


# -- agent-cib: the OCF agent on CIB files ---------------------------------

class CibAgent:
    """The OCF agent's monitor, as Pacemaker's executor runs it, on CIB
    files."""

    def __init__(self, agent_path, mistral_url, workdir):
        self.agent = agent_path
        self.workdir = workdir
        self.rsctmp = os.path.join(workdir, "rsctmp")
        os.makedirs(self.rsctmp)
        self.cib = os.path.join(workdir, "cib.xml")
        self.bin = os.path.join(workdir, "bin")
        os.makedirs(self.bin)
        self.reads = os.path.join(workdir, "reads.log")
        for name in WRAPPED:
            real = shutil.which(name)
            if real is None:
                raise RuntimeError(f"{name} not found (Pacemaker's CLI "
                                   "tools are needed)")
            path = os.path.join(self.bin, name)
            with open(path, "w") as f:
                f.write(WRAPPER.format(name=name, real=real, log=self.reads))
            os.chmod(path, 0o755)
        self.env = {
            **os.environ,
            "PATH": self.bin + os.pathsep + os.environ.get("PATH", ""),
            "CIB_file": self.cib,
            "HA_RSCTMP": self.rsctmp,
            "OCF_ROOT": "/usr/lib/ocf",
            "OCF_RESOURCE_INSTANCE": "iha",
            "OCF_RESOURCE_TYPE": "instance-ha",
            "OCF_RESOURCE_PROVIDER": "openstack",
            "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESKEY_mistral_url": mistral_url,
            # No fencer in a CIB file: no fence history to read.
            "OCF_RESKEY_infer_fencing": "true",
            "OCF_RESKEY_crm_feature_set": "3.16.1",
            "INSTANCE_HA_PYTHON": sys.executable,
        }
        self.env.pop("HA_LOGFILE", None)

    def show(self, fixture):
        """The CIB file now says what ``fixture`` says (the handoff
        records the agent wrote in it are kept out: each trial starts
        clean)."""
        shutil.copyfile(os.path.join(FIXTURES, fixture + ".xml"), self.cib)

    def run(self, action):
        started = time.time()
        proc = subprocess.run([self.agent, action], env=self.env,
                              capture_output=True, text=True, timeout=120)
        return {"action": action, "rc": proc.returncode, "start": started,
                "end": time.time(), "stderr": proc.stderr[-4000:]}

    def read_ends(self):
        try:
            with open(self.reads) as f:
                return [(line.split()[0], float(line.split()[1]))
                        for line in f if line.strip()]
        except FileNotFoundError:
            return []


def agent_cib_trial(lab, source, vms, latency, index):
    from bench import lab as lab_module

    workdir = tempfile.mkdtemp(prefix="instance-ha-bench-fencing-")
    sim = lab_module.start_cloud(topology(vms, latency))
    try:
        lab.use_cloud(sim)
        agent_path = (os.path.join(source.path, "instance_ha",
                                   "resource_agents", "instance-ha")
                      if source.path else
                      os.path.join(REPO, "resource_agents", "instance-ha"))
        agent = CibAgent(agent_path, lab.server.url, workdir)
        known = {e.id for e in executions_of(lab.client, HOST)}
        agent.show("rn1-lost")
        start = agent.run("start")
        lost = agent.run("monitor")  # rn1 lost (unclean): not safe yet
        sim.cloud.kill_host(HOST)
        agent.show("rn1-fenced")
        # The decision uses what earlier monitors saw: this one notes rn1
        # clean (the memory is updated after the decision) ...
        clean = agent.run("monitor")
        # ... and the next one decides failed_fenced and hands over.
        before_reads = len(agent.read_ends())
        load_before = lab_module.loadavg()
        monitor = agent.run("monitor")  # rn1 clean: fenced
        reads = agent.read_ends()[before_reads:]
        t0 = max(t for _, t in reads) if reads else None
        t1 = wait_for(lambda: first_evacuate(sim, monitor["start"]), 120,
                      "the first evacuate call")
        done, count, left = wait_recovered(lab, sim, known)
        result = {
            "path": "agent-cib", "trial": index,
            "t0": "end of the cluster read of the monitor that decides rn1 "
                  "failed_fenced (lost two monitors before, clean at the "
                  "previous one)",
            "milestones_after_t0_s": milestones(sim, t0),
            "fenced_to_first_evacuate_s": round(t1 - t0, 3),
            "monitor_start_to_read_s": round(t0 - monitor["start"], 3),
            "monitor_start_to_first_evacuate_s": round(
                t1 - monitor["start"], 3),
            "monitor_run_s": round(monitor["end"] - monitor["start"], 3),
            "reads": [name for name, _ in reads],
            "rc": [start["rc"], lost["rc"], clean["rc"], monitor["rc"]],
            "agent_log": monitor["stderr"].splitlines()[-6:],
            "execution_state": done.state, "executions": count,
            "vms_left_on_failed_host": left,
            "load_before": load_before, "load_after": lab_module.loadavg(),
        }
        return result
    finally:
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# -- agent-live and alert-live: the live cluster of tests/e2e -----------------

def live_trials(lab, path, runs, vms, latency, interval, echo):
    """``runs`` failures of rn1 on one live cluster."""
    from bench import lab as lab_module
    from instance_ha.agent import command as agent_command
    from tests.e2e import agent_support as support
    from tests.e2e import cluster as cluster_module

    files = {support.AGENT_PATH: agent_command.agent_text(
        os.path.abspath(sys.executable))}
    alerts = []
    if path == "alert-live":
        files[support.ALERT_PATH] = agent_command.packaged(
            agent_command.ALERT)
        alerts.append(support.ALERT)
    alerts.append(
        '<alert id="bench-fence-recorder" '
        'path="{scratch}/fence_recorder_alert">'
        '<select><select_fencing/></select>'
        '<recipient id="bench-fence-recorder-log" '
        'value="{scratch}/alerts.log"/></alert>')
    cluster = cluster_module.LiveCluster(
        remotes=["rn1", "rn2"], host_files=files,
        scratch_files={"fence_recorder_alert": (RECORDER, 0o755)},
        resources=[support.agent_primitive(lab.server.url, interval)],
        constraints=cluster_module.avoid_remotes(support.RESOURCE,
                                                 ["rn1", "rn2"]),
        alerts=alerts)
    results = []
    done = False
    started = time.monotonic()
    cluster.start()
    echo(f"  live cluster up in {time.monotonic() - started:.1f} s "
         f"({cluster.scratch})")
    try:
        code = _agent_code(cluster)
        echo(f"  the agent under Pacemaker runs {code}")
        cluster.wait_for(support.agent_started, 60, "instance-ha Started")
        for index in range(1, runs + 1):
            result = _live_trial(lab, cluster, path, vms, latency, interval,
                                 index, support, lab_module)
            echo(f"  {path} run {index}: fenced -> first evacuate "
                 f"{result['fenced_to_first_evacuate_s']} s "
                 f"({result.get('alert', '')})")
            results.append(result)
        done = True
    finally:
        cluster.stop()
    # Its logs (pacemaker.log, alerts.log ...) are kept only when a trial
    # failed.
    if done:
        shutil.rmtree(cluster.scratch, ignore_errors=True)
    return results, cluster.timings, code


def _agent_code(cluster):
    """Which instance-ha the agent runs under Pacemaker: the executor's
    environment (inherited from pacemakerd, which the harness starts with
    this process's environment) decides."""
    for pid in cluster.pacemaker_children():
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "pacemaker-execd":
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in
                           f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        path = env.get(b"PYTHONPATH", b"").decode()
        return (f"the snapshot (PYTHONPATH={path})" if path else
                "the work tree's installed package (no PYTHONPATH)")
    return "unknown (pacemaker-execd not found)"


def _alert_events(cluster, after):
    events = []
    try:
        with open(cluster.path("alerts.log")) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return events, []
    agent_lines = [line for line in lines if "instance-ha-alert[" in line]
    for line in lines:
        if not line.startswith("bench-fence-alert "):
            continue
        fields = dict(f.split("=", 1) for f in line.split()[1:5]
                      if "=" in f)
        try:
            moment = int(fields["epoch"]) + int(fields["usec"]) / 1e6
        except (ValueError, KeyError):
            try:  # no CRM_alert_timestamp_*: when the alert ran
                moment = float(fields["now"])
            except (ValueError, KeyError):
                continue
        if moment >= after and f"node={HOST}" in line and "rc=0" in line \
                and " OK" in line:
            events.append((moment, line))
    return events, agent_lines


def _live_trial(lab, cluster, path, vms, latency, interval, index, support,
                lab_module):
    sim = lab_module.start_cloud(topology(vms, latency))
    try:
        lab.use_cloud(sim)
        known = {e.id for e in executions_of(lab.client, HOST)}
        _, agent_lines_before = _alert_events(cluster, 0)
        # A monitor of the agent has seen rn1 online since it came back.
        time.sleep(min(interval, 12) + 1)
        # Where the fencing falls in the recurring monitor's period: at
        # random (otherwise the trials' own rhythm fixes it).
        phase = round(random.uniform(0, interval), 3) \
            if path == "agent-live" else 0.0
        time.sleep(phase)
        load_before = lab_module.loadavg()
        sim.cloud.kill_host(HOST)
        killed_at = cluster.kill_remote(HOST)
        events = wait_for(lambda: _alert_events(cluster, killed_at)[0], 90,
                          "the fencing of rn1 (alert)")
        t0 = events[0][0]
        timeout = max(interval, 30) + 60
        t1 = wait_for(lambda: first_evacuate(sim, killed_at), timeout,
                      "the first evacuate call")
        done, count, left = wait_recovered(lab, sim, known)
        fence_calls = [c for c in cluster.fence_calls()
                       if c["target"] == HOST and c["time"] >= killed_at]
        _, agent_lines = _alert_events(cluster, 0)
        new_lines = agent_lines[len(agent_lines_before):]
        result = {
            "path": path, "trial": index, "monitor_interval_s": interval,
            "random_delay_before_kill_s": phase,
            "t0": "the fencing event's time as Pacemaker hands it to alert "
                  "agents (CRM_alert_timestamp_epoch + _usec)",
            "fenced_to_first_evacuate_s": round(t1 - t0, 3),
            "kill_to_fenced_s": round(t0 - killed_at, 3),
            "kill_to_first_evacuate_s": round(t1 - killed_at, 3),
            "milestones_after_t0_s": milestones(sim, t0),
            "fence_agent_calls": [
                {k: c[k] for k in ("action", "result")} | {
                    "after_kill_s": round(c["time"] - killed_at, 3)}
                for c in fence_calls],
            "alert_lines": new_lines,
            "execution_state": done.state, "executions": count,
            "vms_left_on_failed_host": left,
            "load_before": load_before, "load_after": lab_module.loadavg(),
        }
        if path == "alert-live":
            woke = [line for line in new_lines if "woke" in line]
            result["alert"] = ("woke the agent" if woke else
                               "did not wake the agent")
        # rn1 back for the next trial (its record is cleared by a monitor
        # that sees it online; a new fencing is a new failure anyway).
        cluster.restart_remote(HOST)
        return result
    finally:
        sim.stop()


# -- the run -----------------------------------------------------------------

def summarise(trials):
    values = [t["fenced_to_first_evacuate_s"] for t in trials]
    summary = {"runs": len(values)}
    if values:
        summary.update({
            "fenced_to_first_evacuate_s": round(statistics.median(values),
                                                3),
            "min_s": min(values), "max_s": max(values),
            "load_before": [t["load_before"] for t in trials],
            "all_succeeded": all(t["execution_state"] == "SUCCESS"
                                 and t["vms_left_on_failed_host"] == 0
                                 for t in trials),
        })
    for key in ("monitor_start_to_read_s", "monitor_start_to_first_evacuate_s",
                "kill_to_fenced_s"):
        found = [t[key] for t in trials if key in t]
        if found:
            summary[key] = round(statistics.median(found), 3)
    if trials and "alert" in trials[0]:
        summary["alert_woke_agent"] = sum(
            1 for t in trials if t["alert"] == "woke the agent")
    return summary


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.fencing")
    parser.add_argument("--runs", type=int, default=5,
                        help="trials per path (default 5)")
    parser.add_argument("--paths", default="agent-cib,agent-live,alert-live",
                        help="comma-separated: agent-cib, agent-live, "
                             "alert-live")
    parser.add_argument("--vms", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.5,
                        help="evacuation time L of the simulated cloud")
    parser.add_argument("--interval", type=int, default=10,
                        help="the agent's monitor interval, agent-live")
    parser.add_argument("--alert-interval", type=int, default=120,
                        help="the agent's monitor interval, alert-live")
    parser.add_argument("--name", default="fencing")
    parser.add_argument("--worktree", action="store_true")
    parser.add_argument("--revision", default="HEAD")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    return source_module.run_measured(args, _main)


def _main(args, source):
    from bench import lab as lab_module
    from bench import report

    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    started = report.now()
    out = report.path_for(args.name, started)
    document = {
        "kind": "fencing_to_first_evacuate", "argv": sys.argv[1:],
        "started": started.isoformat(timespec="seconds"),
        "machine": report.machine(), "code": source.describe(),
        "vms": args.vms, "latency": args.latency, "paths": {},
        "notes": __doc__,
    }
    lab = lab_module.Lab()
    echo = lambda text: print(text, flush=True)  # noqa: E731
    try:
        echo(f"starting the embedded Mistral in {lab.workdir} ...")
        lab.start()
        document["mistral_startup_s"] = lab.startup_seconds
        for path in paths:
            echo(f"{path} x{args.runs}")
            entry = {"trials": []}
            document["paths"][path] = entry
            if path == "agent-cib":
                for index in range(1, args.runs + 1):
                    result = agent_cib_trial(lab, source, args.vms,
                                             args.latency, index)
                    echo(f"  run {index}: fenced -> first evacuate "
                         f"{result['fenced_to_first_evacuate_s']} s "
                         f"(monitor start -> read "
                         f"{result['monitor_start_to_read_s']} s)")
                    entry["trials"].append(result)
                    entry["summary"] = summarise(entry["trials"])
                    report.write(out, document)
            else:
                interval = (args.interval if path == "agent-live"
                            else args.alert_interval)
                trials, timings, code = live_trials(lab, path, args.runs,
                                              args.vms, args.latency,
                                              interval, echo)
                entry["trials"] = trials
                entry["cluster_timings"] = timings
                entry["agent_code"] = code
                entry["monitor_interval_s"] = interval
            entry["summary"] = summarise(entry["trials"])
            report.write(out, document)
    finally:
        lab.stop()
    document["finished"] = report.now().isoformat(timespec="seconds")
    report.write(out, document)
    print(json.dumps({p: e["summary"] for p, e in document["paths"].items()},
                     indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
