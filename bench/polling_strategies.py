"""How the per-VM workflow waits for an evacuation: measured both ways.

* ``in_action`` (shipped): one ``instance_ha.wait_for_server`` action polls
  Nova itself, bounded by its timeout; it holds an executor thread while
  it waits, and Mistral stores one action execution per VM.
* ``retry_loop``: the same action with ``timeout: 0`` checks once, and the
  task's ``retry: {continue-on: <% not task().result.done %>}`` repeats it
  every ``interval``; no thread is held between checks, but every check is
  a new action execution and a scheduler job in Mistral's database.

The variant workflows are derived from the shipped YAML, so the two runs
differ in the wait task only.  Run: ``python -m bench.polling_strategies
[--vms 200] [--concurrency 10] [--evacuation-time 0.5] [--interval 0.5]``.
"""

import argparse
import json
import os
import shutil
import sqlite3
import tempfile
import time

import yaml

from bench import trials
from instance_ha import mistral_client
from instance_ha import pack
from instance_ha import server_process
from instance_ha.simcloud import server as simcloud_server
from instance_ha.simcloud import topology as simcloud_topology

HOST_WF = "instance_ha.host_evacuate"
CHILD_WF = "instance_ha.instance_evacuate"
LOOP_HOST_WF = "bench.host_evacuate_retry_loop"
LOOP_CHILD_WF = "bench.instance_evacuate_retry_loop"


def retry_loop_workflows():
    """The shipped host and child workflows, with the child's wait turned
    into a retry loop of single checks."""
    texts = {wf.workflow: wf.text for wf in pack.workflow_files()}
    child = yaml.safe_load(texts[CHILD_WF])
    body = child.pop(CHILD_WF)
    wait = body["tasks"]["wait_until_moved"]
    wait["input"]["timeout"] = 0
    wait["retry"] = {
        "count": "<% int($.timeout / $.interval) %>",
        "delay": "<% $.interval %>",
        "continue-on": "<% not task().result.done %>",
    }
    child[LOOP_CHILD_WF] = body
    host = yaml.safe_load(texts[HOST_WF])
    host_body = host.pop(HOST_WF)
    host_body["tasks"]["evacuate_servers"]["workflow"] = LOOP_CHILD_WF
    host[LOOP_HOST_WF] = host_body
    return [yaml.safe_dump(child, sort_keys=False),
            yaml.safe_dump(host, sort_keys=False)]


def topology(vms, evacuation_time):
    spare = {"vcpus": 4096, "memory_mb": 64 * 1024 * 1024,
             "disk_gb": 1024 * 1024}
    return {"settings": {"evacuation_time": evacuation_time,
                         "power_time": 0.2},
            "hosts": [{"name": "compute1", "servers": [
                {"name": f"vm{i}"} for i in range(vms)]},
                      {"name": "spare1", **spare},
                      {"name": "spare2", **spare}]}


def measure(client, db, workflow, args, clouds_yaml):
    sim = simcloud_server.SimCloud(simcloud_topology.build(
        topology(args.vms, args.evacuation_time))).start()
    try:
        server_process.write_clouds_yaml(clouds_yaml, sim.clouds())
        sim.cloud.kill_host("compute1")
        size_before = os.path.getsize(db)
        actions_before = _count(db, "action_executions_v2")
        started = time.monotonic()
        execution = client.executions.create(
            workflow, workflow_input={
                "search_opts": {"host": "compute1"},
                "fencing": {"override": trials.BENCH_FENCING},
                "concurrency": args.concurrency,
                "poll_interval": args.interval})
        while execution.state in ("IDLE", "RUNNING"):
            time.sleep(0.5)
            execution = client.executions.get(execution.id)
        wall = time.monotonic() - started
        output = json.loads(execution.output or "{}")
        calls = sim.cloud.calls.calls()
        per_vm = [c for c in calls if c.server_id]
        return {
            "workflow": workflow, "state": execution.state,
            "state_info": (execution.state_info or "")[:300] or None,
            "moved": (output.get("counts") or {}).get("moved"),
            "wall_s": round(wall, 1),
            "ideal_s": round(-(-args.vms // args.concurrency)
                             * args.evacuation_time, 1),
            "nova_calls_per_vm": round(len(per_vm) / args.vms, 2),
            "action_executions": _count(db, "action_executions_v2")
            - actions_before,
            "db_growth_kb": round((os.path.getsize(db) - size_before)
                                  / 1024),
            "double_evacuations": sum(
                1 for n in sim.cloud.calls.accepted_evacuations().values()
                if n > 1),
        }
    finally:
        sim.stop()


def _count(db, table):
    with sqlite3.connect(db) as connection:
        query = f"SELECT count(*) FROM {table}"
        return connection.execute(query).fetchone()[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--evacuation-time", type=float, default=0.5)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="bench-polling-")
    clouds_yaml = server_process.write_clouds_yaml(
        os.path.join(workdir, "clouds.yaml"), {"clouds": {}})
    server = server_process.ServerProcess(
        workdir, env=server_process.cloud_env(clouds_yaml))
    try:
        server.start()
        client = mistral_client.connect(mistral_url=server.url)
        for text in retry_loop_workflows():
            client.workflows.create(text)
        results = [measure(client, server.db, workflow, args, clouds_yaml)
                   for workflow in (HOST_WF, LOOP_HOST_WF)]
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"parameters": vars(args), "results": results},
                     indent=2))


if __name__ == "__main__":
    main()
