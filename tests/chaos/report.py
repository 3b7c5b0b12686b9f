"""Summarize a chaos report (``CHAOS_REPORT``: one JSON line per run).

    python tests/chaos/report.py /tmp/chaos50.jsonl

Per topology: runs, kill points by operation (and recovery method), the
worst and median time from the kill to the failure's final outcome,
runs the watchdog restarted and what the replaced runs left (tasks not
SUCCESS), VMs a replaced run reported failed although they moved,
double evacuations (a second accepted one after the first one's
migration failed: allowed, counted), and every violation with its run.
"""

import argparse
import collections
import json
import statistics
import sys


def load(path):
    runs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                runs.append(json.loads(line))
            except ValueError:
                print(f"{path}:{number}: not JSON, skipped",
                      file=sys.stderr)
    return runs


def operation(point):
    """'evacuate[200]#7+0.7s@reserved' -> 'evacuate'."""
    return point.split("#", 1)[0].split("[", 1)[0]


def scenario(point):
    return point.rsplit("@", 1)[1] if "@" in point else "auto"


def _kind(left):
    """'wf/task ERROR: {'server': 'ID', ...' -> 'wf/task ERROR: {...}':
    one kind per task and state, whatever the VM."""
    head, brace, _ = left.partition("{")
    return head + ("{...}" if brace else "")


def _reason(why):
    """'2 task(s) never started' -> 'task(s) never started';
    'stalled for 101 s' -> 'stalled (watchdog_timeout)'."""
    if not why:
        return "?"
    if why.startswith("stalled for"):
        return "stalled (watchdog_timeout)"
    head, _, rest = why.partition(" ")
    return rest if head.isdigit() else why


def summarize(runs):
    by_topology = collections.defaultdict(list)
    for run in runs:
        by_topology[run.get("topology", "?")].append(run)
    summary = {}
    for name, group in sorted(by_topology.items()):
        times = [r["kill_to_completion"] for r in group
                 if r.get("kill_to_completion") is not None]
        worst = max(group, key=lambda r: r.get("kill_to_completion") or 0)
        summary[name] = {
            "runs": len(group),
            "killed": sum(1 for r in group if r.get("killed")),
            "seeds": sorted({r.get("seed") for r in group
                             if r.get("seed") is not None}),
            "kill_points_by_operation": dict(sorted(collections.Counter(
                operation(r["point"]) for r in group).items())),
            "kill_points_by_method": dict(sorted(collections.Counter(
                scenario(r["point"]) for r in group).items())),
            "kill_to_completion_worst": max(times) if times else None,
            "kill_to_completion_worst_point": worst["point"]
            if times else None,
            "kill_to_completion_median": statistics.median(times)
            if times else None,
            "watchdog_restarted": sum(1 for r in group
                                      if r.get("attempts")),
            "watchdog_reasons": dict(collections.Counter(
                _reason(why) for r in group
                for why in r.get("watchdog_restarts_why", [])).most_common()),
            "failed_server_starts": sum(len(r.get("failed_starts", []))
                                        for r in group),
            "double_evacuations": sum(r.get("double_evacuations", 0)
                                      for r in group),
            "false_failures": sum(r.get("false_failures", 0)
                                  for r in group),
            "left_by_replaced_runs": dict(collections.Counter(
                _kind(what) for r in group
                for earlier in r.get("earlier_runs", [])
                for what, count in earlier.get("left", {}).items()
                for _ in range(count)).most_common(10)),
            "runs_with_violations": sum(1 for r in group
                                        if r.get("violations")),
            "violations": [
                {"point": r["point"], "violations": r["violations"]}
                for r in group if r.get("violations")],
            "not_killed": [r["point"] for r in group
                           if not r.get("killed")],
        }
    return summary


def render(summary):
    lines = []
    for name, s in summary.items():
        lines.append(f"{name}: {s['runs']} runs ({s['killed']} killed), "
                     f"seed(s) {', '.join(map(str, s['seeds'])) or '-'}")
        lines.append("  kill points by operation: " + ", ".join(
            f"{k} {v}" for k, v in s["kill_points_by_operation"].items()))
        lines.append("  by recovery method: " + ", ".join(
            f"{k} {v}" for k, v in s["kill_points_by_method"].items()))
        lines.append(f"  kill -> completion: worst "
                     f"{s['kill_to_completion_worst']} s "
                     f"({s['kill_to_completion_worst_point']}), median "
                     f"{s['kill_to_completion_median']} s")
        lines.append(f"  watchdog restarted: {s['watchdog_restarted']}; "
                     f"double evacuations (first failed): "
                     f"{s['double_evacuations']}")
        if s["watchdog_reasons"]:
            lines.append("  why the watchdog restarted: " + "; ".join(
                f"{k} x{v}" for k, v in s["watchdog_reasons"].items()))
        if s["failed_server_starts"]:
            lines.append(f"  server restarts that failed (started again): "
                         f"{s['failed_server_starts']}")
        lines.append(f"  VMs a replaced run reported failed although "
                     f"they moved: {s['false_failures']}")
        if s["left_by_replaced_runs"]:
            lines.append("  left by the runs the watchdog replaced: " +
                         "; ".join(f"{k} x{v}" for k, v in
                                   s["left_by_replaced_runs"].items()))
        lines.append(f"  runs with violations: "
                     f"{s['runs_with_violations']}")
        for v in s["violations"]:
            lines.append(f"    {v['point']}: {'; '.join(v['violations'])}")
        if s["not_killed"]:
            lines.append("  kill point never reached: "
                         + ", ".join(s["not_killed"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", help="the CHAOS_REPORT file (JSONL)")
    parser.add_argument("--json", action="store_true",
                        help="the summary as JSON")
    args = parser.parse_args(argv)
    summary = summarize(load(args.report))
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 1 if any(s["runs_with_violations"] or s["not_killed"]
                    for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
