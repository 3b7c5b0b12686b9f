"""The bench's laboratory: one embedded Mistral (a child process, stopped
by its PID) whose actions read the current simulated cloud from a
clouds.yaml, and a fresh simulated cloud per trial.

A fresh cloud per trial gives every trial the same host and VMs (server
ids are derived from the names); the actions re-read clouds.yaml on every
call and cache their session per credentials, so a new cloud on a new
port gets a new session (one Keystone token, one microversion
negotiation), as after an executor restart.
"""

import os
import shutil
import tempfile
import time
import uuid

import yaml

from instance_ha import mistral_client
from instance_ha import server_process
from instance_ha.simcloud import server as simcloud_server
from instance_ha.simcloud import topology as simcloud_topology

HA = {"HA_Enabled": "True"}
# The spare hosts take every evacuated VM: room for thousands of m1.small.
SPARE_HOST = {"vcpus": 4096, "memory_mb": 64 * 1024 * 1024,
              "disk_gb": 1024 * 1024}
SERVER_NAMESPACE = uuid.UUID("8c1f3e52-2f0a-4d59-9a33-0c6f1f7c9b10")


def server_id(name):
    """A stable id, so that every trial has the very same VMs."""
    return str(uuid.uuid5(SERVER_NAMESPACE, name))


def topology(failed_hosts, vms_per_host, evacuation_time, spares=3):
    """Hosts compute1..H with V active, HA_Enabled VMs each (the ones that
    fail) and ``spares`` empty hosts with room for all of them."""
    hosts = []
    for h in range(1, failed_hosts + 1):
        name = f"compute{h}"
        hosts.append({"name": name, "servers": [
            {"name": f"{name}-vm{i}", "id": server_id(f"{name}-vm{i}"),
             "metadata": dict(HA)}
            for i in range(1, vms_per_host + 1)]})
    for s in range(1, spares + 1):
        hosts.append({"name": f"spare{s}", **SPARE_HOST})
    return {
        "settings": {"evacuation_time": evacuation_time, "power_time": 0.2},
        "flavors": [{"name": "m1.small", "id": "1", "vcpus": 1,
                     "ram": 2048, "disk": 20}],
        "images": [{"name": "cirros", "id": server_id("image-cirros"),
                    "properties": {"evacuable": "true"}}],
        "hosts": hosts,
    }


def start_cloud(config):
    return simcloud_server.SimCloud(simcloud_topology.build(config)).start()


def loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class Lab:
    """The embedded Mistral for a whole bench run."""

    def __init__(self, workdir=None, keep=False, mistral_config=None):
        self.owned = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="instance-ha-bench-")
        self.keep = keep
        self.clouds_yaml = os.path.join(self.workdir, "clouds.yaml")
        self._write_clouds({"clouds": {}})
        # An operator's Mistral (oslo.config) file, read by the embedded
        # server after its own settings (instance-ha server --config).
        self.mistral_config = mistral_config
        extra = (["--config", os.path.abspath(mistral_config)]
                 if mistral_config else [])
        self.server = server_process.ServerProcess(
            self.workdir, extra_args=extra, env={"OS_CLOUD": "simcloud",
                               "OS_CLIENT_CONFIG_FILE": self.clouds_yaml})
        self.client = None
        self.startup_seconds = None
        self.peak_reset = False

    # -- life cycle ------------------------------------------------------

    def start(self):
        started = time.monotonic()
        self.server.start(timeout=300)
        self.startup_seconds = round(time.monotonic() - started, 2)
        self.client = mistral_client.connect(mistral_url=self.server.url,
                                             timeout=60)
        return self

    def stop(self):
        self.server.stop(timeout=30)
        self.server.kill()
        if self.owned and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- the cloud the actions talk to ----------------------------------

    def use_cloud(self, sim):
        self._write_clouds(sim.clouds())

    def _write_clouds(self, content):
        tmp = self.clouds_yaml + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(content, f)
        os.replace(tmp, self.clouds_yaml)

    # -- what the server process costs ----------------------------------

    @property
    def pid(self):
        return self.server.pid

    def status_kib(self, field):
        """VmHWM, VmRSS ... of the server process, in KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def reset_peak(self):
        """Reset VmHWM to the current RSS (Linux >= 4.0, needs the right to
        write /proc/PID/clear_refs), so that the peak is this trial's."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            self.peak_reset = True
        except OSError:
            self.peak_reset = False
        return self.peak_reset

    def cpu_seconds(self):
        """user + system CPU time of the server process, all threads."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def db_bytes(self):
        total = 0
        for suffix in ("", "-wal", "-journal", "-shm"):
            try:
                total += os.path.getsize(self.server.db + suffix)
            except OSError:
                pass
        return total

    def snapshot(self):
        return {"cpu": self.cpu_seconds(), "db": self.db_bytes(),
                "load": loadavg()}
