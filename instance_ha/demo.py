"""``instance-ha demo``: one host failure, recovered by the real workflow.

Starts a simulated cloud (Keystone + Nova over HTTP on 127.0.0.1) and the
embedded Mistral, "kills" compute1 as a fenced host would be, runs
``instance_ha.host_evacuate`` for it, follows it live, prints the per-VM
table and the Nova calls it took, and stops everything it started.
"""

import collections
import os
import shutil
import tempfile
import time

import click

from instance_ha import mistral_client
from instance_ha import recovery_commands
from instance_ha import server_process

FAILED_HOST = "compute1"
HOSTS = ("compute1", "compute2", "compute3")
HA = {"HA_Enabled": "True"}

# compute1's VMs: one of each state the seed table names, and more actives.
FAILED_HOST_SERVERS = (
    [{"name": f"web{i}", "vm_state": "active", "metadata": HA}
     for i in range(1, 5)]
    + [{"name": "batch1", "vm_state": "stopped", "power_state": 4},
       {"name": "batch2", "vm_state": "stopped", "power_state": 4},
       {"name": "db-resized", "vm_state": "resized", "power_state": 1,
        "metadata": HA},
       {"name": "idle-resized", "vm_state": "resized", "power_state": 4},
       {"name": "broken", "vm_state": "error", "power_state": 0},
       {"name": "cache1", "vm_state": "active", "metadata": HA}])


def topology(evacuation_time):
    hosts = [{"name": FAILED_HOST, "servers": list(FAILED_HOST_SERVERS)}]
    for host in HOSTS[1:]:
        hosts.append({"name": host, "servers": [
            {"name": f"{host}-vm{i}", "vm_state": "active"}
            for i in range(1, 11)]})
    return {"settings": {"evacuation_time": evacuation_time,
                         "power_time": 0.2},
            "hosts": hosts}


# No Pacemaker runs in the demo, so its run says why it may evacuate; on a
# cluster the workflow asks Pacemaker instead.
DEMO_FENCING = "demo: a simulated host failure, no Pacemaker to ask"


def run(echo=click.echo, keep=False, evacuation_time=1.0):
    from instance_ha.simcloud import server as simcloud_server
    from instance_ha.simcloud import topology as simcloud_topology

    workdir = tempfile.mkdtemp(prefix="instance-ha-demo-")
    sim = simcloud_server.SimCloud(simcloud_topology.build(
        topology(evacuation_time))).start()
    clouds_yaml = server_process.write_clouds_yaml(
        os.path.join(workdir, "clouds.yaml"), sim.clouds())
    server = server_process.ServerProcess(
        workdir, env=server_process.cloud_env(clouds_yaml))
    total = sum(len(sim.cloud.servers_on(h)) for h in HOSTS)
    echo(f"simulated cloud at {sim.url}: {len(HOSTS)} hosts, {total} VMs")
    started = time.monotonic()
    try:
        echo(f"starting the embedded Mistral at {server.url} ...")
        server.start()
        client = mistral_client.connect(mistral_url=server.url)
        echo(f"{FAILED_HOST} is lost.  Its VMs:")
        for s in sim.cloud.servers_on(FAILED_HOST):
            echo(f"  {s.name:<13} {s.vm_state}")
        sim.cloud.kill_host(FAILED_HOST)
        execution = client.executions.create(
            "instance_ha.host_evacuate",
            workflow_input={"search_opts": {"host": FAILED_HOST},
                            "fencing": {"override": DEMO_FENCING},
                            "on_shared_storage": True},
            description=f"demo: {FAILED_HOST} lost")
        echo(f"recovery {execution.id} started (fencing: {DEMO_FENCING})")
        recovery = recovery_commands.follow(client, execution.id,
                                            interval=0.5)
        recovery_commands.print_table(recovery)
        echo(_calls_per_server(sim))
        echo(f"demo finished in {time.monotonic() - started:.1f} s")
        return recovery
    finally:
        server.stop()
        sim.stop()
        if keep:
            echo(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _calls_per_server(sim):
    calls = sim.cloud.calls.calls()
    per_server = collections.Counter(
        call.server_id for call in calls if call.server_id)
    if not per_server:
        return "no per-server Nova calls recorded"
    counts = sorted(per_server.values())
    return (f"Nova calls per VM: min {counts[0]}, median "
            f"{counts[len(counts) // 2]}, max {counts[-1]} "
            f"(all calls: {len(calls)})")
