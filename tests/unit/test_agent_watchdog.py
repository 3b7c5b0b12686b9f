"""The watchdog (instance_ha.agent.watchdog) on an in-memory Mistral:
stall detection, forcing stuck executions to ERROR, the next attempt
under the next deterministic id, bounded retries, the operator message."""

import datetime
import logging

import pytest
from test_agent_monitor import Clock
from test_agent_monitor import Execution
from test_agent_monitor import FakeClient
from test_agent_monitor import Task

from instance_ha.agent import config as config_module
from instance_ha.agent import handoff
from instance_ha.agent import watchdog

FENCED_AT = datetime.datetime(2026, 11, 21, 6, 19, 38,
                              tzinfo=datetime.timezone.utc)


def _mistral_time(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class Dog:
    def __init__(self, caplog, **params):
        environ = {"OCF_RESKEY_mistral_url": "http://127.0.0.1:9/v2"}
        environ.update({f"OCF_RESKEY_{k}": str(v)
                        for k, v in params.items()})
        self.config = config_module.from_environ(environ)
        self.client = FakeClient()
        self.clock = Clock(FENCED_AT + datetime.timedelta(seconds=5))
        self.recorded = []
        self.fenced = (True, "rn1 failed and fenced")
        caplog.set_level(logging.DEBUG, logger="test.watchdog")
        self.dog = watchdog.Watchdog(
            self.client, self.config, logging.getLogger("test.watchdog"),
            "test", record=lambda e: self.recorded.append(dict(e)),
            clock=self.clock, fenced_now=lambda entry: self.fenced)
        first = handoff.start(self.client, "rn1", FENCED_AT, 0,
                              self.config.workflow, True, "test")
        self.entry = watchdog.new_entry(
            "rn1", FENCED_AT, "rn1@x", 0, first.id, self.clock())
        self.executions = self.client.executions

    def root(self):
        return self.executions.items[self.entry["execution_id"]]

    def add_child(self, state="RUNNING"):
        kids = self.executions.children.setdefault(
            self.entry["execution_id"], [])
        child = Execution({"id": f"child-{len(kids)}",
                           "workflow_name": "instance_ha.instance_evacuate"},
                          state=state, created_at=_mistral_time(self.clock()))
        kids.append(child)
        return child

    def touch(self, execution):
        """It moved on now (Mistral's updated_at)."""
        execution.updated_at = _mistral_time(self.clock())

    def check(self, advance=0):
        self.clock.advance(advance)
        self.dog.check(self.entry)


@pytest.fixture
def make(caplog):
    return lambda **params: Dog(caplog, **params)


def test_progress_keeps_it_running(make):
    d = make(watchdog_timeout=60)
    child = d.add_child()
    d.check()
    for _ in range(5):
        d.touch(child)  # a child moved
        d.check(advance=50)
    assert d.executions.updates == []
    assert len(d.executions.posts) == 1
    assert d.entry["outcome"] is None


def test_a_stalled_run_is_failed_and_started_again(make, caplog):
    d = make(watchdog_timeout=60)
    stuck = d.add_child("RUNNING")
    done = d.add_child("SUCCESS")
    d.check()  # first look
    d.check(advance=30)
    assert d.executions.updates == []
    d.check(advance=31)  # 61 s without any change
    first_id = handoff.execution_id("rn1", FENCED_AT, 0)
    assert d.executions.updates == [(stuck.id, "ERROR"), (first_id, "ERROR")]
    assert done.state == "SUCCESS"
    second_id = handoff.execution_id("rn1", FENCED_AT, 1)
    assert [p["id"] for p in d.executions.posts] == [first_id, second_id]
    assert d.executions.posts[1]["description"].endswith(", attempt 2")
    assert d.entry["attempt"] == 1
    assert d.entry["execution_id"] == second_id
    assert d.recorded[-1]["execution_id"] == second_id
    assert "made no progress for 61 s" in caplog.text
    # The new run is watched from scratch.
    d.check(advance=10)
    assert len(d.executions.posts) == 2


def test_a_task_never_started_restarts_the_run_without_waiting(
        make, caplog):
    """A task left IDLE (its start message died with an engine) is never
    started by a distributed Mistral: the run is failed and started again
    two minutes after the task's creation, even while other VMs still
    make progress, long before watchdog_timeout."""
    d = make(watchdog_timeout=900)
    child = d.add_child("RUNNING")
    busy = d.add_child("RUNNING")
    created = d.clock() - datetime.timedelta(seconds=30)
    d.client.tasks.items += [
        Task("evacuate_server", child.id, created_at=_mistral_time(created)),
        # IDLE tasks of other workflows are not ours to judge.
        Task("other", "someone-else", created_at="2026-11-21 05:00:00"),
        Task("started", child.id, state="RUNNING",
             created_at="2026-11-21 05:00:00")]
    for _ in range(4):
        d.touch(busy)  # another VM moves on
        d.check(advance=20)
    assert d.executions.updates == []  # 110 s old: a slow start, maybe
    d.touch(busy)
    d.check(advance=15)
    assert sorted(d.executions.updates) == sorted([
        (child.id, "ERROR"), (busy.id, "ERROR"),
        (handoff.execution_id("rn1", FENCED_AT, 0), "ERROR")])
    assert d.entry["execution_id"] == handoff.execution_id("rn1", FENCED_AT,
                                                           1)
    assert "has 1 task(s) that never started (evacuate_server " \
        "task-evacuate_server)" in caplog.text


def test_an_execution_whose_tasks_all_finished_restarts_the_run(
        make, caplog):
    """A child still RUNNING two minutes after its last task finished
    lost its completion with the process that ran it: failed and started
    again, while a child that waits in a running task is not."""
    d = make(watchdog_timeout=900)
    lost = d.add_child("RUNNING")
    waiting = d.add_child("RUNNING")
    late = d.add_child("RUNNING")
    started = _mistral_time(d.clock())
    d.client.tasks.items += [
        Task("wait_until_moved", lost.id, state="SUCCESS",
             created_at=started),
        Task("unlock_server", lost.id, state="SUCCESS", created_at=started),
        Task("lock_server", waiting.id, state="SUCCESS", created_at=started),
        Task("wait_until_moved", waiting.id, state="RUNNING",
             created_at=started)]
    # Its last task finished just now: its completion may be on its way.
    d.client.tasks.items.append(Task(
        "unlock_server", late.id, state="SUCCESS",
        created_at=_mistral_time(d.clock() + datetime.timedelta(
            seconds=119))))
    d.check(advance=60)
    d.check(advance=59)
    assert d.executions.updates == []
    d.check(advance=2)
    assert (lost.id, "ERROR") in d.executions.updates
    assert d.entry["execution_id"] == handoff.execution_id("rn1", FENCED_AT,
                                                           1)
    assert "has 1 execution(s) whose tasks all finished but which were " \
        f"never completed (instance_ha.instance_evacuate {lost.id})" in \
        caplog.text


def test_a_task_whose_sub_workflows_all_finished_restarts_the_run(
        make, caplog):
    """A with-items task still RUNNING after every one of its per-VM runs
    finished: their completions died with the process (and with them its
    concurrency slots), and Mistral's integrity checker cannot complete
    it.  It is failed and started again 4 min 20 s after the last child
    finished (two integrity checks), long before watchdog_timeout; a task
    with a child still running is not judged."""
    d = make(watchdog_timeout=900)
    root_id = d.entry["execution_id"]
    stuck = Task("evacuate_servers", root_id, state="RUNNING",
                 created_at=_mistral_time(d.clock()))
    busy = Task("evacuate_other", root_id, state="RUNNING",
                created_at=_mistral_time(d.clock()))
    d.client.tasks.items += [stuck, busy]
    done = [d.add_child("SUCCESS"), d.add_child("SUCCESS")]
    for child in done:
        child.task_execution_id = stuck.id
    running = d.add_child("RUNNING")
    running.task_execution_id = busy.id
    d.check(advance=60)
    d.touch(done[1])  # the last per-VM run finished a minute later
    d.check(advance=200)
    d.check(advance=59)  # 4 min 19 s after it
    assert d.executions.updates == []
    d.check(advance=1)
    assert sorted(d.executions.updates) == sorted([
        (running.id, "ERROR"), (root_id, "ERROR")])
    assert d.entry["execution_id"] == handoff.execution_id("rn1", FENCED_AT,
                                                           1)
    assert "has 1 task(s) whose sub-workflows or actions all finished but " \
        "which were never completed (evacuate_servers " \
        "task-evacuate_servers)" in caplog.text


def test_a_run_in_error_is_retried_a_bounded_number_of_times(make, caplog):
    d = make(max_attempts=3)
    for attempt in range(3):
        assert d.entry["attempt"] == attempt
        d.root().state = "ERROR"
        d.root().state_info = "Failure caused by error in tasks: ..."
        d.check(advance=10)
    ids = [p["id"] for p in d.executions.posts]
    assert ids == [handoff.execution_id("rn1", FENCED_AT, n)
                   for n in range(3)]
    assert d.entry["outcome"] == "EXHAUSTED"
    assert "OPERATOR ACTION NEEDED" in caplog.text
    assert "failed 3 times" in caplog.text
    # Finished: nothing more, however often the monitor runs.
    for _ in range(5):
        d.check(advance=60)
    assert len(d.executions.posts) == 3
    assert watchdog.finished(d.entry)


def test_the_operator_message_repeats_while_stalled_for_good(make, caplog):
    d = make(max_attempts=1, watchdog_timeout=60)
    d.check()
    d.check(advance=61)
    assert d.entry["outcome"] == "EXHAUSTED"
    assert caplog.text.count("OPERATOR ACTION NEEDED") == 1
    assert "stalled for 61 s" in caplog.text
    d.check(advance=300)
    assert caplog.text.count("OPERATOR ACTION NEEDED") == 1
    d.check(advance=300)  # 10 minutes after the first message
    assert caplog.text.count("OPERATOR ACTION NEEDED") == 2
    assert len(d.executions.posts) == 1  # no second run
    assert d.executions.updates[-1][1] == "ERROR"


def test_success_ends_the_watch(make, caplog):
    d = make()
    d.root().state = "SUCCESS"
    d.root().output = '{"counts": {"moved": 4, "failed": 0}}'
    d.check()
    assert d.entry["outcome"] == "SUCCESS"
    assert '"moved": 4' in caplog.text
    d.check(advance=3600)
    assert d.executions.updates == [] and len(d.executions.posts) == 1


def test_an_aborted_run_is_never_started_again(make, caplog):
    """instance-ha abort: the run ends in ERROR, its output names the
    reason; the watchdog reports it and starts nothing, though the host
    is still fenced and attempts are left."""
    d = make(max_attempts=3)
    d.root().state = "ERROR"
    d.root().state_info = "host rn1: recovery aborted (maintenance): ..."
    d.root().output = ('{"aborted": "maintenance", "counts": {"moved": 1, '
                       '"not_attempted": 3}}')
    d.check(advance=10)
    assert d.entry["outcome"] == "ABORTED"
    assert watchdog.finished(d.entry)
    assert "was aborted (maintenance)" in caplog.text
    assert "will not start it again" in caplog.text
    for _ in range(5):
        d.check(advance=600)
    assert len(d.executions.posts) == 1 and d.executions.updates == []
    assert "OPERATOR ACTION NEEDED" not in caplog.text


def test_paused_is_left_to_the_operator(make):
    d = make(watchdog_timeout=60)
    d.root().state = "PAUSED"
    for _ in range(5):
        d.check(advance=100)
    assert d.executions.updates == [] and len(d.executions.posts) == 1


def test_a_vanished_execution_is_started_again_under_its_id(make):
    d = make()
    first_id = d.entry["execution_id"]
    del d.executions.items[first_id]
    d.check()
    assert [p["id"] for p in d.executions.posts] == [first_id, first_id]
    assert first_id in d.executions.items
    assert d.entry["attempt"] == 0


def test_attempt_ids_are_distinct_and_recognised():
    ids = [handoff.execution_id("rn1", FENCED_AT, n) for n in range(5)]
    assert len(set(ids)) == 5
    assert all(handoff.attempt_of("rn1", FENCED_AT, i) == n
               for n, i in enumerate(ids))
    later = FENCED_AT + datetime.timedelta(seconds=1)
    assert handoff.attempt_of("rn1", later, ids[0]) is None


NOT_FENCED = (False, "rn1 is not failed and fenced now (online: back)")


def test_nothing_starts_while_the_host_is_not_fenced_now(make, caplog):
    """A run in error, a stalled run and a vanished execution: none is
    started again, and no run is failed, until the cluster read shows the
    host failed and fenced for this failure again."""
    d = make(watchdog_timeout=60)
    d.fenced = NOT_FENCED
    d.root().state = "ERROR"
    for _ in range(3):
        d.check(advance=10)
    assert len(d.executions.posts) == 1
    assert caplog.text.count("NOT starting recovery run 2/") == 1
    assert "watching only" in caplog.text
    d.fenced = (True, "rn1 failed and fenced")
    d.check(advance=10)
    assert len(d.executions.posts) == 2
    assert d.entry["attempt"] == 1 and "held" not in d.entry


def test_a_stalled_run_is_left_alone_while_not_fenced_now(make):
    d = make(watchdog_timeout=60)
    d.add_child("RUNNING")
    d.check()
    d.fenced = NOT_FENCED
    d.check(advance=61)
    d.check(advance=61)
    assert d.executions.updates == []
    assert len(d.executions.posts) == 1
    d.fenced = (True, "rn1 failed and fenced")
    d.check(advance=1)
    assert len(d.executions.updates) == 2 and len(d.executions.posts) == 2


def test_a_vanished_execution_waits_for_the_fencing_too(make):
    d = make()
    d.fenced = NOT_FENCED
    del d.executions.items[d.entry["execution_id"]]
    d.check()
    assert len(d.executions.posts) == 1


def test_without_a_gate_nothing_ever_starts(caplog):
    config = config_module.from_environ(
        {"OCF_RESKEY_mistral_url": "http://127.0.0.1:9/v2"})
    client = FakeClient()
    first = handoff.start(client, "rn1", FENCED_AT, 0, config.workflow,
                          True, "test")
    first.state = "ERROR"
    dog = watchdog.Watchdog(client, config, logging.getLogger("t"), "test")
    entry = watchdog.new_entry("rn1", FENCED_AT, "rn1@x", 0, first.id,
                               FENCED_AT)
    dog.check(entry)
    assert len(client.executions.posts) == 1
    assert entry["held"] == "no cluster read confirms the fencing"


def _task_calls(d):
    return [c["workflow_execution_id"] for c in d.client.tasks.calls]


def test_the_stall_scan_reads_the_run_per_execution(make):
    """The tasks read are those of this run's unfinished executions, one
    request each, and the executions those below its root: never
    Mistral's whole task list (cut at 1000 items, and mostly others')."""
    d = make(watchdog_timeout=900)
    root_id = d.entry["execution_id"]
    running = d.add_child("RUNNING")
    done = d.add_child("SUCCESS")
    d.client.tasks.items += [
        Task("evacuate_servers", root_id, state="RUNNING"),
        Task("wait_until_moved", running.id, state="RUNNING"),
        Task("unlock_server", done.id, state="SUCCESS")] + [
        Task(f"other{i:04d}", f"other-run-{i}", state="IDLE")
        for i in range(1500)]
    d.check()
    assert all(_task_calls(d)), d.client.tasks.calls
    assert sorted(_task_calls(d)) == sorted([root_id, running.id])
    assert d.executions.lists == [{"root_execution_id": root_id,
                                   "marker": "", "limit": watchdog.PAGE}]
    assert d.executions.updates == []


def test_a_task_never_started_is_found_on_a_busy_mistral(make, caplog):
    """1200 IDLE tasks of other runs, older than this run's: Mistral's
    task list (1000 at most) does not reach this run's orphan; the scan
    of its own execution does."""
    d = make(watchdog_timeout=900)
    child = d.add_child("RUNNING")
    d.client.tasks.items += [
        Task(f"other{i:04d}", f"other-run-{i}",
             created_at="2026-11-21 05:00:00") for i in range(1200)]
    d.client.tasks.items.append(Task(
        "evacuate_server", child.id, created_at=_mistral_time(
            d.clock() - datetime.timedelta(minutes=3))))
    d.check()
    assert (child.id, "ERROR") in d.executions.updates
    assert d.entry["execution_id"] == handoff.execution_id("rn1", FENCED_AT,
                                                           1)
    assert "has 1 task(s) that never started (evacuate_server " \
        "task-evacuate_server)" in caplog.text


def _children_of(d, task, states):
    """Sub-workflow executions of ``task``, created in this order, one
    second apart (Mistral lists them by created_at)."""
    kids = d.executions.children.setdefault(d.entry["execution_id"], [])
    start = d.clock() - datetime.timedelta(hours=1)
    for state in states:
        child = Execution(
            {"id": f"sub-{len(kids):05d}",
             "workflow_name": "instance_ha.instance_evacuate"}, state=state,
            created_at=_mistral_time(start + datetime.timedelta(
                seconds=len(kids))))
        child.task_execution_id = task.id
        kids.append(child)
    return kids


def test_a_with_items_task_is_judged_on_all_its_sub_workflows(make):
    """1050 per-VM runs of one with-items task, the last 50 still
    running: past Mistral's 1000-item list, read page by page, they keep
    the task from being taken for one whose sub-workflows all finished."""
    d = make(watchdog_timeout=900)
    root_id = d.entry["execution_id"]
    task = Task("evacuate_servers", root_id, state="RUNNING",
                created_at=_mistral_time(d.clock()))
    d.client.tasks.items.append(task)
    kids = _children_of(d, task, ["SUCCESS"] * 1000 + ["RUNNING"] * 50)
    d.check()
    d.check(advance=watchdog.NEVER_COMPLETED_TASK_AGE.total_seconds() + 60)
    assert d.executions.updates == []
    assert len(d.executions.posts) == 1
    # 1050 executions, 100 a page, each after the last one's id.
    pages = d.executions.lists[:len(d.executions.lists) // 2]
    assert [p["marker"] for p in pages] == [""] + [
        kids[n * watchdog.PAGE - 1].id for n in range(1, 11)]


def test_the_tasks_of_an_execution_are_read_page_by_page(make, caplog):
    d = make(watchdog_timeout=900)
    child = d.add_child("RUNNING")
    old = _mistral_time(d.clock() - datetime.timedelta(minutes=30))
    d.client.tasks.items += [
        Task(f"done{i:03d}", child.id, state="SUCCESS", created_at=old)
        for i in range(150)]
    d.client.tasks.items.append(Task(
        "evacuate_server", child.id, created_at=_mistral_time(
            d.clock() - datetime.timedelta(minutes=3))))
    d.check()
    mine = [c for c in d.client.tasks.calls
            if c["workflow_execution_id"] == child.id]
    assert [c["marker"] for c in mine] == ["", "task-done099"]
    assert "has 1 task(s) that never started (evacuate_server " \
        "task-evacuate_server)" in caplog.text


def test_a_run_too_large_to_read_is_not_judged(make, monkeypatch, caplog):
    """More executions than MAX_PAGES pages: the requests stop there,
    and nothing is judged on a part of the run (said once)."""
    monkeypatch.setattr(watchdog, "MAX_PAGES", 3)
    d = make(watchdog_timeout=900)
    task = Task("evacuate_servers", d.entry["execution_id"],
                state="RUNNING", created_at=_mistral_time(d.clock()))
    d.client.tasks.items.append(task)
    _children_of(d, task, ["SUCCESS"] * 301)
    for _ in range(3):
        d.check(advance=300)
    assert len(d.executions.lists) == 3 * 3
    assert d.executions.updates == [] and len(d.executions.posts) == 1
    assert caplog.text.count("is too large to judge (more than 300 "
                             "items)") == 1
