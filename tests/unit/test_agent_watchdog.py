"""The watchdog (instance_ha.agent.watchdog) on an in-memory Mistral:
stall detection, forcing stuck executions to ERROR, the next attempt
under the next deterministic id, bounded retries, the operator message."""

import datetime
import logging

import pytest
from test_agent_monitor import Clock
from test_agent_monitor import Execution
from test_agent_monitor import FakeClient

from instance_ha.agent import config as config_module
from instance_ha.agent import handoff
from instance_ha.agent import watchdog

FENCED_AT = datetime.datetime(2026, 11, 21, 6, 19, 38,
                              tzinfo=datetime.timezone.utc)


class Dog:
    def __init__(self, caplog, **params):
        environ = {"OCF_RESKEY_mistral_url": "http://127.0.0.1:9/v2"}
        environ.update({f"OCF_RESKEY_{k}": str(v)
                        for k, v in params.items()})
        self.config = config_module.from_environ(environ)
        self.client = FakeClient()
        self.clock = Clock(FENCED_AT + datetime.timedelta(seconds=5))
        self.recorded = []
        caplog.set_level(logging.DEBUG, logger="test.watchdog")
        self.dog = watchdog.Watchdog(
            self.client, self.config, logging.getLogger("test.watchdog"),
            "test", record=lambda e: self.recorded.append(dict(e)),
            clock=self.clock)
        first = handoff.start(self.client, "rn1", FENCED_AT, 0,
                              self.config.workflow, True, "test")
        self.entry = watchdog.new_entry(
            "rn1", FENCED_AT, "rn1@x", 0, first.id, self.clock())
        self.executions = self.client.executions

    def root(self):
        return self.executions.items[self.entry["execution_id"]]

    def add_child(self, state="RUNNING", updated_at="t0"):
        kids = self.executions.children.setdefault(
            self.entry["execution_id"], [])
        child = Execution({"id": f"child-{len(kids)}"}, state=state,
                          created_at=updated_at)
        kids.append(child)
        return child

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
    for minute in range(1, 6):
        child.updated_at = f"t{minute}"  # a child moved
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
