"""The bench's laboratory: one embedded Mistral (a child process, stopped
by its PID) whose actions read the current simulated cloud from a
clouds.yaml, and a fresh simulated cloud per trial.  ``DistributedLab``
is the same for stock distributed Mistral (bench/distributed.py: MariaDB,
RabbitMQ, two engine+executor processes, one API).

A fresh cloud per trial gives every trial the same host and VMs (server
ids are derived from the names); the actions re-read clouds.yaml on every
call and cache their session per credentials, so a new cloud on a new
port gets a new session (one Keystone token, one microversion
negotiation), as after an executor restart.
"""

import os
import re
import shutil
import tempfile
import time
import uuid

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


def write_clouds(path, content):
    """clouds.yaml, replaced atomically (the actions re-read it on every
    call)."""
    os.replace(server_process.write_clouds_yaml(path + ".tmp", content),
               path)


def process_status_kib(pid, field):
    """VmHWM, VmRSS ... of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_process_peak(pid):
    """Reset VmHWM to the current RSS (Linux >= 4.0, needs the right to
    write /proc/PID/clear_refs); False when it could not."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def process_cpu_seconds(pid):
    """user + system CPU time of a process, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _pids_named(comm):
    """PIDs whose command name is ``comm`` (for the shared daemons)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == comm:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _cpu_of(pids):
    total = 0.0
    for pid in pids:
        try:
            total += process_cpu_seconds(pid)
        except OSError:
            pass
    return total


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
        write_clouds(self.clouds_yaml, content)

    # -- what the server process costs ----------------------------------

    @property
    def pid(self):
        return self.server.pid

    def topology(self):
        return {"kind": "embedded",
                "processes": "one (instance-ha server: API, engine, "
                             "executor, notifier in threads)",
                "database": "SQLite", "transport": "fake:/ (in memory)",
                "pid": self.pid}

    def status_kib(self, field):
        """VmHWM, VmRSS ... of the server process, in KiB."""
        return process_status_kib(self.pid, field)

    def reset_peak(self):
        """Reset VmHWM to the current RSS, so that the peak is this
        trial's."""
        self.peak_reset = reset_process_peak(self.pid)
        return self.peak_reset

    def cpu_seconds(self):
        """user + system CPU time of the server process, all threads."""
        return process_cpu_seconds(self.pid)

    def details(self, before, after):
        """Fields of the trial's result beyond the common ones."""
        return {}

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


# The shared daemons of the distributed topology (not the bench's: other
# users of them count too), by command name.
SERVICE_COMMANDS = {"mariadb": "mariadbd", "rabbitmq": "beam.smp"}


class DistributedLab:
    """Stock distributed Mistral for a whole bench run, as the chaos tier
    runs it (bench/distributed.py): MariaDB, RabbitMQ, two
    ``mistral-server --server engine,executor`` and one ``--server api``,
    each forking its workers.  The actions read the simulated cloud from
    the deployment's clouds.yaml, rewritten for every trial as the
    embedded Lab's.

    Mistral CPU is the sum over every process of the deployment (the
    three servers and their forked workers); peak RSS is the sum of every
    process's own peak (VmHWM, each reset before the trial): an upper
    bound of the deployment's peak (the peaks need not coincide, and
    pages a worker shares with its parent count in both).  The largest
    single process's peak and each server's are in the JSON too."""

    def __init__(self, mistral_config=None, keep=False):
        from bench import distributed

        self._distributed = distributed
        distributed.ensure_services()
        self.mistral_config = mistral_config
        self.deployment = distributed.DistributedDeployment(
            name="bench", keep=keep,
            extra_config_files=[mistral_config] if mistral_config else [])
        self.workdir = self.deployment.workdir
        self.clouds_yaml = self.deployment.clouds_yaml
        self.client = None
        self.startup_seconds = None
        self.peak_reset = False
        self._peak_pids = {}

    # -- life cycle ------------------------------------------------------

    def start(self):
        started = time.monotonic()
        self.deployment.start()
        self.startup_seconds = round(time.monotonic() - started, 2)
        self.client = self.deployment.client()
        return self

    def stop(self):
        self.deployment.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- the cloud the actions talk to ----------------------------------

    def use_cloud(self, sim):
        write_clouds(self.clouds_yaml, sim.clouds())

    # -- what the deployment costs --------------------------------------

    @property
    def pid(self):
        """The API server's PID (every PID: ``processes()``)."""
        return self.deployment.api.pid

    def processes(self):
        """{server name: [its PID, its workers' PIDs]}."""
        return {p.name: p.pids() for p in self.deployment.processes()}

    def topology(self):
        with open(self.deployment.config_file) as f:
            conf = f.read()
        return {"kind": "distributed",
                "processes": "two mistral-server --server engine,executor "
                             "and one --server api, each forking its "
                             "workers",
                "database": "MariaDB (127.0.0.1:3306, a database of its "
                            "own)",
                "transport": "RabbitMQ (127.0.0.1:5672, a vhost of its "
                             "own, quorum queues)",
                "versions": self._distributed.versions(),
                "pids": self.processes(),
                "mistral_conf": re.sub(r"//[^@/]*@", "//***@", conf)}

    def status_kib(self, field):
        """The sum of ``field`` (VmHWM ...) over the processes, in KiB."""
        return sum(self._status_by_process(field).values())

    def _status_by_process(self, field):
        found = {}
        for name, pids in (self._peak_pids or self.processes()).items():
            found[name] = 0
            for pid in pids:
                try:
                    found[name] += process_status_kib(pid, field) or 0
                except OSError:
                    pass
        return found

    def _max_process_kib(self, field):
        largest = 0
        for pids in (self._peak_pids or self.processes()).values():
            for pid in pids:
                try:
                    largest = max(largest,
                                  process_status_kib(pid, field) or 0)
                except OSError:
                    pass
        return largest

    def reset_peak(self):
        self._peak_pids = self.processes()
        self.peak_reset = all(reset_process_peak(pid)
                              for pids in self._peak_pids.values()
                              for pid in pids)
        return self.peak_reset

    def snapshot(self):
        processes = self.processes()
        return {"cpu_by_process": {name: _cpu_of(pids)
                                   for name, pids in processes.items()},
                "cpu": sum(_cpu_of(pids) for pids in processes.values()),
                "pids": processes,
                "services_cpu": {
                    name: _cpu_of(_pids_named(comm))
                    for name, comm in SERVICE_COMMANDS.items()},
                "db": self.deployment.db_bytes(), "load": loadavg()}

    def details(self, before, after):
        """Per server CPU and peak, the daemons' CPU, PIDs that changed."""
        return {
            "mistral_cpu_by_process_s": {
                name: round(after["cpu_by_process"][name]
                            - before["cpu_by_process"].get(name, 0), 2)
                for name in after["cpu_by_process"]},
            "mistral_peak_rss_by_process_mib": {
                name: round(kib / 1024, 1) for name, kib in
                self._status_by_process("VmHWM").items()},
            "mistral_peak_rss_max_process_mib": round(
                self._max_process_kib("VmHWM") / 1024, 1),
            "mistral_peak_rss_is": "sum over the processes of each one's "
                                   "peak",
            "services_cpu_s": {
                name: round(after["services_cpu"][name]
                            - before["services_cpu"][name], 2)
                for name in after["services_cpu"]},
            "mistral_pids_changed": before["pids"] != after["pids"],
            "mistral_db_bytes_are": "MariaDB information_schema data + "
                                    "index length (InnoDB statistics)",
        }
