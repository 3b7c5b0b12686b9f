"""Follow a failure's workflow run; fail a stalled one and start the next.

Mistral alone does not always finish a run whose engine died in the middle
of it (a task left IDLE, a completion never handled: the execution stays
RUNNING for good; measured with Mistral 23, doc/durability.rst).  At each
monitor the agent looks at the run it started and at every execution below
it (state and ``updated_at``).  When none of that changed for
``watchdog_timeout`` seconds, the unfinished executions are set to ERROR
(children first, then the root) and the workflow starts again under the
next deterministic id: safe, because the workflow is level-triggered and
its actions look before they act.  No ``tasks.rerun(reset=False)``: on
a with-items task it hangs.

A task is IDLE only between its creation and its start message; one IDLE
for ``ORPHANED_TASK_AGE`` lost that message with a dead engine, and
Mistral never starts it (mistral-facts.md; the embedded server starts
such tasks when it restarts, a distributed Mistral never does), so its
run cannot finish: it is failed and started again at once, without
waiting ``watchdog_timeout`` (900 s by default, above the longest
legitimate quiet time of a run).

The same holds for an execution still RUNNING whose every task finished
that long ago: Mistral completes a workflow after the transaction of its
last task, and a process killed in between leaves it RUNNING for good.
And for a task still RUNNING whose every sub-workflow (or action: the
host workflow's batches) finished ``NEVER_COMPLETED_TASK_AGE`` ago: a
sub-workflow tells its parent task that it finished after its own
transaction (Mistral's post-transaction
queue), so a process killed in between loses the message, and with it a
with-items concurrency slot.  Mistral's integrity checker (every 120 s)
completes an ordinary task in that state but not a with-items task whose
slots leaked (mistral-facts.md 3.4, E4), so the age gives it two tries.
These rules are ``STALL_RULES``, one row each.

They judge one look at the run (``Scan``), read per execution: the run's
executions (``executions.list(root_execution_id=...)``) and the tasks of
each unfinished one (``tasks.list(workflow_execution_id=...)``), page by
page (``PAGE`` items after the last one's id), at most ``MAX_PAGES``
requests per list.  Never Mistral's whole task list: it is cut at
``[api] max_limit`` (1000) items, so on a busy Mistral a stall of this
run could be missed, or a run judged on half of its executions.  A run
too large to read whole is not judged at all that time (said once).
One check costs one request for the execution, one per page of the
run's executions and one per page of tasks of each unfinished execution
(at most the workflow's concurrency, plus the root).

A run that ends in ERROR is reported and started again, up to
``max_attempts`` runs per failure; then the agent says, loudly and
repeatedly, that an operator must act, and does nothing more for it.
A run an operator aborted (``instance-ha abort``: its output names the
reason) is reported and never started again.

No run is started, and no stalled run is failed, unless this very
monitor's read of Pacemaker shows the host failed and fenced for the
same failure, with the safety gate open (``fenced_now``, given by the
monitor).  A cluster that could not be read, a host online again or
fenced for another failure, no quorum or a mass failure: the watchdog
only observes, and says why it starts nothing.

One watched failure is a JSON-able dict (kept in the state file)::

    {"host", "fenced_at" (ISO), "failure" (trigger.failure_key), "attempt",
     "execution_id", "fingerprint", "progress_at" (ISO), "outcome"
     (None | SUCCESS | ERROR | CANCELLED | EXHAUSTED | ABORTED), "why"
     (the last run
     was replaced or given up), "alarm_at", "held" (why nothing starts
     now), "too_large", "checked_in" (the monitor pass that last checked
     it)}
"""

import datetime
import hashlib
import json

from instance_ha import abort
from instance_ha.agent import budget
from instance_ha.agent import handoff

RUNNING_STATES = ("RUNNING", "IDLE")
FAILED_STATES = ("ERROR", "CANCELLED")
ALARM_EVERY = datetime.timedelta(minutes=10)
# A start message waits in the engine's queue for seconds, not minutes.
ORPHANED_TASK_AGE = datetime.timedelta(minutes=2)
# Two runs of Mistral's integrity checker (every 120 s, after
# [engine] execution_integrity_check_delay = 20 s).
NEVER_COMPLETED_TASK_AGE = datetime.timedelta(minutes=4, seconds=20)
MISTRAL_TIME = "%Y-%m-%d %H:%M:%S"
FINISHED_TASK_STATES = ("SUCCESS", "ERROR", "CANCELLED")
# Items per list request: below any sane [api] max_limit (default 1000),
# since a page shorter than asked for is taken as the last one.
PAGE = 100
MAX_PAGES = 50


class TooLarge(Exception):
    """A list of the run did not end within MAX_PAGES pages."""


class Scan:
    """One look at a run: ``executions`` (the root first, then every
    execution below it), ``tasks`` (execution id -> its tasks, for each
    unfinished execution) and ``subs`` (task id -> the executions it
    started, or for a running task of actions, its action executions)."""

    def __init__(self, root, children, tasks):
        self.root = root
        self.children = children
        self.executions = [root] + children
        self.tasks = tasks
        self.subs = {}
        for execution in children:
            task_id = getattr(execution, "task_execution_id", None)
            if task_id:
                self.subs.setdefault(task_id, []).append(execution)

    def unfinished(self):
        return [e for e in self.executions if e.state in RUNNING_STATES]


def read_all(list_call, **filters):
    """Every item of a python-mistralclient list, page by page."""
    items, marker = [], ""
    for _ in range(MAX_PAGES):
        page = list(list_call(marker=marker, limit=PAGE, **filters))
        items += page
        if len(page) < PAGE:
            return items
        marker = page[-1].id
    raise TooLarge(f"more than {PAGE * MAX_PAGES} items")


def new_entry(host, fenced_at, failure, attempt, execution_id, now):
    return {"host": host, "fenced_at": fenced_at.isoformat(),
            "failure": failure, "attempt": attempt,
            "execution_id": execution_id, "fingerprint": None,
            "progress_at": now.isoformat(), "outcome": None,
            "alarm_at": None}


def finished(entry):
    """Nothing more will be started for it (it may still be reported)."""
    return entry.get("outcome") in ("SUCCESS", "EXHAUSTED", "ABORTED")


def fingerprint(executions):
    text = "\n".join(sorted(f"{e.id} {e.state} {e.updated_at}"
                            for e in executions))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Watchdog:
    """``check(entry)`` once per monitor for each unfinished failure.

    ``client``: python-mistralclient; ``record(entry)``: called after a
    new attempt started (the CIB record follows the current execution);
    ``log``: a logging.Logger; ``fenced_now(entry)``: (True, why) when
    this monitor's cluster read shows the entry's host failed and fenced
    for the entry's failure and the gate lets it through, else (False,
    why not).  Without it nothing is ever started.
    """

    def __init__(self, client, config, log, origin, record=None,
                 clock=None, fenced_now=None):
        self.client = client
        self.config = config
        self.log = log
        self.origin = origin
        self.record = record or (lambda entry: None)
        self.clock = clock or (lambda: datetime.datetime.now(
            datetime.timezone.utc))
        self.fenced_now = fenced_now or (
            lambda entry: (False, "no cluster read confirms the fencing"))

    def check(self, entry):
        if entry.get("outcome") in ("SUCCESS", "ABORTED"):
            return
        if entry.get("outcome") == "EXHAUSTED":
            self._alarm(entry)
            return
        from mistralclient.api import base as mistral_base

        host = entry["host"]
        try:
            execution = self.client.executions.get(entry["execution_id"])
        except mistral_base.APIException as exc:
            if getattr(exc, "error_code", None) != 404:
                raise
            if self._may_start(entry, entry["attempt"]):
                self.log.warning("%s: execution %s is gone from Mistral; "
                                 "starting it again under the same id",
                                 host, entry["execution_id"])
                self._start(entry, entry["attempt"])
            return
        state = execution.state
        if state == "SUCCESS":
            entry["outcome"] = "SUCCESS"
            self.log.info("%s: recovery finished: execution %s SUCCESS%s",
                          host, execution.id, _counts(execution))
            return
        if state in FAILED_STATES:
            why = abort.aborted(_output(execution))
            if why is not None:
                entry.update(outcome="ABORTED", why=f"aborted: {why}")
                self.log.warning(
                    "%s: recovery execution %s was aborted (%s)%s; "
                    "instance-ha will not start it again", host,
                    execution.id, why, _counts(execution))
                return
            if entry.get("outcome") != state:
                entry["outcome"] = state
                self.log.error("%s: recovery run %d/%d (execution %s) "
                               "ended in %s: %s", host, entry["attempt"] + 1,
                               self.config.max_attempts, execution.id, state,
                               (execution.state_info or "")[:500])
            self._next_attempt(entry, f"run ended in {state}")
            return
        if state not in RUNNING_STATES:  # PAUSED: an operator's hand
            self.log.info("%s: execution %s is %s; not watched while so",
                          host, execution.id, state)
            entry["progress_at"] = self.clock().isoformat()
            return
        now = self.clock()
        try:
            scan = self.scan(execution)
        except TooLarge as exc:
            if entry.get("too_large") != execution.id:
                entry["too_large"] = execution.id
                self.log.warning("%s: execution %s is too large to judge "
                                 "(%s); not judged while so", host,
                                 execution.id, exc)
            entry["progress_at"] = now.isoformat()
            return
        entry.pop("too_large", None)
        children, run = scan.children, scan.executions
        for finder, what, why in STALL_RULES:
            found = finder(scan, now)
            if found:
                self._restart(entry, execution, children,
                              f"has {len(found)} {what} ("
                              + ", ".join(found[:5]) + ")",
                              f"{len(found)} {why}")
                return
        current = fingerprint(run)
        if current != entry.get("fingerprint"):
            entry["fingerprint"] = current
            entry["progress_at"] = now.isoformat()
            return
        still = now - datetime.datetime.fromisoformat(entry["progress_at"])
        if still.total_seconds() < self.config.watchdog_timeout:
            return
        seconds = int(still.total_seconds())
        self._restart(entry, execution, children,
                      f"made no progress for {seconds} s",
                      f"stalled for {seconds} s")

    def _restart(self, entry, execution, children, what, why):
        """Fail the run's unfinished executions (children first), start
        the workflow again under the next id.  Neither while the host is
        not failed and fenced now: the run is left as it is."""
        host = entry["host"]
        if not self._may_start(entry, entry["attempt"] + 1,
                               f"execution {execution.id} {what}"):
            return
        stuck = [c for c in children if c.state in RUNNING_STATES]
        self.log.error("%s: recovery execution %s %s (%d unfinished child "
                       "executions): failing it and starting the workflow "
                       "again", host, execution.id, what, len(stuck))
        for child in stuck + [execution]:
            try:
                self.client.executions.update(child.id, "ERROR")
            except budget.OutOfTime:
                raise  # the next monitor finds the stall again
            except Exception as exc:  # noqa: BLE001 - try the others
                self.log.warning("%s: could not set execution %s to ERROR: "
                                 "%s", host, child.id, exc)
        entry["outcome"] = "ERROR"
        self._next_attempt(entry, why)

    def scan(self, execution):
        """The Scan of the run whose root is ``execution``; TooLarge."""
        children = [c for c in read_all(self.client.executions.list,
                                        root_execution_id=execution.id)
                    if c.id != execution.id]
        scan = Scan(execution, children, {})
        for unfinished in scan.unfinished():
            scan.tasks[unfinished.id] = read_all(
                self.client.tasks.list,
                workflow_execution_id=unfinished.id)
            # A running task of actions (the host workflow's batches): its
            # action executions stand where sub-workflows would.
            for task in scan.tasks[unfinished.id]:
                if task.state == "RUNNING" and \
                        getattr(task, "type", None) == "ACTION":
                    scan.subs[task.id] = read_all(
                        self.client.action_executions.list,
                        task_execution_id=task.id)
        return scan

    def _next_attempt(self, entry, why):
        attempt = entry["attempt"] + 1
        entry["why"] = why
        if attempt >= self.config.max_attempts:
            entry["outcome"] = "EXHAUSTED"
            entry["alarm_at"] = None
            self._alarm(entry)
            return
        if self._may_start(entry, attempt, why):
            self._start(entry, attempt)

    def _may_start(self, entry, attempt, what=None):
        """Whether run ``attempt`` may start now; says once why not."""
        allowed, why = self.fenced_now(entry)
        if allowed:
            entry.pop("held", None)
            return True
        if entry.get("held") != why:
            entry["held"] = why
            self.log.warning(
                "%s: NOT starting recovery run %d/%d%s: %s; watching only",
                entry["host"], attempt + 1, self.config.max_attempts,
                f" ({what})" if what else "", why)
        return False

    def _alarm(self, entry):
        """The operator message: at once, then every ALARM_EVERY while
        the failure is watched (until the host is online again)."""
        now = self.clock()
        alarm_at = entry.get("alarm_at")
        if alarm_at is not None and \
                now - datetime.datetime.fromisoformat(alarm_at) < ALARM_EVERY:
            return
        entry["alarm_at"] = now.isoformat()
        host = entry["host"]
        self.log.error(
            "%s: OPERATOR ACTION NEEDED: the recovery of this host failed "
            "%d times (last: %s, execution %s); instance-ha will not start "
            "it again.  Check the VMs still on %s ('instance-ha status %s'), "
            "fix the cause, then run the workflow by hand ('instance-ha "
            "evacuate %s')", host, self.config.max_attempts,
            entry.get("why", "?"), entry["execution_id"], host,
            entry["execution_id"], host)

    def _start(self, entry, attempt):
        fenced_at = datetime.datetime.fromisoformat(entry["fenced_at"])
        execution = handoff.start(
            self.client, entry["host"], fenced_at, attempt,
            self.config.workflow, self.config.on_shared_storage, self.origin,
            self.config.workflow_input(entry["host"],
                                       entry.get("inferred", False)))
        entry.update(attempt=attempt, execution_id=execution.id,
                     fingerprint=None, outcome=None,
                     progress_at=self.clock().isoformat())
        self.log.warning("%s: recovery run %d/%d started: execution %s (%s)",
                         entry["host"], attempt + 1, self.config.max_attempts,
                         execution.id, execution.state)
        self.record(entry)


def orphaned_tasks(scan, now):
    """Names of the run's tasks left IDLE for ORPHANED_TASK_AGE."""
    return [f"{task.name} {task.id}"
            for execution in scan.unfinished()
            for task in scan.tasks.get(execution.id, ())
            if task.state == "IDLE" and task.created_at
            and now - _mistral_time(task.created_at) >= ORPHANED_TASK_AGE]


def never_completed(scan, now):
    """Executions RUNNING, unchanged for ORPHANED_TASK_AGE, whose every
    task finished at least that long ago."""
    found = []
    for execution in scan.unfinished():
        if execution.state != "RUNNING" or not execution.updated_at:
            continue
        if now - _mistral_time(execution.updated_at) < ORPHANED_TASK_AGE:
            continue
        tasks = scan.tasks.get(execution.id)
        if not tasks or any(t.state not in FINISHED_TASK_STATES
                            for t in tasks):
            continue
        last = max(_mistral_time(t.updated_at or t.created_at)
                   for t in tasks)
        if now - last >= ORPHANED_TASK_AGE:
            found.append(f"{execution.workflow_name} {execution.id}")
    return found


def never_completed_tasks(scan, now):
    """Tasks RUNNING, unchanged for NEVER_COMPLETED_TASK_AGE, whose every
    sub-workflow or action execution finished at least that long ago."""
    found = []
    for execution in scan.unfinished():
        for task in scan.tasks.get(execution.id, ()):
            subs = scan.subs.get(task.id)
            if task.state != "RUNNING" or not subs:
                continue
            if any(s.state not in FINISHED_TASK_STATES or not s.updated_at
                   for s in subs):
                continue
            last = max([_mistral_time(s.updated_at) for s in subs]
                       + [_mistral_time(task.updated_at or task.created_at)])
            if now - last >= NEVER_COMPLETED_TASK_AGE:
                found.append(f"{task.name} {task.id}")
    return found


# The stalls Mistral never leaves by itself, each found without waiting
# for watchdog_timeout: (finder, what the log says, why it is recorded).
STALL_RULES = (
    (orphaned_tasks, "task(s) that never started", "task(s) never started"),
    (never_completed,
     "execution(s) whose tasks all finished but which were never completed",
     "execution(s) never completed"),
    (never_completed_tasks,
     "task(s) whose sub-workflows or actions all finished but which were "
     "never completed", "task(s) never completed"),
)


def _mistral_time(text):
    """Mistral's API times: UTC, whole seconds."""
    return datetime.datetime.strptime(text, MISTRAL_TIME).replace(
        tzinfo=datetime.timezone.utc)


def _output(execution):
    """The execution's output as a dict ({} when it has none)."""
    try:
        output = json.loads(getattr(execution, "output", None) or "{}")
    except (TypeError, ValueError):
        return {}
    return output if isinstance(output, dict) else {}


def _counts(execution):
    counts = _output(execution).get("counts")
    return f" ({json.dumps(counts, sort_keys=True)})" if counts else ""
