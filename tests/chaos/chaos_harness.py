"""Kill Mistral in the middle of a host evacuation, let the product
finish it, and check what the simulated cloud saw.

One run: a fresh simulated cloud (the failed host with ``vms`` VMs, some
stopped, and three empty hosts), the host killed (its service down), the
recovery started as the OCF agent starts it (``handoff.start``: the
failure's deterministic execution id), Mistral killed with SIGKILL when
the cloud's call log reaches the run's kill point, Mistral restarted
(embedded: the same SQLite database; distributed: the surviving engine
carries on and the dead one is left dead), and then the agent's own
watchdog (``instance_ha.agent.watchdog.Watchdog``, imported, not copied)
driven once a second, as the agent's monitor drives it, until the
failure's outcome is final.  The invariants are then read from the call
log and the cloud's state (``check_invariants``).

A kill point is an operation of the cloud's call log and an ordinal: the
process dies right after Nova applied the ``nth`` such call and before its
answer left (``delay`` 0), or ``delay`` seconds later.
"""

import dataclasses
import datetime
import json
import logging
import os
import random
import threading
import time

import yaml

from instance_ha.agent import config as agent_config
from instance_ha.agent import handoff
from instance_ha.agent import watchdog
from instance_ha.hostmonitor import trigger
from instance_ha.simcloud import testing

LOG = logging.getLogger("chaos")

FAILED_HOST = "compute1"
SPARE_HOSTS = ("compute2", "compute3", "compute4")
RESERVED_HOST = "spare1"
RESERVED_REASON = "instance-ha: reserved"
# Per-VM waits are seconds here; production's 900 s is above its 600 s
# per-VM timeout.  100 s is above what a restart needs to resume
# (measured: the embedded server is ready 20-50 s after its start, and
# its heartbeat checker fails an action lost with the dead process 60-90 s
# after that start), so the watchdog steps in only for a real stall.
WATCHDOG_TIMEOUT = 100
MAX_ATTEMPTS = 3
# Finished, or the watchdog gave up: the longest a run may take after
# the kill (restart, watchdog stalls included).
COMPLETION_LIMIT = 420
# Migration statuses after which a second evacuation is legitimate.
FAILED_MIGRATIONS = ("failed", "error")


@dataclasses.dataclass(frozen=True)
class KillPoint:
    operation: str      # an operation of the simulated cloud's call log
    nth: int            # the nth such call (1-based)
    delay: float = 0.0  # seconds after that call was applied
    status: int = None  # only calls answered with this status count

    @property
    def name(self):
        status = f"[{self.status}]" if self.status else ""
        return f"{self.operation}{status}#{self.nth}+{self.delay:.1f}s"


# The CI sample: each phase of a recovery once.
FIXED_KILL_POINTS = [
    # the service is forced down, the answer lost
    KillPoint("services.update", 1),
    # listing: Nova answered the host's servers, the answer lost
    KillPoint("servers.detail", 1),
    # the with-items is starting: locks set, no evacuation yet
    KillPoint("lock", 4),
    # evacuations issued but not verified: Nova accepted the 7th, the
    # action never learnt it
    KillPoint("evacuate", 7, status=200),
    # during the waits: evacuations rebuilding, actions polling
    KillPoint("evacuate", 12, delay=0.7, status=200),
    # the first VMs unlocked, others still waiting
    KillPoint("unlock", 3),
]

RANDOM_OPERATIONS = ("services.update", "servers.detail", "lock",
                     "evacuate", "migrations.list", "servers.show",
                     "unlock")


def runs_requested(default):
    """CHAOS_RUNS=N: N randomized kill points instead of the fixed
    sample."""
    value = os.environ.get("CHAOS_RUNS", "").strip()
    return int(value) if value else default


def random_kill_points(count, vms, seed):
    """``count`` kill points spread over every phase (reproducible)."""
    rng = random.Random(seed)
    points = []
    for _ in range(count):
        operation = rng.choice(RANDOM_OPERATIONS)
        if operation in ("services.update", "servers.detail"):
            nth = 1
        elif operation in ("lock", "evacuate", "unlock"):
            nth = rng.randint(1, vms)
        else:  # polled many times per VM
            nth = rng.randint(1, vms * 3)
        delay = rng.choice((0.0, 0.0, round(rng.uniform(0.1, 2.0), 1)))
        points.append(KillPoint(
            operation, nth, delay,
            status=200 if operation == "evacuate" else None))
    return points


def topology(vms, evacuation_time=1.0):
    """The failed host with ``vms`` VMs (every 4th stopped), three empty
    computes and one reserved host that no run may touch."""
    servers = [{"name": f"vm{i:02d}",
                "vm_state": "stopped" if i % 4 == 3 else "active"}
               for i in range(vms)]
    return {
        "settings": {"evacuation_time": evacuation_time,
                     "power_time": 0.05},
        "flavors": [{"name": "m1.small", "id": "1", "vcpus": 1,
                     "ram": 2048, "disk": 20}],
        "hosts": [{"name": FAILED_HOST, "servers": servers}]
        + [{"name": name} for name in SPARE_HOSTS]
        + [{"name": RESERVED_HOST, "disabled": True,
            "disabled_reason": RESERVED_REASON}],
    }


class Killer:
    """Watches the cloud's call log; calls ``kill()`` (SIGKILL to the
    victim's PIDs, which it returns) at the point."""

    def __init__(self, cloud, point, kill):
        self.point = point
        self.kill = kill
        self.seen = 0
        self.killed_at = None       # time.monotonic() of the kill
        self.killed_pid = None
        self.fired = threading.Event()
        self._lock = threading.Lock()
        self._record = cloud.calls.record
        cloud.calls.record = self._on_call

    def _on_call(self, call):
        self._record(call)
        if call.operation != self.point.operation:
            return
        if self.point.status is not None and \
                call.status != self.point.status:
            return
        with self._lock:
            self.seen += 1
            if self.seen != self.point.nth:
                return
        if self.point.delay:
            threading.Timer(self.point.delay, self._kill).start()
        else:
            self._kill()

    def _kill(self):
        try:
            pid = self.kill()
        except ProcessLookupError:
            return
        self.killed_pid = pid
        self.killed_at = time.monotonic()
        self.fired.set()


@dataclasses.dataclass
class RunResult:
    point: str
    killed: bool = False
    attempts: int = 0          # runs the watchdog started after the first
    outcome: str = None        # the watched failure's final outcome
    kill_to_completion: float = None
    total: float = None
    vms: int = 0
    double_evacuations: int = 0          # allowed: the first one failed
    violations: list = dataclasses.field(default_factory=list)
    final_state: str = None
    final_counts: dict = None

    def as_dict(self):
        return dataclasses.asdict(self)


def write_clouds_yaml(path, sim):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(sim.clouds(), f)


def start_cloud(vms, clouds_yaml):
    sim = testing.start(topology(vms))
    write_clouds_yaml(clouds_yaml, sim)
    return sim


def run_one(sim, point, deployment, fenced_at=None, log=None):
    """One kill-and-recover run.  ``deployment`` knows how to reach
    Mistral (``client()``), how to kill its victim (``kill_victim()``) and
    what to do after the kill (``after_kill()``: restart it, or
    nothing)."""
    log = log or LOG
    fenced_at = fenced_at or datetime.datetime.now(datetime.timezone.utc)
    result = RunResult(point=point.name,
                       vms=len(sim.cloud.servers_on(FAILED_HOST)))
    expected = {s.id: s.vm_state for s in sim.cloud.servers_on(FAILED_HOST)}
    killer = Killer(sim.cloud, point, deployment.kill_victim)
    sim.cloud.kill_host(FAILED_HOST)
    started = time.monotonic()
    conf = agent_config.AgentConfig(
        mistral_url="http://127.0.0.1/v2", watchdog_timeout=WATCHDOG_TIMEOUT,
        max_attempts=MAX_ATTEMPTS)
    execution = handoff.start(deployment.client(), FAILED_HOST, fenced_at,
                              0, conf.workflow, True, "chaos")
    entry = watchdog.new_entry(
        FAILED_HOST, fenced_at, trigger.failure_key(FAILED_HOST, fenced_at),
        0, execution.id, _now())
    # Until the kill, the agent watches as usual.
    dog = watchdog.Watchdog(deployment.client(), conf, log, "chaos")
    while not killer.fired.wait(1.0):
        if time.monotonic() - started > COMPLETION_LIMIT:
            break
        _check(dog, entry, log)
        if watchdog.finished(entry):
            break
    result.killed = killer.fired.is_set()
    if result.killed:
        log.warning("chaos %s: killed PID %s", point.name, killer.killed_pid)
        deployment.after_kill()
        dog = watchdog.Watchdog(deployment.client(), conf, log, "chaos")
    reference = killer.killed_at or started
    while not watchdog.finished(entry):
        if time.monotonic() - reference > COMPLETION_LIMIT:
            break
        _check(dog, entry, log)
        if not watchdog.finished(entry):
            time.sleep(1.0)
    finished_at = time.monotonic()
    result.outcome = entry.get("outcome")
    result.attempts = entry["attempt"]
    result.total = round(finished_at - started, 1)
    if result.killed:
        result.kill_to_completion = round(finished_at - killer.killed_at, 1)
    # Actions still in flight finish their Nova calls before we read.
    time.sleep(1.0)
    check_invariants(sim, expected, deployment.client(), entry, result)
    return result


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _check(dog, entry, log):
    """One monitor pass of the watchdog; Mistral unreachable (restarting)
    is what the agent logs and retries at the next monitor."""
    try:
        dog.check(entry)
    except Exception as exc:  # noqa: BLE001 - the agent's monitor too
        log.info("watchdog: Mistral not answering (%s); next pass",
                 type(exc).__name__)


def check_invariants(sim, expected, client, entry, result):
    cloud = sim.cloud
    violations = result.violations
    with cloud.lock:
        servers = {sid: cloud.servers[sid] for sid in expected}
        migrations = [dataclasses.replace(m) for m in cloud.migrations]
        reserved = cloud.hosts[RESERVED_HOST].service
        reserved = (reserved.disabled, reserved.disabled_reason,
                    [s.id for s in cloud.servers_on(RESERVED_HOST)])
    # 1. every VM runs elsewhere, in its state, and is not locked.
    for sid, before in expected.items():
        server = servers[sid]
        if server.host in (FAILED_HOST, None) or \
                server.host not in SPARE_HOSTS:
            violations.append(f"{server.name}: on {server.host}")
        if server.vm_state != before or server.task_state is not None:
            violations.append(f"{server.name}: {server.vm_state}/"
                              f"{server.task_state}, expected {before}")
        if server.locked:
            violations.append(f"{server.name}: left locked "
                              f"({server.locked_reason!r})")
    # 2. one accepted evacuation per VM, unless the earlier one failed.
    accepted = cloud.calls.accepted_evacuations()
    for sid in expected:
        count = accepted.get(sid, 0)
        if count == 0 and servers[sid].host != FAILED_HOST:
            violations.append(f"{servers[sid].name}: moved without an "
                              "accepted evacuation")
        if count <= 1:
            continue
        mine = sorted((m for m in migrations if m.instance_uuid == sid),
                      key=lambda m: m.id)
        earlier = mine[:-1]
        if len(mine) == count and all(
                m.status in FAILED_MIGRATIONS for m in earlier):
            result.double_evacuations += 1
        else:
            violations.append(
                f"{servers[sid].name}: {count} accepted evacuations, "
                "migrations " + ", ".join(m.status for m in mine))
    # 3. the reserved host: nobody claimed it halfway.
    if reserved != (True, RESERVED_REASON, []):
        violations.append(f"reserved host {RESERVED_HOST} changed: "
                          f"{reserved}")
    # 4. a final outcome with the per-VM report; nothing left RUNNING.
    if entry.get("outcome") != "SUCCESS":
        violations.append(f"recovery outcome {entry.get('outcome')} after "
                          f"{entry['attempt'] + 1} run(s)")
    final = client.executions.get(entry["execution_id"])
    result.final_state = final.state
    try:
        output = json.loads(final.output or "{}")
    except ValueError:
        output = {}
    result.final_counts = output.get("counts")
    if final.state not in ("SUCCESS", "ERROR") or \
            not isinstance(output.get("servers"), list) or \
            result.final_counts is None:
        violations.append(f"final execution {final.id} {final.state} "
                          f"without a per-VM report: {output}")
    unfinished = [
        e for e in client.executions.list(limit=1000)
        if e.state in ("RUNNING", "IDLE", "PAUSED")
        and (e.description or "").find(FAILED_HOST) >= 0]
    unfinished += [
        e for e in client.executions.list(limit=1000,
                                          workflow_name="instance_ha."
                                                        "instance_evacuate")
        if e.state in ("RUNNING", "IDLE")]
    if unfinished:
        violations.append("executions left unfinished: " + ", ".join(
            f"{e.id} {e.workflow_name} {e.state}" for e in unfinished))


def fail_leftovers(client):
    """After a failed run: set every unfinished execution to ERROR so that
    the next run's cloud is not touched by it."""
    for execution in client.executions.list(limit=1000):
        if execution.state in ("RUNNING", "IDLE", "PAUSED"):
            try:
                client.executions.update(execution.id, "ERROR")
            except Exception:  # noqa: BLE001
                LOG.warning("could not fail leftover %s", execution.id)


def append_report(result, topology_name):
    """One JSON line per run in $CHAOS_REPORT, when set."""
    path = os.environ.get("CHAOS_REPORT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(dict(result.as_dict(),
                                topology=topology_name)) + "\n")
