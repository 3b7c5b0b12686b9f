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

import collections
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import random
import threading
import time

import fake_pacemaker
import yaml

from instance_ha import state_table
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
# per-VM timeout.  Not lower: the longest quiet time (no change the
# watchdog sees) that then ended in progress was 95 s in a distributed
# 50-run (96 s in a fixed sample; embedded at most 42 s), so the watchdog
# steps in only for a real stall.
# CHAOS_WATCHDOG_TIMEOUT=900 runs with production's: a stall that none of
# the watchdog's STALL_RULES catches then shows as a run of 15 minutes.
WATCHDOG_TIMEOUT = int(os.environ.get("CHAOS_WATCHDOG_TIMEOUT") or 100)
MAX_ATTEMPTS = 3
# Finished, or the watchdog gave up: the longest a run may take after
# the kill (restart, watchdog stalls included).
COMPLETION_LIMIT = WATCHDOG_TIMEOUT + 320
# Migration statuses after which a second evacuation is legitimate.
FAILED_MIGRATIONS = ("failed", "error")


@dataclasses.dataclass(frozen=True)
class KillPoint:
    operation: str      # an operation of the simulated cloud's call log
    nth: int            # the nth such call (1-based)
    delay: float = 0.0  # seconds after that call was applied
    status: int = None  # only calls answered with this status count
    # The recovery method the agent asks for: "auto" (Nova's scheduler;
    # the reserved host must stay untouched) or "reserved_host" (every VM
    # to the reserved host, claimed by the recovery).
    method: str = "auto"
    # Nova refuses every evacuation (a reserved-host run only): the
    # claimed host stays unused and must be released again.
    refused: bool = False

    @property
    def name(self):
        status = f"[{self.status}]" if self.status else ""
        scenario = ""
        if self.method != "auto":
            scenario = "@reserved" + ("-refused" if self.refused else "")
        return (f"{self.operation}{status}#{self.nth}+{self.delay:.1f}s"
                f"{scenario}")


# VMs on the failed host: more than one pass (concurrency 10),
# every phase of a recovery long enough to be killed in.
VMS = 12

# The CI sample: each phase of a recovery once, and each step that only
# a reserved-host recovery has.
FIXED_KILL_POINTS = [
    # the service is forced down, the answer lost
    KillPoint("services.update", 1),
    # listing: Nova answered the host's servers, the answer lost
    KillPoint("servers.detail", 1),
    # the first pass is starting: locks set, no evacuation yet
    KillPoint("lock", 4),
    # evacuations issued but not verified: Nova accepted the 5th, the
    # action never learnt it
    KillPoint("evacuate", 5, status=200),
    # during the waits: evacuations rebuilding, actions polling
    KillPoint("evacuate", 9, delay=0.7, status=200),
    # the first VMs unlocked, others still waiting
    KillPoint("unlock", 3),
    # reserved host: claimed and enabled by Nova, the enable's answer
    # lost (SERVICE_UPDATES)
    KillPoint("services.update", 4, method="reserved_host"),
    # reserved host: evacuations to it issued, not verified
    KillPoint("evacuate", 6, status=200, method="reserved_host"),
    # reserved host: Nova refused every evacuation, the unused host is
    # released (disabled again with the reason), the answer lost
    KillPoint("services.update", 5, method="reserved_host", refused=True),
]

# Unlocks after this many are those of the last pass (concurrency 10).
LAST_PASS_AFTER = (VMS - 1) // 10 * 10
# The host's evacuation listings every run makes (fewer than the VMs).
MIGRATION_LISTINGS = 8
RANDOM_OPERATIONS = ("services.update", "servers.detail", "lock",
                     "evacuate", "migrations.list", "servers.show",
                     "unlock")
# Of the randomized runs: most auto (the agent's method), a quarter with
# the reserved-host method, one in ten where Nova refuses the evacuations
# (the claimed reserved host must be released).
RANDOM_METHODS = (("auto", False),) * 13 + (("reserved_host", False),) * 5 \
    + (("reserved_host", True),) * 2
# services.update calls of a run (seen in the call log, claim as of
# 9bf3caf): 1 the failed host forced down; 2 the reserved host marked
# "claimed for HOST"; 3 the claim written in the failed host's reason;
# 4 the reserved host enabled; 5 released (disabled again with the
# reason), when no VM used it.
SERVICE_UPDATES = {"auto": 1, "reserved_host": 4, "refused": 5}


def pacemaker(workdir):
    """The cluster the executors read (tests/fake_pacemaker.py): the
    failed host fenced, as the agent's still_fenced gate sees it."""
    fake = fake_pacemaker.FakePacemaker(os.path.join(workdir, "pacemaker"))
    fake.show(node=FAILED_HOST)
    return fake


def still_fenced(entry):
    """The failed host stays dead in every chaos run: what the agent's
    cluster read would say each time."""
    return True, f"{entry['host']} stays failed and fenced (chaos run)"


def runs_requested(default):
    """CHAOS_RUNS=N: N randomized kill points instead of the fixed
    sample."""
    value = os.environ.get("CHAOS_RUNS", "").strip()
    return int(value) if value else default


def seed():
    """CHAOS_SEED, or one chosen now and put in the environment (so that
    every pytest process of this run, and the report, see the same)."""
    value = os.environ.get("CHAOS_SEED", "").strip()
    if not value:
        value = str(int(time.time()))
        os.environ["CHAOS_SEED"] = value
    return int(value)


def kill_points(topology_name, vms):
    """The kill points of a test module: the fixed sample, or
    ``CHAOS_RUNS`` randomized ones from ``CHAOS_SEED`` (each topology its
    own sequence)."""
    count = runs_requested(0)
    if not count:
        return FIXED_KILL_POINTS
    return random_kill_points(count, vms, f"{seed()}-{topology_name}")


def params(topology_name, vms=VMS, groups=1):
    """The kill points as pytest parameters, dealt round-robin into
    ``groups`` lists.  ``pytest -n N --dist loadscope`` runs a test
    module's functions, or one test class, in one worker process: each
    distributed group is a test class of its own, and each worker builds
    its own deployment (a distributed run mostly waits for heartbeats and
    the watchdog, so several deployments side by side shorten a long
    run)."""
    import pytest

    dealt = [[] for _ in range(groups)]
    for index, point in enumerate(kill_points(topology_name, vms)):
        dealt[index % groups].append(pytest.param(point, id=point.name))
    return dealt


def groups_requested():
    """CHAOS_GROUPS: distributed deployments side by side (default 2: the
    fixed sample's distributed runs, mostly waiting for heartbeats and the
    watchdog, in half the time)."""
    return max(1, int(os.environ.get("CHAOS_GROUPS") or 2))


def random_kill_points(count, vms, seed):
    """``count`` kill points spread over every phase and recovery method
    (reproducible)."""
    rng = random.Random(seed)
    points = []
    for _ in range(count):
        method, refused = rng.choice(RANDOM_METHODS)
        operation = rng.choice(RANDOM_OPERATIONS)
        status = None
        if operation == "services.update":
            nth = rng.randint(1, SERVICE_UPDATES[
                "refused" if refused else method])
        elif operation == "servers.detail":
            nth = 1
        elif refused and operation not in ("lock", "evacuate"):
            # Nothing is waited for (no polls to kill in), and a VM Nova
            # refused keeps its lock (no unlock).
            operation, nth = "lock", rng.randint(1, vms)
        elif operation in ("lock", "evacuate", "unlock"):
            nth = rng.randint(1, vms)
            if operation == "evacuate":
                status = 400 if refused else 200
        elif operation == "migrations.list":
            # Shared by the VMs of a pass: one listing before its first
            # evacuation and one a poll (0.25, 0.75, 1.75 s: 1 s
            # evacuations), for each of the two passes of 12 VMs at
            # concurrency 10, then one by unlock_evacuated: 9 in a run.
            nth = rng.randint(1, MIGRATION_LISTINGS)
        else:  # servers.show: read at least once per VM
            nth = rng.randint(1, vms)
        delay = rng.choice((0.0, 0.0, round(rng.uniform(0.1, 2.0), 1)))
        if operation == "unlock" and nth > LAST_PASS_AFTER and not refused:
            # After the unlocks of the last pass a recovery can end
            # within the delay (seen: unlock#12+1.5s, unlock#11+1.9s,
            # finished before the kill): no delay.
            delay = 0.0
        points.append(KillPoint(operation, nth, delay, status=status,
                                method=method, refused=refused))
    return points


def topology(vms=VMS, evacuation_time=1.0):
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
        self._disarmed = False
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
        with self._lock:
            if self._disarmed:
                return
            try:
                pid = self.kill()
            except ProcessLookupError:
                return
            self.killed_pid = pid
            self.killed_at = time.monotonic()
            self.fired.set()

    def disarm(self):
        """No kill from now on (a delayed one not yet due included):
        whether it fired."""
        with self._lock:
            self._disarmed = True
            return self.fired.is_set()


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
    # Where the time went (seconds): setup before the run (the test's:
    # a replacement engine, the cloud), start to kill, the restart after
    # it (embedded), the kill to the next Nova call by Mistral (lost work
    # taken up again), and when (after the kill) the watchdog started
    # each next run.
    setup: float = None
    pre_kill: float = None
    restart: float = None
    kill_to_next_call: float = None
    watchdog_restarts_at: list = dataclasses.field(default_factory=list)
    # and why (the watchdog's reason: a STALL_RULES row, "stalled for N
    # s", "run ended in ERROR").
    watchdog_restarts_why: list = dataclasses.field(default_factory=list)
    # The longest time after the kill without a change the watchdog sees
    # (an execution's state or updated_at) that did not end in a
    # watchdog restart: the quiet time WATCHDOG_TIMEOUT must stay above.
    longest_quiet: float = None
    # Runs before the last one (a watchdog restart): what each left
    # unfinished or failed ("workflow/task STATE: info"), and the VMs one
    # reported failed although they ended moved.
    earlier_runs: list = dataclasses.field(default_factory=list)
    false_failures: int = 0
    # Restarts of the embedded server that exited at start-up (the harness
    # starts it again, as a supervisor would): why each one failed.
    failed_starts: list = dataclasses.field(default_factory=list)
    method: str = "auto"
    seed: int = None

    def as_dict(self):
        return dataclasses.asdict(self)


@contextlib.contextmanager
def recovery_method(point):
    """The agent starts ``auto`` (``trigger.workflow_input``); a
    reserved-host run asks, for its first run and every run the watchdog
    starts, for ``point.method`` with the reserved host as candidate."""
    if point.method == "auto":
        yield
        return
    original = trigger.workflow_input

    def workflow_input(host, on_shared_storage, node=None):
        return dict(original(host, on_shared_storage, node),
                    recovery_method=point.method,
                    reserved_hosts=[RESERVED_HOST])

    trigger.workflow_input = workflow_input
    try:
        yield
    finally:
        trigger.workflow_input = original


def refuse_evacuations(sim):
    """Nova refuses every evacuation (400, as for a destination it cannot
    use): a reserved host claimed for them ends unused."""
    sim.cloud.faults.add("evacuate", status=400,
                         message="chaos: the destination cannot take it")


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
    with recovery_method(point):
        return _run_one(sim, point, deployment, fenced_at, log or LOG)


def _run_one(sim, point, deployment, fenced_at, log):
    fenced_at = fenced_at or datetime.datetime.now(datetime.timezone.utc)
    result = RunResult(point=point.name, method=point.method,
                       vms=len(sim.cloud.servers_on(FAILED_HOST)))
    if point.refused:
        refuse_evacuations(sim)
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
    dog = watchdog.Watchdog(deployment.client(), conf, log, "chaos",
                            fenced_now=still_fenced)
    while not killer.fired.wait(1.0):
        if time.monotonic() - started > COMPLETION_LIMIT:
            break
        _check(dog, entry, log)
        if watchdog.finished(entry):
            break
    # A run that ended before its kill point came (or before the kill's
    # delay ran out) is not killed afterwards, under the next run.
    result.killed = killer.disarm()
    if result.killed:
        result.pre_kill = round(killer.killed_at - started, 1)
        log.warning("chaos %s: killed PID %s", point.name, killer.killed_pid)
        restart_began = time.monotonic()
        failed_before = len(getattr(deployment, "failed_starts", []))
        deployment.after_kill()
        result.failed_starts = list(
            getattr(deployment, "failed_starts", [])[failed_before:])
        result.restart = round(time.monotonic() - restart_began, 1)
        dog = watchdog.Watchdog(deployment.client(), conf, log, "chaos",
                                fenced_now=still_fenced)
    reference = killer.killed_at or started
    attempt = entry["attempt"]
    seen, changed_at, longest = entry.get("fingerprint"), reference, 0.0
    while not watchdog.finished(entry):
        if time.monotonic() - reference > COMPLETION_LIMIT:
            break
        _check(dog, entry, log)
        now = time.monotonic()
        if entry["attempt"] != attempt:
            attempt = entry["attempt"]
            result.watchdog_restarts_at.append(round(now - reference, 1))
            result.watchdog_restarts_why.append(entry.get("why"))
            seen, changed_at = entry.get("fingerprint"), now
        elif entry.get("fingerprint") != seen:
            longest = max(longest, now - changed_at)
            seen, changed_at = entry.get("fingerprint"), now
        if not watchdog.finished(entry):
            time.sleep(1.0)
    if watchdog.finished(entry):   # the last quiet time ended in the end
        longest = max(longest, time.monotonic() - changed_at)
    result.longest_quiet = round(longest, 1)
    finished_at = time.monotonic()
    if result.killed:
        wall_killed = time.time() - (time.monotonic() - killer.killed_at)
        later = [c.time for c in sim.cloud.calls.calls()
                 if c.time > wall_killed + 0.05]
        if later:
            result.kill_to_next_call = round(min(later) - wall_killed, 1)
    result.outcome = entry.get("outcome")
    result.attempts = entry["attempt"]
    result.total = round(finished_at - started, 1)
    if result.killed:
        result.kill_to_completion = round(finished_at - killer.killed_at, 1)
    # Actions still in flight finish their Nova calls before we read.
    time.sleep(1.0)
    check_invariants(sim, expected, deployment.client(), entry, result,
                     point)
    try:
        _diagnose_earlier_runs(deployment.client(), entry, fenced_at,
                               expected, sim, result)
    except Exception as exc:  # noqa: BLE001 - a diagnosis, not a check
        log.warning("could not diagnose the earlier runs: %s", exc)
    return result


def _diagnose_earlier_runs(client, entry, fenced_at, expected, sim, result):
    """What each run the watchdog replaced left behind: its tasks not
    SUCCESS (a stall: IDLE/RUNNING; a lost action: ERROR with why), and
    VMs it reported failed that ended moved."""
    with sim.cloud.lock:
        moved = {sid for sid in expected
                 if sim.cloud.servers[sid].host != FAILED_HOST}
    for attempt in range(entry["attempt"]):
        execution_id = handoff.execution_id(FAILED_HOST, fenced_at, attempt)
        execution = client.executions.get(execution_id)
        tree = [execution] + [
            e for e in client.executions.list(root_execution_id=execution_id,
                                              limit=1000)
            if e.id != execution_id]
        names = {e.id: e.workflow_name.rsplit(".", 1)[-1] for e in tree}
        left = collections.Counter()
        tasks = [t for e in tree
                 for t in client.tasks.list(workflow_execution_id=e.id,
                                            limit=1000)]
        for task in tasks:
            if task.state == "SUCCESS":
                continue
            info = (task.state_info or "").split("\n", 1)[0][:70]
            if task.state != "ERROR" or names.get(
                    task.workflow_execution_id) != "host_evacuate":
                left[f"{names.get(task.workflow_execution_id, '?')}/"
                     f"{task.name} {task.state}"
                     + (f": {info}" if task.state == "ERROR" else "")] += 1
        try:
            output = json.loads(execution.output or "{}")
        except ValueError:
            output = {}
        false = [r.get("id") for r in output.get("servers") or []
                 if isinstance(r, dict) and r.get("outcome") == "failed"
                 and r.get("id") in moved]
        result.false_failures += len(false)
        result.earlier_runs.append({
            "attempt": attempt, "state": execution.state,
            "left": dict(left), "reported_failed_but_moved": len(false)})



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


def check_invariants(sim, expected, client, entry, result, point=None):
    point = point or KillPoint("none", 1)
    cloud = sim.cloud
    violations = result.violations
    with cloud.lock:
        servers = {sid: cloud.servers[sid] for sid in expected}
        migrations = [dataclasses.replace(m) for m in cloud.migrations]
        reserved = cloud.hosts[RESERVED_HOST].service
        reserved = (reserved.disabled, reserved.disabled_reason,
                    [s.id for s in cloud.servers_on(RESERVED_HOST)])
    # Where the VMs must end: auto on the ordinary computes, the
    # reserved-host method on the reserved host; refused: nowhere (they
    # stay where they are, reported failed).
    if point.refused:
        destinations = (FAILED_HOST,)
    elif point.method == "auto":
        destinations = SPARE_HOSTS
    else:
        destinations = (RESERVED_HOST,)
    # 1. every VM runs where it must, in its state, and is not locked;
    # one Nova refused stays under the lock of this host's recovery, for
    # the next run.
    for sid, before in expected.items():
        server = servers[sid]
        if server.host not in destinations:
            violations.append(f"{server.name}: on {server.host}, expected "
                              f"{' or '.join(destinations)}")
        if server.vm_state != before or server.task_state is not None:
            violations.append(f"{server.name}: {server.vm_state}/"
                              f"{server.task_state}, expected {before}")
        if point.refused and not (server.locked and
                                  state_table.is_evacuation_lock(
                                      server.locked_reason, FAILED_HOST)):
            violations.append(f"{server.name}: refused, but not under our "
                              f"lock ({server.locked_reason!r})")
        elif server.locked and not point.refused:
            violations.append(f"{server.name}: left locked "
                              f"({server.locked_reason!r})")
    # 2. one accepted evacuation per VM, unless the earlier one failed.
    accepted = cloud.calls.accepted_evacuations()
    for sid in expected:
        count = accepted.get(sid, 0)
        if count == 0 and servers[sid].host != FAILED_HOST:
            violations.append(f"{servers[sid].name}: moved without an "
                              "accepted evacuation")
        if point.refused and count:
            violations.append(f"{servers[sid].name}: {count} evacuation(s) "
                              "accepted although Nova refuses them")
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
    # 3. the reserved host: untouched by auto; otherwise claimed and used
    # (enabled, the VMs on it) or reserved again (disabled with the
    # reason, empty); never half-claimed.
    disabled, reason, on_reserved = reserved
    if point.method == "auto":
        if reserved != (True, RESERVED_REASON, []):
            violations.append(f"reserved host {RESERVED_HOST} changed: "
                              f"{reserved}")
    elif on_reserved and disabled:
        violations.append(f"reserved host {RESERVED_HOST} holds "
                          f"{len(on_reserved)} VM(s) but is disabled "
                          f"({reason!r})")
    elif not on_reserved and not (
            disabled and (reason or "").startswith(RESERVED_REASON)):
        violations.append(f"reserved host {RESERVED_HOST} half-claimed: "
                          f"empty, disabled={disabled}, reason {reason!r}")
    # 4. a final outcome with the per-VM report; nothing left RUNNING.
    # Refused: every run ends ERROR and the watchdog gives up.
    wanted = "EXHAUSTED" if point.refused else "SUCCESS"
    if entry.get("outcome") != wanted:
        violations.append(f"recovery outcome {entry.get('outcome')} after "
                          f"{entry['attempt'] + 1} run(s), expected "
                          f"{wanted}")
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
    elif point.refused and result.final_counts.get("failed") != len(
            expected):
        violations.append(f"final execution {final.id}: counts "
                          f"{result.final_counts}, expected every VM "
                          "failed")
    unfinished = [
        e for e in client.executions.list(limit=1000)
        if e.state in ("RUNNING", "IDLE", "PAUSED")
        and (e.description or "").find(FAILED_HOST) >= 0]
    unfinished += [
        a for t in client.tasks.list(workflow_execution_id=final.id,
                                     limit=1000)
        if t.name == "evacuate_servers"
        for a in client.action_executions.list(t.id, limit=1000)
        if a.state in ("RUNNING", "IDLE")]
    if unfinished:
        violations.append("executions left unfinished: " + ", ".join(
            f"{e.id} {getattr(e, 'workflow_name', None) or e.name} "
            f"{e.state}" for e in unfinished))


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
    if result.seed is None and os.environ.get("CHAOS_SEED"):
        result.seed = int(os.environ["CHAOS_SEED"])
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(dict(result.as_dict(),
                                topology=topology_name)) + "\n")
