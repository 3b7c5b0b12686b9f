"""Recover a batch of a failed host's servers at once: each one through
its state-table row, the batch's reads of Nova shared.

One action per batch, not one workflow per server: Mistral's cost grows
with its task and action executions, and a with-items task rescans all of
its items at every completion.  The work per server is the row's
(instance_ha.state_table): lock, the steps before the evacuation,
evacuate, wait until it runs elsewhere, the steps after, unlock.

Look before acting, as every action of the pack: a server already moved
or whose evacuation from the source is under way is only waited for;
nothing is sent twice.  What the batch reads is shared: one listing of
the source host's evacuations before the first evacuation and one per
poll interval while servers wait, for the whole batch; a server is read
on its own only to confirm where its evacuation left it, to stop it,
after a transient failure (the answer of a request may have been lost),
or when the host's evacuations show one of its own that its entry may
not know of (listed while it ran, or the same input run again).

Safety rule 1 holds for the batch on its own: before it touches a
server it reads Pacemaker here, on the executor, as host_evacuate's
confirm_fencing step does (instance_ha.fence_gate), and refuses, changing
nothing, unless the source host is fenced now or ``fencing`` is an
operator override.  Run alone through the Mistral API, it is no way
around the rule; in host_evacuate every batch checks again, so a host
that comes back online in the middle of its recovery keeps the VMs not
yet moved.

A batch need not wait for its slowest server: with ``report_within``
it reports that many seconds after its first outcome, and the servers
whose evacuation is still under way come back as ``waiting`` with their
entry for the next pass (host_evacuate loops until none is left), so
that each outcome shows in Mistral soon after Nova finished.

The action never fails for one server: each ends ``moved`` or ``failed``
with its reason, and a server left on the failed host keeps our lock,
whose reason names its case (the next recovery of the host takes it up
again from there).  Only an action lost with its executor fails the
batch; the host workflow then ends in error and its next run, which
starts from what Nova says, finishes the job.
"""

import concurrent.futures
import os
import threading
import time
from urllib import parse

from instance_ha import fence_gate
from instance_ha import nova_client
from instance_ha import state_table
from instance_ha import workflow_inputs
from instance_ha.actions import base
from instance_ha.actions import lock as lock_module

# Nova sets one of these task states with an evacuation migration.
REBUILD_TASK_STATES = ("rebuilding", "rebuild_block_device_mapping",
                       "rebuild_spawning")
MIGRATION_SUCCEEDED = ("done", "completed")
MIGRATION_FAILED = ("failed", "error")
# An evacuation migration in any other status is still under way.
FINISHED_MIGRATIONS = MIGRATION_SUCCEEDED + MIGRATION_FAILED + (
    "cancelled",)
# Seconds a server may still read as on the source host after its
# evacuation migration is done, before that is taken as final: Nova moves
# the host and then marks the migration done, so a read of the server
# just before a read of the migrations can show the old host beside a
# done migration.
SETTLE_SECONDS = 30
# Seconds to the first poll after an evacuation is sent; each next poll
# waits twice as long, up to the workflow's poll_interval.
FIRST_POLL = 0.25
# Servers recovered at once by one executor process, whatever the number
# of hosts and batches: INSTANCE_HA_MAX_SERVERS_IN_FLIGHT (default 200).
IN_FLIGHT_ENV = "INSTANCE_HA_MAX_SERVERS_IN_FLIGHT"
DEFAULT_IN_FLIGHT = 200
_in_flight = None
_in_flight_lock = threading.Lock()


def in_flight_slots():
    """This process's bound on servers recovered at once."""
    global _in_flight
    with _in_flight_lock:
        if _in_flight is None:
            try:
                size = int(os.environ.get(IN_FLIGHT_ENV) or
                           DEFAULT_IN_FLIGHT)
            except ValueError:
                size = DEFAULT_IN_FLIGHT
            _in_flight = threading.BoundedSemaphore(max(size, 1))
        return _in_flight


def running_evacuation(migrations, source_host, task_state):
    """The evacuation from source_host still under way, if any.  An
    ``accepted`` one while the server has no rebuild task is an orphan:
    Nova sets the task with the migration, and the loser of two racing
    evacuations stays ``accepted`` for good."""
    for migration in migrations:
        if migration.get("source_compute") != source_host:
            continue
        status = migration.get("status")
        if status in FINISHED_MIGRATIONS:
            continue
        if status == "accepted" and task_state not in REBUILD_TASK_STATES:
            continue
        return migration
    return None


class HandedOver(Exception):
    """A server still waiting for its evacuation when the batch reports:
    the next pass waits for it."""


class Progress:
    """When the batch's first outcome was known, and so when the servers
    still waiting are handed over (``report_within`` seconds later; None:
    never, the batch waits for every server)."""

    def __init__(self, report_within):
        self.report_within = report_within
        self._first = None
        self._lock = threading.Lock()

    def outcome_known(self):
        with self._lock:
            if self._first is None:
                self._first = time.monotonic()

    def hand_over_now(self):
        with self._lock:
            return (self.report_within is not None
                    and self._first is not None
                    and time.monotonic() - self._first >= self.report_within)


class Failed(Exception):
    """One server's recovery failed at ``step``; the message says why."""

    def __init__(self, step, reason):
        super().__init__(f"{step}: {reason}" if step else reason)
        self.step = step


class RecoverServers(base.NovaAction):
    """``servers``: entries of instance_ha.host_servers' output (plan
    ``evacuate``); ``fencing``: host_evacuate's input of that name ({} or
    {"node": N}: Pacemaker must show the source host, or node N, fenced
    now; {"override": WHY}); ``targets``: hosts to try in order (null:
    Nova's scheduler), an empty list when none could be had.  ``timeout``: the
    seconds one server's evacuation may take; ``interval``: seconds
    between two polls; ``report_within``: once the outcome of one server
    is known, the batch reports at most this many seconds later, and each
    server still waiting for its evacuation then is ``waiting`` (null:
    the batch waits for every server).  Returns ``{"servers": [record,
    ...]}``, a record per server: id, name, outcome (moved | failed |
    waiting), host, vm_state, reason, left_locked, and for a waiting one
    ``entry``, its input for the next pass (which only waits for it),
    and the entry's priority and group;
    ``fencing``, what fence_gate.check found; and
    ``refused``: null, or why nothing was touched (every record then
    says so; the action still succeeds, so that host_evacuate reports
    each VM)."""

    def __init__(self, servers, source_host, fencing=None, targets=None,
                 on_shared_storage=None, timeout=600, interval=2,
                 report_within=None):
        self.servers = servers
        self.source_host = source_host
        self.fencing = {} if fencing is None else fencing
        self.targets = [None] if targets is None else targets
        self.on_shared_storage = on_shared_storage
        self.timeout = timeout
        self.interval = interval
        self.report_within = report_within

    def _subject(self):
        return base.host_subject(self.source_host)

    def check(self):
        base.require_text("source_host", self.source_host)
        problem = workflow_inputs.fencing(self.fencing)
        if problem:
            raise nova_client.NovaError(f"bad input: fencing {problem}")
        base.require_server_list(self.servers, "host_servers entries")
        base.require_targets(self.targets, self.source_host)
        if self.on_shared_storage not in (None, True, False):
            raise nova_client.NovaError(
                "bad input: on_shared_storage must be true, false or null")
        base.require_number("timeout", self.timeout)
        base.require_number("interval", self.interval, minimum=0.05)
        if self.report_within is not None:
            base.require_number("report_within", self.report_within)
        for entry in self.servers:
            if not state_table.is_case(state_table.HOST_DOWN,
                                       entry.get("case")):
                raise nova_client.NovaError(
                    f"bad input: server {entry['id']} has no host-down case "
                    f"of the state table ({entry.get('case')!r})")
            if entry.get("evacuated_vm_state") not in (
                    None, state_table.ACTIVE, state_table.STOPPED,
                    state_table.ERROR):
                raise nova_client.NovaError(
                    f"bad input: server {entry['id']} evacuated_vm_state "
                    f"must be active, stopped or error, not "
                    f"{entry['evacuated_vm_state']!r}")
            if "waited_s" in entry:
                base.require_number(f"server {entry['id']} waited_s",
                                    entry["waited_s"])
            row = state_table.row(state_table.HOST_DOWN, entry.get("case"))
            if row.plan != state_table.EVACUATE:
                raise nova_client.NovaError(
                    f"bad input: server {entry['id']} is in case "
                    f"{row.before}, which is not evacuated")

    def act(self, nova):
        if not self.servers:
            return {"servers": [], "fencing": None, "refused": None}
        try:
            fenced = fence_gate.check(self.source_host, self.fencing)
        except fence_gate.Refused as exc:
            base.LOG.warning("%s", exc)
            return {"servers": [self._untouched(entry, str(exc))
                                for entry in self.servers],
                    "fencing": None, "refused": str(exc)}
        view = HostEvacuations(nova, self.source_host, self.interval)
        progress = Progress(self.report_within)
        slots = in_flight_slots()

        def recover(entry):
            with slots:
                return ServerRecovery(entry, self, nova, view,
                                      progress).run()

        with concurrent.futures.ThreadPoolExecutor(
                max_workers=len(self.servers),
                thread_name_prefix="recover") as pool:
            records = list(pool.map(recover, self.servers))
        return {"servers": records, "fencing": fenced, "refused": None}

    def _untouched(self, entry, reason):
        return {"name": entry.get("name"), "outcome": "failed",
                "host": self.source_host, "vm_state": entry.get("vm_state"),
                "reason": reason, "id": entry["id"],
                "priority": entry.get("priority", 0),
                "group": entry.get("group"),
                "left_locked": bool(entry.get("locked"))}


class HostEvacuations:
    """The source host's evacuation migrations, read once per interval
    for every server of the batch (GET /os-migrations?source_compute=)."""

    def __init__(self, nova, host, interval):
        self.nova = nova
        self.host = host
        self.interval = interval
        self._lock = threading.Lock()
        self._read_at = None
        self._by_server = {}

    def of(self, server_id, after=None):
        """The server's evacuations from the host, newest first, from a
        read made at ``after`` (a time.monotonic() value) or later: the
        batch's last one if it is recent enough, else a new one."""
        with self._lock:
            stale = self._read_at is None or (
                after is not None and self._read_at < after)
            if stale:
                self._by_server = self.nova.retrying(
                    f"listing the evacuations from {self.host}",
                    self._read, host=self.host)
                self._read_at = time.monotonic()
            return list(self._by_server.get(server_id, ()))

    def _read(self):
        client = self.nova.client()
        query = ("/os-migrations?source_compute="
                 + parse.quote(self.host, safe=""))
        if client.api_version >= nova_client.MIGRATION_TYPE_MIN:
            query += "&migration_type=evacuation"
        found = {}
        for migration in self.nova.get(query, client).get("migrations", []):
            if (migration.get("source_compute") != self.host
                    or migration.get("migration_type", "evacuation")
                    != "evacuation"):
                continue
            found.setdefault(migration.get("instance_uuid"), []).append(
                migration)
        for migrations in found.values():
            migrations.sort(key=lambda m: (m.get("created_at") or "",
                                           m.get("id") or 0), reverse=True)
        return found


class ServerRecovery:
    """One server of the batch, through its row's steps."""

    def __init__(self, entry, batch, nova, view, progress=None):
        self.entry = entry
        self.id = entry["id"]
        self.batch = batch
        self.nova = nova
        self.view = view
        self.progress = progress or Progress(None)
        self.row = state_table.row(state_table.HOST_DOWN, entry["case"])
        self.source = batch.source_host
        self.locked_by_us = False
        self.server = None  # the last read of the server, if any

    def run(self):
        # Read first in Mistral's views: the name and what happened.
        record = {"name": self.entry.get("name"), "outcome": "failed",
                  "host": self.source,
                  "vm_state": self.entry.get("vm_state"), "reason": None,
                  "id": self.id, "priority": self.entry.get("priority", 0),
                  "group": self.entry.get("group"), "left_locked": False}
        try:
            self._lock()
            host, vm_state = self._move()
            vm_state = self._after(vm_state)
            record.update(outcome="moved", host=host, vm_state=vm_state,
                          reason=f"running on {host} as {vm_state}")
        except HandedOver as exc:
            record.update(outcome="waiting", reason=str(exc),
                          left_locked=self.locked_by_us,
                          entry=self._handed_over_entry())
            base.LOG.info("server %s: %s", self.id, record["reason"])
            return record
        except Failed as exc:
            record["reason"] = str(exc)
            if self.server is not None:
                record["host"] = nova_client.host_of(self.server)
                record["vm_state"] = nova_client.vm_state_of(self.server)
        except nova_client.NovaError as exc:
            record["reason"] = exc.reason
        self.progress.outcome_known()
        record["left_locked"] = self._unlock(record["outcome"] == "moved",
                                             record)
        base.LOG.info("server %s: %s (%s)", self.id, record["outcome"],
                      record["reason"])
        return record

    # -- the steps ----------------------------------------------------------

    def _lock(self):
        if self.entry.get("locked"):
            # Listed locked: ours when the reason is ours (an earlier run),
            # else someone else's, left as it is.
            reason = self.entry.get("locked_reason") or ""
            self.locked_by_us = reason.startswith(state_table.LOCK_MARK)
            return
        client = self.nova.client(at_least=nova_client.LOCKED_MIN,
                                  what="lock")
        body = {"lock": None}
        if client.api_version >= nova_client.LOCKED_REASON_MIN:
            body = {"lock": {"locked_reason": self._our_lock_reason()}}
        self._retrying("lock_server", lambda first: self.nova.post(
            f"/servers/{self.id}/action", body, client))
        self.locked_by_us = True

    def _our_lock_reason(self):
        return lock_module.our_reason(
            self.entry.get("lock_reason") or state_table.lock_reason(
                self.source, self.row.before))

    def _handed_over_entry(self):
        """This server's entry for the next pass: its evacuation is under
        way (sent by us, or found), its lock ours if we set it, and the
        seconds it has waited already count against ``timeout``."""
        entry = dict(self.entry, task_state="rebuilding",
                     waited_s=round(time.monotonic() - self.wait_began, 1))
        if self.locked_by_us:
            entry.update(locked=True, locked_reason=self._our_lock_reason())
        return entry

    def _move(self):
        """Evacuate (the row's steps before it first), trying each target
        in turn; (host, vm_state) once it runs elsewhere as expected."""
        targets = self.batch.targets
        if not targets:
            raise Failed(None, "no target host is available (no reserved "
                         "host could be claimed)")
        under_way = self._under_way()
        for attempt, target in enumerate(targets):
            try:
                if under_way is not None:
                    return self._wait(None)
                if attempt == 0:
                    self._before()
                return self._wait(self._evacuate(target))
            except Failed:
                if attempt + 1 == len(targets):
                    raise
                under_way = None

    def _under_way(self):
        """The evacuation from the source that an earlier run started and
        that is still running (or already moved the server), else None.
        The entry may be older than the host's evacuations (listed while
        one ran, or the same input run again): when they show one of this
        server's ``done``, or ``accepted`` while the entry shows no
        rebuild task, the server is read before anything is sent."""
        migrations = self.view.of(self.id)
        task_state = self.entry.get("task_state")
        if task_state not in REBUILD_TASK_STATES and any(
                m.get("status") in ("accepted", "done") for m in migrations):
            server = self._read()
            if nova_client.host_of(server) != self.source:
                return {}
            task_state = nova_client.task_state_of(server)
        running = running_evacuation(migrations, self.source, task_state)
        if running is not None or task_state in REBUILD_TASK_STATES:
            return running or {}
        return None

    def _before(self):
        for step in self.row.before_evacuation:
            STEPS[step](self, step_name=BEFORE_NAMES[step])

    def _evacuate(self, target):
        at = min(self.nova.version(), nova_client.EVACUATE_MAX)
        body = {}
        if target:
            body["host"] = target
        if at <= nova_client.SHARED_STORAGE_MAX:
            body["onSharedStorage"] = bool(self.batch.on_shared_storage)
        client = self.nova.client(at_most=at)

        def attempt(first):
            if not first:
                # The answer to an earlier POST may have been lost.
                server = self._read()
                if nova_client.host_of(server) != self.source or (
                        running_evacuation(
                            self.view.of(self.id, after=time.monotonic()),
                            self.source, nova_client.task_state_of(server))):
                    return
            self.nova.post(f"/servers/{self.id}/action",
                           {"evacuate": body}, client)

        self._retrying("evacuate_server", attempt)
        # Nova records the migration before it answers: a read of the
        # host's evacuations made after this instant shows it.
        sent_at = time.monotonic()
        base.LOG.info("server %s: evacuation from %s accepted (compute API "
                      "%s)", self.id, self.source, at.get_string())
        return sent_at

    def _wait(self, since):
        """Poll the host's evacuations (shared by the batch: a read less
        than one step old serves every server) until this server's is
        over, then read the server: (host, vm_state).  ``since``: when our
        evacuation was sent (None: an earlier run's is under way).  The
        step grows from FIRST_POLL to ``interval``."""
        expected = self.entry.get("evacuated_vm_state") or \
            state_table.evacuated_vm_state(self.row,
                                           self.entry.get("vm_state"))
        self.wait_began = time.monotonic() - self.entry.get("waited_s", 0)
        deadline = self.wait_began + self.batch.timeout
        settle_until = None
        step = min(FIRST_POLL, self.batch.interval)
        while True:
            if since is not None:
                time.sleep(step)
            now = time.monotonic()
            after = now - step if since is None else max(since, now - step)
            since = since if since is not None else now - step
            step = min(step * 2, self.batch.interval)
            newest = (self.view.of(self.id, after=after) or [{}])[0]
            status = newest.get("status")
            if status in MIGRATION_SUCCEEDED or status in MIGRATION_FAILED \
                    or not newest:
                server = self._read()
                done = self._judge(server, status, expected)
                if done is not None:
                    return done
                if nova_client.host_of(server) == self.source and \
                        status in MIGRATION_SUCCEEDED:
                    settle_until = settle_until or \
                        time.monotonic() + SETTLE_SECONDS
                    if time.monotonic() >= settle_until:
                        raise self._failure(
                            server, "its evacuation finished but it is "
                                    "still on the source host")
            if self.progress.hand_over_now():
                raise HandedOver(
                    f"evacuation under way for "
                    f"{time.monotonic() - self.wait_began:.0f} s; waited "
                    f"for by the next pass")
            if time.monotonic() >= deadline:
                server = self.server or {}
                raise Failed("wait_until_moved", (
                    f"server {self.id} still not evacuated from "
                    f"{self.source} after {self.batch.timeout} s (host "
                    f"{nova_client.host_of(server)}, vm_state "
                    f"{nova_client.vm_state_of(server)}, task_state "
                    f"{nova_client.task_state_of(server)})"))

    def _judge(self, server, status, expected):
        """(host, vm_state) when the evacuation is over and right; Failed
        when it is over and wrong; None while it goes on."""
        host = nova_client.host_of(server)
        vm_state = nova_client.vm_state_of(server)
        if nova_client.task_state_of(server):
            return None
        if status in MIGRATION_FAILED:
            raise self._failure(server, "its evacuation failed")
        if host == self.source:
            if status is None:
                raise self._failure(server, "no evacuation from this host "
                                            "is under way")
            return None
        if vm_state == "error" and expected != "error":
            raise self._failure(server, "ended in error")
        if vm_state != expected:
            raise self._failure(server, f"ended {vm_state}, expected "
                                        f"{expected}")
        return host, vm_state

    def _after(self, vm_state):
        for step in self.row.after_evacuation:
            vm_state = STEPS[step](self, step_name=AFTER_NAMES[step])
        return vm_state

    def _unlock(self, moved, record):
        """Unlock when the lock is ours, except on a server still on the
        failed host; True when our lock stays."""
        if not self.locked_by_us:
            return False
        if not moved and record.get("host") in (self.source, None):
            # Kept: the next recovery of the host takes it up again.
            return True
        client = self.nova.client(at_least=nova_client.LOCKED_MIN,
                                  what="unlock")
        try:
            self._retrying("unlock_server", lambda first: self.nova.post(
                f"/servers/{self.id}/action", {"unlock": None}, client))
        except Failed as exc:
            record["reason"] += f"; {exc}"
            return True
        return False

    # -- helpers ------------------------------------------------------------

    def _read(self):
        self.server = self.nova.retrying(
            f"reading server {self.id}", lambda: self.nova.server(self.id),
            server=self.id, host=self.source)
        return self.server

    def _retrying(self, step, attempt):
        """attempt(first) under Nova's retries of transient failures; a
        retry is told it is not the first (its answer may be lost)."""
        calls = []

        def once():
            calls.append(1)
            return attempt(len(calls) == 1)

        try:
            return self.nova.retrying(f"{step} of server {self.id}", once,
                                      server=self.id, host=self.source)
        except nova_client.NovaError as exc:
            raise Failed(step, exc.reason) from None

    def _failure(self, server, what):
        fault = nova_client.fault_of(server)
        reason = f"server {self.id} {what}"
        if fault:
            reason += f": {fault}"
        return Failed("wait_until_moved", reason)


# -- the row's steps other than the evacuation --------------------------------

def _reset_error(recovery, step_name):
    """os-resetState to error (Nova accepts it in any state)."""
    recovery._retrying(step_name, lambda first: recovery.nova.post(
        f"/servers/{recovery.id}/action",
        {"os-resetState": {"state": "error"}}))
    return state_table.ERROR


def _stop(recovery, step_name, poll=1.0):
    """os-stop, unless it is stopped already, then wait until it is."""
    def attempt(first):
        server = recovery.server if first and recovery.server else \
            recovery._read()
        if nova_client.vm_state_of(server) == state_table.STOPPED and \
                not nova_client.task_state_of(server):
            return False
        if nova_client.task_state_of(server) != "powering-off":
            recovery.nova.post(f"/servers/{recovery.id}/action",
                               {"os-stop": None})
        return True

    if not recovery._retrying(step_name, attempt):
        return state_table.STOPPED
    deadline = time.monotonic() + recovery.batch.timeout
    while True:
        time.sleep(poll)
        server = recovery._read()
        vm_state = nova_client.vm_state_of(server)
        task_state = nova_client.task_state_of(server)
        if vm_state == state_table.STOPPED and not task_state:
            return vm_state
        if vm_state == state_table.ERROR and not task_state:
            raise Failed(step_name, f"server {recovery.id} went to error: "
                         f"{nova_client.fault_of(server) or 'no fault'}")
        if time.monotonic() >= deadline:
            raise Failed(step_name, f"server {recovery.id} not stopped "
                         f"after {recovery.batch.timeout} s: vm_state "
                         f"{vm_state}, task_state {task_state}")


# Every step a host-down row may have around its evacuation, and the name
# a failed one is reported under.  state_table checks its rows against
# the step names, and tests/unit check that every row's steps are here.
STEPS = {state_table.RESET_ERROR: _reset_error, state_table.STOP: _stop}
BEFORE_NAMES = {state_table.RESET_ERROR: "reset_to_error"}
AFTER_NAMES = {state_table.RESET_ERROR: "reset_to_error_again",
               state_table.STOP: "stop_again"}
