"""The chaos report summarizer (tests/chaos/report.py) on a small
hand-written report."""

import json

import report


def _run(topology, point, kill_to_completion, **extra):
    run = {"topology": topology, "point": point, "killed": True,
           "attempts": 0, "kill_to_completion": kill_to_completion,
           "double_evacuations": 0, "violations": [], "seed": 7}
    run.update(extra)
    return run


def test_summary_per_topology(tmp_path):
    path = tmp_path / "chaos.jsonl"
    runs = [
        _run("embedded", "evacuate[200]#5+0.0s", 20.0),
        _run("embedded", "services.update#2+0.0s@reserved", 30.0,
             attempts=2, double_evacuations=1, false_failures=2,
             watchdog_restarts_why=["2 task(s) never started",
                                    "stalled for 101 s"],
             earlier_runs=[{"attempt": 0, "state": "ERROR", "left": {
                 "instance_evacuate/record_moved ERROR: lost": 2}}]),
        _run("embedded", "lock#3+0.0s", 40.0, attempts=1,
             watchdog_restarts_why=["1 task(s) never started"],
             violations=["vm01: left locked ('x')"]),
        _run("distributed", "unlock#1+0.4s@reserved-refused", 90.5),
        _run("embedded", "lock#2+0.0s", 35.0,
             failed_starts=["server exited with 1"]),
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in runs)
                    + "not json\n")
    summary = report.summarize(report.load(str(path)))
    embedded = summary["embedded"]
    assert embedded["runs"] == 4
    assert embedded["seeds"] == [7]
    assert embedded["kill_points_by_operation"] == {
        "evacuate": 1, "lock": 2, "services.update": 1}
    assert embedded["kill_points_by_method"] == {"auto": 3, "reserved": 1}
    assert embedded["kill_to_completion_worst"] == 40.0
    assert embedded["kill_to_completion_worst_point"] == "lock#3+0.0s"
    assert embedded["kill_to_completion_median"] == 32.5
    assert embedded["failed_server_starts"] == 1
    assert embedded["watchdog_restarted"] == 2
    assert embedded["watchdog_reasons"] == {
        "task(s) never started": 2, "stalled (watchdog_timeout)": 1}
    assert embedded["double_evacuations"] == 1
    assert embedded["false_failures"] == 2
    assert embedded["left_by_replaced_runs"] == {
        "instance_evacuate/record_moved ERROR: lost": 2}
    assert embedded["runs_with_violations"] == 1
    assert embedded["violations"][0]["point"] == "lock#3+0.0s"
    assert summary["distributed"]["kill_points_by_method"] == {
        "reserved-refused": 1}
    assert report.main([str(path)]) == 1      # a violation: exit 1
