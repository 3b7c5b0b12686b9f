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
            "in flight", "Mistral CPU s", "peak RSS MiB", "DB MiB/1000 VMs")
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
            _fmt(m["mistral_db_growth_per_1000_vms_mib"])))
    return rows


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
            "in flight")
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
                _fmt(m["evacuations_in_flight_max"], 0)))
    return rows


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


def main(argv=None):
    """``python -m bench.report FILE.json ...``: the tables of saved
    results, as text, or as reStructuredText with --rst."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--rst", action="store_true")
    args = parser.parse_args(argv)
    scenarios = {}
    for name in args.files:
        with open(name) as f:
            document = json.load(f)
        # A label measured in several files: the one with the most runs.
        for scenario in document["scenarios"]:
            kept = scenarios.get(scenario["label"])
            if kept is None or _runs(scenario) > _runs(kept):
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
