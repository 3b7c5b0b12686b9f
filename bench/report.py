"""The printed tables and the JSON file of a bench run."""

import datetime
import json
import os
import platform

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "results")


def machine():
    info = {"cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release()}
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        info["memory_gib"] = round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from importlib import metadata
        info["mistral"] = metadata.version("mistral")
    except Exception:
        pass
    return info


def path_for(name, started):
    stamp = started.strftime("%Y-%m-%dT%H%M")
    return os.path.join(RESULTS, f"{stamp}-{name}.json")


def write(path, document):
    """Atomically (a .tmp beside it, then a rename): a run cut short
    leaves the scenarios done so far."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def recovery_table(scenarios):
    """Matrix and rack rows."""
    head = ("scenario", "runs", "ideal s", "total s", "min-max", "ratio",
            "overhead s", "tail s", "1st evac s", "calls/VM", "polls/VM",
            "in flight", "Mistral CPU s", "peak RSS MiB", "DB MiB/1000 VMs",
            "load")
    rows = [head]
    for s in scenarios:
        if s["spec"]["kind"] not in ("matrix", "rack"):
            continue
        m = s["summary"]
        rows.append((
            s["label"], str(m["runs"]), _fmt(m["ideal_s"]),
            _fmt(m["total_s"]),
            f"{_fmt(m['total_min_s'])}-{_fmt(m['total_max_s'])}",
            _fmt(m["ratio_to_ideal"], 2), _fmt(m["overhead_s"]),
            _fmt(m.get("tail_s", _tail(s["runs"]))),
            _fmt(m["first_evacuate_s"], 2), _fmt(m["calls_per_vm"]),
            _fmt(m["polls_per_vm"]),
            _fmt(m["evacuations_in_flight_max"], 0),
            _fmt(m["mistral_cpu_s"]), _fmt(m["mistral_peak_rss_mib"], 0),
            _fmt(m["mistral_db_growth_per_1000_vms_mib"]),
            _load_range(s["runs"])))
    return rows


def _load_range(runs):
    """min-max of the 1-minute load average before the runs."""
    if isinstance(runs, dict):
        runs = [r for group in runs.values() for r in group]
    loads = [r["load_before"] for r in runs
             if r.get("load_before") is not None]
    if not loads:
        return "-"
    return f"{_fmt(float(min(loads)))}-{_fmt(float(max(loads)))}"


def _tail(runs):
    """Median of total - last evacuation done (results saved before the
    summary had it)."""
    import statistics

    tails = [r["total_s"] - r["last_evacuation_done_s"] for r in runs
             if r.get("last_evacuation_done_s") is not None]
    return round(statistics.median(tails), 3) if tails else None


def side_by_side_table(scenarios):
    head = ("side-by-side", "engine", "runs", "total s", "min-max",
            "ratio to instance-ha", "1st evac s", "calls/VM",
            "in flight", "load")
    rows = [head]
    for s in scenarios:
        if s["spec"]["kind"] != "side_by_side":
            continue
        for engine, m in s["summary"].items():
            rows.append((
                s["label"], engine, str(m["runs"]), _fmt(m["total_s"]),
                f"{_fmt(m['total_min_s'])}-{_fmt(m['total_max_s'])}",
                _fmt(m["ratio_to_instance_ha"], 2),
                _fmt(m["first_evacuate_s"], 2), _fmt(m["calls_per_vm"]),
                _fmt(m["evacuations_in_flight_max"], 0),
                _load_range(s["runs"][engine])))
    return rows


def order_table(scenarios):
    """Restart-group rows: the total, each group's last VM recovered
    (median, min-max), the cost against the same N C L without groups
    and with the capacity estimate (the baseline), and the listing ->
    first lock step, where the capacity estimate runs."""
    chosen = [s for s in scenarios if s["spec"]["kind"] == "order"]
    base = {}
    for s in chosen:
        spec = s["spec"]
        if not spec["groups"] and spec["check_capacity"]:
            base[(spec["n"], spec["concurrency"], spec["latency"])] = (
                s["summary"]["total_s"])
    head = ("scenario", "runs", "ideal s", "total s", "min-max",
            "cost s", "1st evac s", "list->lock s", "placement calls",
            "last VM recovered per group s (median, min-max)", "load")
    rows = [head]
    for s in chosen:
        spec, m = s["spec"], s["summary"]
        key = (spec["n"], spec["concurrency"], spec["latency"])
        cost = (m["total_s"] - base[key]) if key in base else None
        lock = m["list_to_first_lock_s"]
        groups = "; ".join(
            f"{name} {_fmt(g['last_recovered_s']['median'])} "
            f"({_fmt(g['last_recovered_s']['min'])}-"
            f"{_fmt(g['last_recovered_s']['max'])})"
            for name, g in m["groups"].items())
        rows.append((
            s["label"], str(m["runs"]), _fmt(m["ideal_s"]),
            _fmt(m["total_s"]),
            f"{_fmt(m['total_min_s'])}-{_fmt(m['total_max_s'])}",
            _fmt(cost, 1) if cost is not None else "-",
            _fmt(m["first_evacuate_s"], 2),
            f"{_fmt(lock['median'], 2)} ({_fmt(lock['min'], 2)}-"
            f"{_fmt(lock['max'], 2)})",
            _fmt(m["placement_calls"], 0), groups,
            _load_range(s["runs"])))
    return rows


FENCING_T0 = {
    "agent-cib": "the agent's crm_mon read (CIB file) deciding fenced",
    "agent-live": "fencing (alert timestamp); monitor every 10 s",
    "alert-live": "fencing (alert timestamp); alert wakes the agent",
}


def fencing_table(documents):
    """Fencing confirmed -> first evacuate (bench/fencing.py results):
    one row per path; a path in several files: the file with the most
    trials."""
    paths = {}
    for document in documents:
        for path, entry in document.get("paths", {}).items():
            kept = paths.get(path)
            if kept is None or len(entry["trials"]) > len(kept["trials"]):
                paths[path] = entry
    head = ("path", "runs", "median s", "min-max", "service down s",
            "load before", "t0")
    rows = [head]
    for path, entry in paths.items():
        trials = entry["trials"]
        if not trials:
            continue
        values = [t["fenced_to_first_evacuate_s"] for t in trials]
        down = [t["milestones_after_t0_s"]["service_down"] for t in trials
                if t.get("milestones_after_t0_s", {}).get("service_down")
                is not None]
        loads = [t["load_before"] for t in trials
                 if t.get("load_before") is not None]
        rows.append((
            path, str(len(values)), _fmt(_median(values), 2),
            f"{_fmt(min(values), 2)}-{_fmt(max(values), 2)}",
            _fmt(_median(down), 2),
            f"{_fmt(float(min(loads)))}-{_fmt(float(max(loads)))}"
            if loads else "-",
            FENCING_T0.get(path, "")))
    return rows


def _median(values):
    import statistics

    return round(statistics.median(values), 3) if values else None


def render(rows):
    if len(rows) < 2:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = zip(row, widths, strict=True)
        lines.append("  ".join(cell.rjust(w) if k and i else cell.ljust(w)
                               for i, (cell, w) in enumerate(cells)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rst(rows):
    """A reStructuredText simple table of the rows (header first)."""
    if len(rows) < 2:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in
                               zip(row, widths, strict=True)).rstrip())
        if k == 0:
            lines.append(rule)
    lines.append(rule)
    return "\n".join(lines)


def _runs(scenario):
    runs = scenario["runs"]
    return len(runs) if isinstance(runs, list) else len(
        runs.get("instance-ha", []))


def _merged(kept, scenario):
    """One scenario with the runs of both, summarised again."""
    from bench import scenarios as scenarios_module

    runs = kept["runs"] + scenario["runs"]
    spec = kept["spec"]
    n = spec["n"] * spec.get("hosts", 1)
    summary = scenarios_module.summarise(runs, kept.get("ideal_s"), n)
    if spec["kind"] == "rack":
        summary["bound_hosts_x_concurrency"] = (spec["hosts"]
                                                * spec["concurrency"])
    return {**kept, "runs": runs, "summary": summary}


def main(argv=None):
    """``python -m bench.report FILE.json ...``: the tables of saved
    results, as text, or as reStructuredText with --rst."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--rst", action="store_true")
    parser.add_argument("--merge", action="store_true",
                        help="a matrix or rack scenario found in several "
                             "files: the runs of all of them, summarised "
                             "together (default: the file with the most "
                             "runs)")
    args = parser.parse_args(argv)
    scenarios = {}
    fencing = []
    for name in args.files:
        with open(name) as f:
            document = json.load(f)
        if document.get("kind") == "fencing_to_first_evacuate":
            fencing.append(document)
            print(f"{os.path.basename(name)}: {document.get('started')}, "
                  f"code {document.get('code', {}).get('commit')}")
            continue
        for scenario in document["scenarios"]:
            kept = scenarios.get(scenario["label"])
            if kept is not None and args.merge and isinstance(
                    scenario["runs"], list):
                scenarios[scenario["label"]] = _merged(kept, scenario)
            # A label measured in several files: the one with the most
            # runs.
            elif kept is None or _runs(scenario) > _runs(kept):
                scenarios[scenario["label"]] = scenario
        print(f"{os.path.basename(name)}: {document.get('started')}, "
              f"{document.get('duration_s')} s, code "
              f"{document.get('code', {}).get('commit')}")
    scenarios = list(scenarios.values())
    show = rst if args.rst else render
    print()
    print(show(recovery_table(scenarios)))
    print()
    print(show(side_by_side_table(scenarios)))
    print()
    print(show(order_table(scenarios)))
    if fencing:
        print()
        print(show(fencing_table(fencing)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
