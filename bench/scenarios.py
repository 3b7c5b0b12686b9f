"""What the bench measures, as data: the sets (quick, full, all) and how
each kind of scenario is run and summarised."""

import json
import math
import statistics

from bench import analysis
from bench import lab as lab_module
from bench import masakari_peer
from bench import trials

# The workflow polls a VM every poll_interval; in the matrix it is L/4 so
# that the result measures the engine, not the poll quantum (the
# side-by-side keeps the workflow's defaults).
POLL_SHARE = 0.25


def matrix(n, c, latency, repeats):
    return {"kind": "matrix", "n": n, "concurrency": c, "latency": latency,
            "poll_interval": latency * POLL_SHARE, "repeats": repeats}


def rack(hosts, vms, c, latency, repeats):
    return {"kind": "rack", "hosts": hosts, "n": vms, "concurrency": c,
            "latency": latency, "poll_interval": latency * POLL_SHARE,
            "repeats": repeats}


def side_by_side(n, latency, repeats, masakari_default_repeats,
                 concurrency=None):
    """``concurrency``: instance-ha's, and Masakari tuned to it
    (host_failure_recovery_threads); None: each at its defaults."""
    return {"kind": "side_by_side", "n": n, "latency": latency,
            "repeats": repeats, "concurrency": concurrency,
            "masakari_default_repeats": masakari_default_repeats}


def order(n, c, latency, groups, repeats, check_capacity=True):
    """One failed host with N VMs in ``groups`` restart groups of N/groups
    (0: none), named in the workflow's ``restart_groups``; the same host
    and VMs (ids) whatever the groups."""
    return {"kind": "order", "n": n, "concurrency": c, "latency": latency,
            "poll_interval": latency * POLL_SHARE, "groups": groups,
            "check_capacity": check_capacity, "repeats": repeats}


def group_names(spec):
    return [f"g{k}" for k in range(1, spec["groups"] + 1)]


def order_topology(spec):
    """lab.topology's one host, its VMs' ``instance_ha:restart_group``
    (server metadata) round-robin over the groups: VM i in group
    g((i - 1) mod groups + 1), so that each group is spread over the
    listing's name order; no group without groups."""
    config = lab_module.topology(1, spec["n"], spec["latency"])
    names = group_names(spec)
    if names:
        for i, server in enumerate(config["hosts"][0]["servers"]):
            server["metadata"][GROUP_KEY] = names[i % len(names)]
    return config


GROUP_KEY = "instance_ha:restart_group"
ORDER_N, ORDER_C, ORDER_L = 100, 20, 2.0

N_VALUES = (10, 200, 1000)
C_VALUES = (1, 10, 50)
L_VALUES = (0.5, 2.0)


def ideal(n, c, latency):
    return math.ceil(n / c) * latency


def _estimate(n, c, latency):
    """A rough lower bound of one trial's duration on the 2-core machine:
    the ideal, or the embedded Mistral's throughput (measured about 2-3
    VMs/s at any concurrency), whichever is slower."""
    return max(ideal(n, c, latency), n / 2.5) + 4


# Dropped from "full" (kept in "all"), with the reason the report gives.
# Measured on the 2-core machine (bench/results/2026-11-21T0637-probe.json
# and -full.json): N=200 took 108-236 s and N=1000 1145 s (19 min) a run,
# whatever C and L: the embedded Mistral, not the ideal, sets the time
# from N=200 on.
DROPPED = {
    (200, 1, 0.5): "C=1: 200 VMs one after the other, about 400 s a run",
    (200, 1, 2.0): "C=1: ideal 400 s a run",
    (200, 10, 0.5): "N=200 is Mistral-bound (108-236 s a run at any "
                    "C >= 10): C=10 L=2 and C=50 L=0.5 show it",
    (200, 50, 2.0): "N=200 is Mistral-bound: as C=50 L=0.5 (ideal 8 s)",
    (1000, 1, 0.5): "C=1: ideal 500 s a run",
    (1000, 1, 2.0): "C=1: ideal 2000 s a run",
    (1000, 10, 0.5): "N=1000: about 19 minutes a run at any C",
    (1000, 10, 2.0): "N=1000: about 19 minutes a run at any C",
    (1000, 50, 0.5): "N=1000: about 19 minutes a run; measured on its "
                     "own, three runs (--all --only 'N=1000 C=50 L=0.5')",
    (1000, 50, 2.0): "N=1000: about 19 minutes a run at any C",
}

SETS = {
    "quick": {
        "description": "smoke: every kind once, small (1-2 minutes "
                       "plus the Mistral start)",
        "scenarios": [matrix(10, 1, 0.5, 1), matrix(10, 10, 0.5, 1),
                      rack(3, 5, 10, 0.5, 1),
                      side_by_side(5, 0.5, 1, 0)],
    },
    "full": {
        "description": "the default: the matrix minus the dropped "
                       "combinations, a rack, the side-by-side",
        "scenarios": (
            [matrix(n, c, lat, 3)
             for n in N_VALUES for c in C_VALUES for lat in L_VALUES
             if (n, c, lat) not in DROPPED]
            + [rack(10, 10, 10, 2.0, 3), rack(10, 10, 10, 60.0, 1),
               side_by_side(20, 2.0, 3, 1)]),
    },
    "scale": {
        "description": "the performance goals: N=20 C=10 L=2, N=200 C=50 "
                       "L=0.5, N=1000 C=50 L=0.5, ten hosts of 20 at C=10 "
                       "L=2, and Masakari tuned to the same concurrency "
                       "(and at its defaults) at N=20 and N=200",
        "scenarios": [matrix(20, 10, 2.0, 3), matrix(200, 50, 0.5, 3),
                      matrix(1000, 50, 0.5, 3), rack(10, 20, 10, 2.0, 3),
                      side_by_side(20, 2.0, 3, 1, concurrency=10),
                      side_by_side(200, 0.5, 3, 1, concurrency=50)],
    },
    "order": {
        "description": "what restart-group ordering and the capacity "
                       "estimate cost: N=100 C=20 L=2 with no groups, 2 "
                       "groups of 50, 4 of 25, and no groups without "
                       "the capacity estimate (about 5 minutes)",
        "scenarios": [order(ORDER_N, ORDER_C, ORDER_L, 0, 3),
                      order(ORDER_N, ORDER_C, ORDER_L, 2, 3),
                      order(ORDER_N, ORDER_C, ORDER_L, 4, 3),
                      order(ORDER_N, ORDER_C, ORDER_L, 0, 3,
                            check_capacity=False)],
    },
    "all": {
        "description": "every combination of the issue (hours)",
        "scenarios": (
            [matrix(n, c, lat, 3) for n in N_VALUES for c in C_VALUES
             for lat in L_VALUES]
            + [rack(10, 10, 10, 2.0, 3), rack(10, 10, 10, 60.0, 3),
               side_by_side(20, 2.0, 3, 3)]),
    },
}


def dropped_from(name):
    if name == "all" or not any(s["kind"] == "matrix"
                                for s in SETS[name]["scenarios"]):
        return {}
    kept = {(s["n"], s["concurrency"], s["latency"])
            for s in SETS[name]["scenarios"] if s["kind"] == "matrix"}
    return {f"N={n} C={c} L={lat}": why
            for (n, c, lat), why in DROPPED.items() if (n, c, lat) not in kept}


def label(spec):
    if spec["kind"] == "matrix":
        return (f"N={spec['n']} C={spec['concurrency']} "
                f"L={spec['latency']}")
    if spec["kind"] == "order":
        groups = spec["groups"]
        return (f"order N={spec['n']} C={spec['concurrency']} "
                f"L={spec['latency']} groups="
                + (f"{groups}x{spec['n'] // groups}" if groups else "none")
                + ("" if spec["check_capacity"] else " capacity=off"))
    if spec["kind"] == "rack":
        return (f"rack {spec['hosts']}x{spec['n']} "
                f"C={spec['concurrency']} L={spec['latency']}")
    concurrency = spec.get("concurrency")
    return (f"side-by-side N={spec['n']} L={spec['latency']}"
            + (f" C={concurrency}" if concurrency else ""))


# -- running -------------------------------------------------------------

def run(spec, lab, peer, echo):
    if spec["kind"] == "matrix":
        return _run_matrix(spec, lab, echo)
    if spec["kind"] == "rack":
        return _run_rack(spec, lab, echo)
    if spec["kind"] == "order":
        return _run_order(spec, lab, echo)
    return _run_side_by_side(spec, lab, peer, echo)


def _wf_input(spec):
    return {"concurrency": spec["concurrency"],
            "poll_interval": spec["poll_interval"]}


def _run_matrix(spec, lab, echo):
    config = lab_module.topology(1, spec["n"], spec["latency"])
    runs = []
    for r in range(spec["repeats"]):
        result = trials.instance_ha(lab, config, ["compute1"],
                                    _wf_input(spec))
        echo(f"  run {r + 1}: {result['total_s']} s "
             f"({result['states'][0]}, {result['vms_moved']} moved)")
        runs.append(result)
    best = ideal(spec["n"], spec["concurrency"], spec["latency"])
    return {"spec": spec, "ideal_s": best, "runs": runs,
            "summary": summarise(runs, best, spec["n"])}


def _run_rack(spec, lab, echo):
    hosts = [f"compute{h}" for h in range(1, spec["hosts"] + 1)]
    config = lab_module.topology(spec["hosts"], spec["n"], spec["latency"])
    runs = []
    for r in range(spec["repeats"]):
        result = trials.instance_ha(lab, config, hosts, _wf_input(spec),
                                    poll=0.25)
        echo(f"  run {r + 1}: {result['total_s']} s, in flight max "
             f"{result['evacuations_in_flight_max']} evacuations")
        runs.append(result)
    best = ideal(spec["n"], spec["concurrency"], spec["latency"])
    summary = summarise(runs, best, spec["n"] * spec["hosts"])
    summary["bound_hosts_x_concurrency"] = (spec["hosts"]
                                            * spec["concurrency"])
    return {"spec": spec, "ideal_s": best, "runs": runs,
            "summary": summary}


def order_ideal(spec):
    """Group after group, each ceil(n_g/C) * L: the ideal of the
    ordering itself."""
    sizes = {}
    for i in range(spec["n"]):
        k = i % spec["groups"] if spec["groups"] else 0
        sizes[k] = sizes.get(k, 0) + 1
    return sum(ideal(size, spec["concurrency"], spec["latency"])
               for size in sizes.values())


def _order_extra(group_of):
    def extra(sim, server_ids, t0, executions):
        figures = {"groups": analysis.by_group(sim, group_of, t0),
                   "placement_calls": sum(
                       1 for c in sim.cloud.calls.calls()
                       if c.operation.startswith("placement."))}
        output = executions[0].output if executions else None
        if isinstance(output, str):
            output = json.loads(output)
        capacity = (output or {}).get("capacity") or {}
        figures["capacity_checked"] = capacity.get("checked")
        figures["capacity_note"] = capacity.get("note")
        return figures
    return extra


def _run_order(spec, lab, echo):
    config = order_topology(spec)
    servers = config["hosts"][0]["servers"]
    group_of = {s["id"]: s["metadata"].get(GROUP_KEY, "(none)")
                for s in servers}
    wf_input = dict(_wf_input(spec), restart_groups=group_names(spec),
                    check_capacity=spec["check_capacity"])
    runs = []
    for r in range(spec["repeats"]):
        result = trials.instance_ha(lab, config, ["compute1"], wf_input,
                                    extra=_order_extra(group_of))
        echo(f"  run {r + 1}: {result['total_s']} s "
             f"({result['states'][0]}, {result['vms_moved']} moved); "
             + ", ".join(f"{g} last at {m['last_recovered_s']} s"
                         for g, m in result["groups"].items()))
        runs.append(result)
    best = order_ideal(spec)
    summary = summarise(runs, best, spec["n"])
    summary.update(summarise_order(runs))
    return {"spec": spec, "ideal_s": best, "runs": runs,
            "summary": summary}


def summarise_order(runs):
    """Per group, medians and min/max over the runs; the step from the
    listing to the first lock (the capacity estimate lies between)."""
    def spread(values):
        values = [v for v in values if v is not None]
        if not values:
            return {"median": None, "min": None, "max": None}
        return {"median": round(statistics.median(values), 3),
                "min": min(values), "max": max(values)}

    groups = {}
    for name in runs[0]["groups"]:
        groups[name] = {
            "vms": runs[0]["groups"][name]["vms"],
            "recovered_min": min(r["groups"][name]["recovered"]
                                 for r in runs),
            "last_recovered_s": spread(
                [r["groups"][name]["last_recovered_s"] for r in runs]),
            "first_evacuate_s": spread(
                [r["groups"][name]["first_evacuate_s"] for r in runs]),
        }
    lock = [r["milestones_s"]["first_lock"] - r["milestones_s"][
        "list_servers"] for r in runs
        if r["milestones_s"]["first_lock"] is not None
        and r["milestones_s"]["list_servers"] is not None]
    return {
        "groups": groups,
        "list_to_first_lock_s": spread([round(v, 3) for v in lock]),
        "placement_calls": statistics.median(r["placement_calls"]
                                             for r in runs),
        "capacity_checked": sorted({str(r["capacity_checked"])
                                    for r in runs}),
    }


def _run_side_by_side(spec, lab, peer, echo):
    """instance-ha and Masakari at its defaults and with its fixed sleep
    at zero, on the same host and VMs (the same config, fresh cloud
    each), interleaved.  Without a concurrency: instance-ha at the
    workflow's defaults (concurrency 10, poll 2 s), Masakari's threads at
    its default; with one: instance-ha at it (poll L/4) and Masakari's
    host_failure_recovery_threads at it ("tuned")."""
    config = lab_module.topology(1, spec["n"], spec["latency"])
    concurrency = spec.get("concurrency")
    wf_input = {} if concurrency is None else {
        "concurrency": concurrency,
        "poll_interval": spec["latency"] * POLL_SHARE}
    tuned = dict(masakari_peer.SLEEPS_ZERO)
    if concurrency is not None:
        tuned["host_failure_recovery_threads"] = concurrency
    engines = {"instance-ha": [], "masakari-sleeps-0": [],
               "masakari-default": []}
    for r in range(spec["repeats"]):
        order = ["instance-ha", "masakari-sleeps-0"]
        if r % 2:
            order.reverse()
        if r < spec["masakari_default_repeats"]:
            order.append("masakari-default")
        for engine in order:
            if engine == "instance-ha":
                result = trials.instance_ha(lab, config, ["compute1"],
                                            wf_input)
            else:
                settings = (tuned if engine == "masakari-sleeps-0"
                            else masakari_peer.DEFAULTS)
                result = trials.masakari(peer, config, "compute1", settings)
            echo(f"  run {r + 1} {engine}: {result['total_s']} s, "
                 f"first evacuate at "
                 f"{result['milestones_s']['first_evacuate']} s")
            engines[engine].append(result)
    summaries = {engine: summarise(runs, None, spec["n"])
                 for engine, runs in engines.items() if runs}
    base = summaries["instance-ha"]["total_s"]
    for summary in summaries.values():
        summary["ratio_to_instance_ha"] = round(summary["total_s"] / base,
                                                2)
    return {"spec": spec, "runs": engines, "summary": summaries}


def summarise(runs, best, n):
    """Medians over the runs (and min/max of the total)."""
    def med(key, getter=None):
        values = [getter(r) if getter else r.get(key) for r in runs]
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 3) if values else None

    totals = [r["total_s"] for r in runs]
    summary = {
        "runs": len(runs),
        "total_s": med("total_s"),
        "total_min_s": min(totals), "total_max_s": max(totals),
        "first_evacuate_s": med(None,
                                lambda r: r["milestones_s"]["first_evacuate"]),
        "service_down_s": med(None,
                              lambda r: r["milestones_s"]["service_down"]),
        "last_evacuation_done_s": med("last_evacuation_done_s"),
        # From the last evacuation done at Nova to the end seen.
        "tail_s": med(None, lambda r: (
            r["total_s"] - r["last_evacuation_done_s"]
            if r.get("last_evacuation_done_s") is not None else None)),
        "calls_per_vm": med("calls_per_vm"),
        "calls_per_vm_without_keystone": med("calls_per_vm_without_keystone"),
        "polls_per_vm": med("polls_per_vm"),
        "evacuations_in_flight_max": med("evacuations_in_flight_max"),
        "vm_work_in_flight_max": med("vm_work_in_flight_max"),
        "vms_moved_min": min(r["vms_moved"] for r in runs),
        "double_evacuations_max": max(r["double_evacuations"] for r in runs),
        "all_succeeded": all(
            set(r.get("states", ["SUCCESS"])) == {"SUCCESS"}
            and not r.get("error") for r in runs),
    }
    if best is not None:
        summary["ideal_s"] = best
        summary["ratio_to_ideal"] = round(summary["total_s"] / best, 2)
        summary["overhead_s"] = round(summary["total_s"] - best, 2)
    if "mistral_cpu_s" in runs[0]:
        summary["mistral_cpu_s"] = med("mistral_cpu_s")
        summary["mistral_peak_rss_mib"] = med("mistral_peak_rss_mib")
        summary["mistral_db_growth_per_1000_vms_mib"] = med(
            None, lambda r: r["mistral_db_growth_bytes"] / n * 1000 / 2**20)
        summary["bench_process_cpu_s"] = med("bench_process_cpu_s")
    if "services_cpu_s" in runs[0]:
        # The distributed topology: the largest process, the daemons.
        summary["mistral_peak_rss_max_process_mib"] = med(
            "mistral_peak_rss_max_process_mib")
        summary["services_cpu_s"] = {
            name: med(None, lambda r, name=name: r["services_cpu_s"][name])
            for name in runs[0]["services_cpu_s"]}
    return summary
