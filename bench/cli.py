"""``python -m bench [--quick | --all | --scale | --order] [--only TEXT]
[--repeats N] [--name NAME] [--no-masakari] [--worktree]
[--distributed]``: run a set,
print the tables, write the JSON to
bench/results/<UTC date-time>-<name>.json.

instance-ha is imported only after the code to measure is chosen
(bench/source.py)."""

import argparse
import copy
import sys
import time

from bench import source as source_module


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="instance-ha recovery benchmarks against the "
                    "simulated cloud (and Masakari's engine side by side)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", dest="set", action="store_const",
                       const="quick", help="smoke run, 1-2 minutes")
    which.add_argument("--all", dest="set", action="store_const",
                       const="all", help="every combination (hours)")
    which.add_argument("--scale", dest="set", action="store_const",
                       const="scale", help="the performance goals with "
                       "Masakari side by side (about 20 minutes)")
    which.add_argument("--order", dest="set", action="store_const",
                       const="order", help="what restart groups and the "
                       "capacity estimate cost: one host of 100 VMs, "
                       "C=20 L=2, no groups / 2x50 / 4x25, and without "
                       "the estimate (about 5 minutes)")
    parser.set_defaults(set="full")
    parser.add_argument("--only", action="append", default=[],
                        help="run only scenarios whose label contains "
                             "this text (repeatable), e.g. 'N=10 ' or "
                             "rack or side")
    parser.add_argument("--repeats", type=int,
                        help="runs per scenario (overrides the set's)")
    parser.add_argument("--name", help="results file name (default: the "
                                       "set's name)")
    parser.add_argument("--masakari-default-repeats", type=int,
                        help="runs of Masakari at its defaults (180 s "
                             "sleep each) in the side-by-side")
    parser.add_argument("--no-masakari", action="store_true",
                        help="skip the side-by-side with Masakari")
    parser.add_argument("--worktree", action="store_true",
                        help="measure the work tree as it is (default: a "
                             "snapshot of the committed HEAD)")
    parser.add_argument("--revision", default="HEAD",
                        help="the commit whose snapshot is measured "
                             "(default HEAD; pins several runs to one "
                             "commit while others commit)")
    parser.add_argument("--mistral-config", metavar="FILE",
                        help="extra Mistral (oslo.config) file given to "
                             "the embedded server (instance-ha server "
                             "--config), read after its own settings "
                             "(--distributed: a further --config-file of "
                             "every mistral-server)")
    parser.add_argument("--distributed", action="store_true",
                        help="run instance-ha on stock distributed Mistral "
                             "(MariaDB + RabbitMQ on 127.0.0.1, two "
                             "engine+executor processes and one API, as "
                             "the chaos tier runs it) instead of the "
                             "embedded server")
    parser.add_argument("--list", action="store_true",
                        help="print the scenarios of the set and exit")
    return parser.parse_args(argv)


def selected(args):
    from bench import scenarios

    chosen = []
    for spec in copy.deepcopy(scenarios.SETS[args.set]["scenarios"]):
        name = scenarios.label(spec)
        if args.only and not any(text in name + " " for text in args.only):
            continue
        if args.no_masakari and spec["kind"] == "side_by_side":
            continue
        if args.repeats:
            spec["repeats"] = args.repeats
        if spec["kind"] == "side_by_side":
            if args.masakari_default_repeats is not None:
                spec["masakari_default_repeats"] = (
                    args.masakari_default_repeats)
            spec["masakari_default_repeats"] = min(
                spec["masakari_default_repeats"], spec["repeats"])
        chosen.append(spec)
    return chosen


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    return source_module.run_measured(args, _main)


def _mistral_config(path):
    """The operator file given to the server, recorded with its text."""
    if not path:
        return None
    with open(path) as f:
        return {"path": path, "text": f.read()}


def _main(args, source):
    from bench import lab as lab_module
    from bench import masakari_peer
    from bench import report
    from bench import scenarios

    specs = selected(args)
    if args.list:
        for spec in specs:
            print(f"{scenarios.label(spec)}  x{spec['repeats']}")
        return 0
    if not specs:
        print("no scenario selected", file=sys.stderr)
        return 2
    started = report.now()
    name = args.name or (f"{args.set}-distributed" if args.distributed
                         else args.set)
    path = report.path_for(name, started)
    document = {
        "set": args.set, "name": name, "argv": sys.argv[1:],
        "started": started.isoformat(timespec="seconds"),
        "machine": report.machine(), "code": source.describe(),
        "mistral_config": _mistral_config(args.mistral_config),
        "notes": {
            "dropped": scenarios.dropped_from(args.set),
            "poll_interval": "matrix and rack: poll_interval = L/4; "
                             "side-by-side: the workflow's defaults",
        },
        "scenarios": [],
    }
    peer = None
    if any(s["kind"] == "side_by_side" for s in specs):
        peer = masakari_peer.MasakariPeer()
        peer.ensure()
    clock = time.monotonic()
    if args.distributed:
        lab = lab_module.DistributedLab(mistral_config=args.mistral_config)
        what = "distributed Mistral (MariaDB, RabbitMQ, 2 engine+executor)"
    else:
        lab = lab_module.Lab(mistral_config=args.mistral_config)
        what = "the embedded Mistral"
    try:
        print(f"starting {what} in {lab.workdir} ...", flush=True)
        lab.start()
        document["mistral_startup_s"] = lab.startup_seconds
        document["mistral_pid"] = lab.pid
        document["topology"] = lab.topology()
        print(f"ready in {lab.startup_seconds} s (pid {lab.pid})",
              flush=True)
        for spec in specs:
            label = scenarios.label(spec)
            print(f"{label} x{spec['repeats']}", flush=True)
            section_started = time.monotonic()
            result = scenarios.run(spec, lab, peer,
                                   lambda text: print(text, flush=True))
            result["label"] = label
            result["seconds"] = round(time.monotonic() - section_started, 1)
            document["scenarios"].append(result)
            document["duration_s"] = round(time.monotonic() - clock, 1)
            report.write(path, document)
    finally:
        lab.stop()
    document["finished"] = report.now().isoformat(timespec="seconds")
    document["duration_s"] = round(time.monotonic() - clock, 1)
    report.write(path, document)
    print()
    print(report.render(report.recovery_table(document["scenarios"])))
    print()
    print(report.render(report.side_by_side_table(document["scenarios"])))
    print()
    print(report.render(report.order_table(document["scenarios"])))
    print()
    print(f"{len(specs)} scenarios in {document['duration_s']} s; "
          f"results: {path}")
    return 0
