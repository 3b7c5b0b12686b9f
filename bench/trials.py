"""One trial: a fresh simulated cloud, hosts killed (fenced), their
recovery run to the end by instance-ha (host_evacuate on the bench's
Mistral: embedded, or distributed with --distributed) or by Masakari's
engine, then what it cost."""

import time

from bench import analysis
from bench import lab as lab_module

HOST_WORKFLOW = "instance_ha.host_evacuate"
# No Pacemaker in a benchmark: the run is told why it may evacuate.
BENCH_FENCING = "bench: a simulated host failure, no Pacemaker to ask"
FINISHED = ("SUCCESS", "ERROR", "CANCELLED")


def _failed_servers(sim, hosts):
    return [s.id for h in hosts for s in sim.cloud.servers_on(h)]


def instance_ha(lab, config, hosts, wf_input, poll=0.1, timeout=3600,
                extra=None):
    """Recover ``hosts`` at once: one host_evacuate execution each, all
    created back to back (as the agents of a rack would), followed until
    every one has finished.  t0 is the start of the first POST
    /v2/executions; a recovery's end is the first poll that sees it
    finished (poll interval ``poll``).  ``extra(sim, server_ids, t0,
    executions)``: more figures of the trial (a dict), read before the
    simulated cloud stops."""
    sim = lab_module.start_cloud(config)
    try:
        lab.use_cloud(sim)
        server_ids = _failed_servers(sim, hosts)
        for host in hosts:
            sim.cloud.kill_host(host)
        lab.reset_peak()
        before = lab.snapshot()
        bench_cpu = time.process_time()
        t0 = time.time()
        executions = {}
        post_seconds = []
        for host in hosts:
            sent = time.time()
            execution = lab.client.executions.create(
                HOST_WORKFLOW,
                workflow_input={"search_opts": {"host": host},
                                "fencing": {"override": BENCH_FENCING},
                                **wf_input},
                description=f"bench: {host} lost")
            post_seconds.append(time.time() - sent)
            executions[execution.id] = execution
        ends = {}
        deadline = time.monotonic() + timeout
        while len(ends) < len(executions):
            if time.monotonic() > deadline:
                raise RuntimeError(f"recovery not finished after {timeout} s")
            time.sleep(poll)
            for execution in _states(lab.client, executions, ends):
                if execution.state in FINISHED:
                    ends[execution.id] = time.time()
                    executions[execution.id] = lab.client.executions.get(
                        execution.id)
        t_end = max(ends.values())
        bench_cpu = time.process_time() - bench_cpu
        after = lab.snapshot()
        result = {
            "engine": "instance-ha",
            "total_s": round(t_end - t0, 3),
            "per_host_s": sorted(round(t - t0, 3) for t in ends.values()),
            "states": sorted(e.state for e in executions.values()),
            "state_info": [e.state_info for e in executions.values()
                           if e.state != "SUCCESS"],
            "post_executions_s": round(max(post_seconds), 3),
            "mistral_cpu_s": round(after["cpu"] - before["cpu"], 2),
            "mistral_peak_rss_mib": round(lab.status_kib("VmHWM") / 1024, 1),
            "mistral_peak_is_trial_peak": lab.peak_reset,
            "mistral_db_growth_bytes": after["db"] - before["db"],
            "mistral_db_bytes": after["db"],
            # The bench process: the simulated cloud's threads and the
            # client following the executions.
            "bench_process_cpu_s": round(bench_cpu, 2),
            "load_before": before["load"], "load_after": after["load"],
        }
        result.update(lab.details(before, after))
        result.update(analysis.analyse(sim, server_ids, t0))
        if extra is not None:
            result.update(extra(sim, server_ids, t0,
                                list(executions.values())))
        return result
    finally:
        sim.stop()


def _states(client, executions, ends):
    """The unfinished executions, re-read: one GET for one, one list
    (newest first, id and state only) for several."""
    waiting = [eid for eid in executions if eid not in ends]
    if len(waiting) == 1:
        return [client.executions.get(waiting[0])]
    page = client.executions.list(
        workflow_name=HOST_WORKFLOW, sort_keys="created_at",
        sort_dirs="desc", limit=len(executions) + 10,
        fields=["id", "state"])
    return [e for e in page if e.id in waiting]


def masakari(peer, config, host, settings):
    """Masakari's engine recovers ``host`` of a fresh cloud built from the
    same config; t0 is the start of its execute_host_failure call."""
    sim = lab_module.start_cloud(config)
    try:
        server_ids = _failed_servers(sim, [host])
        sim.cloud.kill_host(host)
        before = lab_module.loadavg()
        out = peer.run(sim, host, settings)
        t0 = out["started"]
        result = {
            "engine": "masakari",
            "total_s": round(out["finished"] - t0, 3),
            "error": out["error"], "vmoves": out["vmoves"],
            "masakari_settings": out["settings"],
            "masakari_version": out["masakari_version"],
            "load_before": before, "load_after": lab_module.loadavg(),
        }
        result.update(analysis.analyse(sim, server_ids, t0))
        return result
    finally:
        sim.stop()
