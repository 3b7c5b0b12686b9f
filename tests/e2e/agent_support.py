"""The instance-ha agent on a live cluster: the simulated cloud, the
embedded Mistral and the cluster configuration for tests/e2e/test_agent_*.

The simulated cloud's hosts are named after the Pacemaker remote nodes
(rn1, rn2), so the workflow that the agent starts for a fenced node acts on
the Nova host of the same name.
"""

import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

from instance_ha import mistral_client
from instance_ha import server_process
from instance_ha.agent import command as agent_command
from instance_ha.hostmonitor import trigger

from .cluster import avoid_remotes

AGENT_PATH = "/usr/lib/ocf/resource.d/openstack/instance-ha"
ALERT_PATH = agent_command.DEFAULT_ALERT_PATH
RESOURCE = "iha"
HA = {"HA_Enabled": "True"}

# rn1's VMs: what a failed host typically holds.  rn2 has room for them.
RN1_SERVERS = [
    {"name": "web1", "vm_state": "active", "metadata": HA},
    {"name": "web2", "vm_state": "active", "metadata": HA},
    {"name": "web3", "vm_state": "active"},
    {"name": "batch1", "vm_state": "stopped", "power_state": 4},
]


def topology():
    return {"settings": {"evacuation_time": 0.3, "power_time": 0.1},
            "hosts": [
                {"name": "rn1", "servers": list(RN1_SERVERS)},
                {"name": "rn2", "servers": [
                    {"name": "rn2-vm1", "vm_state": "active"}]},
            ]}


class Stack:
    """Simulated cloud (in this process) + embedded Mistral (child
    process, stopped by PID)."""

    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="instance-ha-e2e-agent-")
        self.sim = None
        self.server = None
        self.client = None

    def start(self):
        import yaml

        from instance_ha.simcloud import server as simcloud_server
        from instance_ha.simcloud import topology as simcloud_topology

        self.sim = simcloud_server.SimCloud(
            simcloud_topology.build(topology())).start()
        clouds_yaml = os.path.join(self.workdir, "clouds.yaml")
        fd = os.open(clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(self.sim.clouds(), f)
        self.server = server_process.ServerProcess(
            self.workdir, env={"OS_CLOUD": "simcloud",
                               "OS_CLIENT_CONFIG_FILE": clouds_yaml})
        self.server.start()
        self.client = mistral_client.connect(mistral_url=self.server.url)
        return self

    def stop(self, keep=False):
        if self.server is not None:
            self.server.stop(timeout=20)
            self.server.kill()
        if self.sim is not None:
            self.sim.stop()
        if keep:
            print(f"Mistral logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def executions(self, host):
        """The host workflow's executions for HOST, oldest first."""
        prefix = f"{trigger.DESCRIPTION_PREFIX}{host} ("
        found = [e for e in self.client.executions.list(
            workflow_name=trigger.WORKFLOW, limit=1000)
            if (e.description or "").startswith(prefix)]
        return sorted(found, key=lambda e: e.created_at)

    def wait_executions(self, host, count, timeout):
        deadline = time.monotonic() + timeout
        while True:
            found = self.executions(host)
            if len(found) >= count:
                return found, time.time()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} executions for {host} after {timeout}s, "
                    f"expected {count}")
            time.sleep(0.2)

    def wait_finished(self, execution_id, timeout):
        deadline = time.monotonic() + timeout
        while True:
            execution = self.client.executions.get(execution_id)
            if execution.state in ("SUCCESS", "ERROR", "CANCELLED"):
                return execution, time.time()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"execution {execution_id} still {execution.state} "
                    f"after {timeout}s")
            time.sleep(0.2)


def agent_primitive(mistral_url, interval, extra=None):
    params = {"mistral_url": mistral_url, "computes": "rn*"}
    params.update(extra or {})
    pairs = "".join(
        f'<nvpair id="{RESOURCE}-{name}" name="{name}" value="{value}"/>'
        for name, value in params.items())
    return (
        f'<primitive id="{RESOURCE}" class="ocf" provider="openstack" '
        f'type="instance-ha"><instance_attributes id="{RESOURCE}-ia">'
        f'{pairs}</instance_attributes><operations>'
        f'<op id="{RESOURCE}-mon" name="monitor" interval="{interval}s" '
        f'timeout="60s"/></operations></primitive>')


ALERT = (
    '<alert id="iha-alert" path="' + ALERT_PATH + '">'
    '<select><select_fencing/></select>'
    '<recipient id="iha-alert-log" value="{scratch}/alerts.log"/>'
    '</alert>')


def cluster_kwargs(stack, interval, remotes=("rn1", "rn2"), alert=True,
                   agent_params=None):
    """LiveCluster arguments: the agent (installed as install-agent does,
    with this interpreter) and, optionally, the alert."""
    files = {AGENT_PATH: agent_command.agent_text(os.path.abspath(
        sys.executable))}
    alerts = []
    if alert:
        files[ALERT_PATH] = agent_command.packaged(agent_command.ALERT)
        alerts.append(ALERT)
    return dict(
        remotes=list(remotes), host_files=files,
        resources=[agent_primitive(stack.server.url, interval,
                                   agent_params)],
        constraints=avoid_remotes(RESOURCE, list(remotes)),
        alerts=alerts)


def agent_started(xml):
    from .cluster import resource_attrs

    rsc = resource_attrs(xml, RESOURCE) or {}
    return rsc.get("role") == "Started" and rsc.get("failed") == "false"


def handoff_record(node):
    """The CIB record of node (instance-ha-evacuation), or None."""
    proc = subprocess.run(
        ["crm_attribute", "--node", node, "--name", "instance-ha-evacuation",
         "--lifetime", "forever", "--query", "--quiet"],
        capture_output=True, text=True, timeout=15)
    value = proc.stdout.strip()
    return value or None


def agent_log(cluster):
    """The agent's lines in the cluster's pacemaker.log."""
    with open(cluster.pacemaker_log, errors="replace") as f:
        return [line for line in f if "instance-ha(" in line]


def parse_mistral_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
