"""The monitoring loop: reads in sequence, debounce, hand-over to a
Mistral-like server on 127.0.0.1, the CIB record, restarts."""

import datetime
import logging
import threading

import pytest

from instance_ha import mistral_client
from instance_ha.hostmonitor import daemon
from instance_ha.hostmonitor import decision
from instance_ha.hostmonitor import pcmk
from instance_ha.hostmonitor import store
from instance_ha.hostmonitor import trigger

START = datetime.datetime(2026, 11, 21, 6, 0, tzinfo=datetime.timezone.utc)


class Script:
    """Plays a list of reads; each is a ClusterStatus or an exception."""

    def __init__(self, reads):
        self.reads = list(reads)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        item = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        if isinstance(item, Exception):
            raise item
        return item


class Clock:
    def __init__(self, start=START):
        self.now = start

    def __call__(self):
        self.now += datetime.timedelta(seconds=10)
        return self.now


@pytest.fixture
def fenced(mon, history):
    return mon("rn1-fenced").with_fence_events(history("rn1-after-failure"))


@pytest.fixture
def online(mon):
    return mon("remotes-online").with_fence_events(())


@pytest.fixture
def records(cib_copy, cib_env):
    return store.CibStore(env=cib_env(cib_copy("rn1-fenced")))


@pytest.fixture
def start_workflow(fake_mistral):
    client = mistral_client.connect(mistral_url=fake_mistral.url, timeout=5)
    return trigger.Trigger(client, on_shared_storage=True,
                           origin="test hostmonitor")


def monitor_for(reads, start_workflow, records=None, debounce=2,
                threshold=50, start=START):
    return daemon.HostMonitor(
        read=Script(reads), trigger=start_workflow, store=records,
        policy=decision.Policy(debounce=debounce,
                               threshold_percent=threshold),
        clock=Clock(start))


def test_failure_is_handed_over_once_after_debounce(
        fenced, online, fake_mistral, start_workflow, records, caplog):
    caplog.set_level(logging.DEBUG, logger="instance_ha.hostmonitor")
    fenced_at = fenced.fence_events[0].completed
    # Seen online (by this monitor) well before the fence.
    monitor = monitor_for([online, fenced, fenced, fenced, fenced],
                          start_workflow, records,
                          start=fenced_at - datetime.timedelta(minutes=5))
    monitor.step()
    monitor.step()
    assert fake_mistral.posts == []  # one read is not enough
    monitor.step()
    assert len(fake_mistral.posts) == 1
    monitor.step()
    monitor.step()
    assert len(fake_mistral.posts) == 1
    expected_id = trigger.execution_id("rn1", fenced_at)
    assert records.get("rn1") == store.Handoff(
        host="rn1", execution_id=expected_id,
        failure=trigger.failure_key("rn1", fenced_at))
    messages = [r.getMessage() for r in caplog.records]
    assert f"rn1: handed to Mistral: execution {expected_id} (RUNNING)" in \
        messages
    assert any(m.startswith("remote rn1: failed_fenced: ") for m in messages)
    assert all("\n" not in m for m in messages)


def test_restart_does_not_hand_over_again(fenced, fake_mistral,
                                          start_workflow, records):
    first = monitor_for([fenced], start_workflow, records, debounce=1)
    first.step()
    assert len(fake_mistral.posts) == 1
    restarted = monitor_for([fenced], start_workflow, records, debounce=1)
    restarted.step()
    restarted.step()
    assert len(fake_mistral.posts) == 1


def test_without_store_a_restart_repeats_but_mistral_dedups(
        fenced, fake_mistral, start_workflow):
    for _ in range(2):
        monitor_for([fenced], start_workflow, debounce=1).step()
    assert len(fake_mistral.posts) == 2
    assert len(fake_mistral.executions) == 1


def test_back_online_clears_the_record(fenced, online, fake_mistral,
                                       start_workflow, records):
    monitor = monitor_for([fenced, online, online], start_workflow,
                          records, debounce=1)
    monitor.step()
    assert records.get("rn1") is not None
    monitor.step()
    assert records.get("rn1") is None
    # A record left by an earlier run is cleared too.
    records.record(store.Handoff(host="rn2", execution_id="old",
                                 failure="rn2@x"))
    later = monitor_for([online], start_workflow, records, debounce=1)
    later.step()
    assert records.all() == {}


def test_unreadable_cluster_decides_nothing(fenced, fake_mistral,
                                            start_workflow, caplog):
    broken = pcmk.ClusterReadError("crm_mon: not found")
    monitor = monitor_for([broken, broken, fenced], start_workflow,
                          debounce=1)
    assert monitor.step() is None
    assert monitor.step() is None
    assert fake_mistral.posts == []
    assert "cannot read the cluster" in caplog.text
    assert monitor.step() is not None
    assert len(fake_mistral.posts) == 1


def test_mass_failure_triggers_nothing(mon, history, fake_mistral,
                                       start_workflow, caplog):
    two_down = mon("rn1-rn2-fenced").with_fence_events(
        history("all-rn1-rn2"))
    monitor = monitor_for([two_down], start_workflow, debounce=1)
    monitor.step()
    monitor.step()
    assert fake_mistral.posts == []
    errors = [r.getMessage() for r in caplog.records
              if r.levelno == logging.ERROR]
    assert errors and errors[0].startswith(
        "MASS FAILURE, NOTHING TRIGGERED: 2 of 3 compute hosts are down")


def test_no_quorum_triggers_nothing(mon, history, fake_mistral,
                                    start_workflow):
    status = mon("rn1-fenced-noquorum").with_fence_events(
        history("rn1-after-failure"))
    monitor_for([status], start_workflow, debounce=1).step()
    assert fake_mistral.posts == []


def test_unfenced_failure_triggers_nothing(mon, history, fake_mistral,
                                           start_workflow):
    lost = mon("rn1-lost").with_fence_events(history("rn1-pending"))
    monitor = monitor_for([lost], start_workflow, debounce=1)
    monitor.step()
    monitor.step()
    assert fake_mistral.posts == []


def test_mistral_down_is_retried_next_round(fenced, fake_mistral,
                                            start_workflow, records, caplog):
    fake_mistral.fail_next = 1
    monitor = monitor_for([fenced], start_workflow, records, debounce=1)
    monitor.step()
    assert records.get("rn1") is None
    assert "could not start the evacuation workflow" in caplog.text
    monitor.step()
    assert records.get("rn1") is not None
    assert len(fake_mistral.executions) == 1


def test_unchanged_decisions_are_logged_at_debug(online, start_workflow,
                                                 caplog):
    caplog.set_level(logging.DEBUG, logger="instance_ha.hostmonitor")
    monitor = monitor_for([online], start_workflow)
    monitor.step()
    monitor.step()
    rn1 = [r for r in caplog.records
           if r.getMessage().startswith("remote rn1: online")]
    assert [r.levelno for r in rn1] == [logging.INFO, logging.DEBUG]


def test_run_loop_stops(online, start_workflow):
    monitor = monitor_for([online], start_workflow)
    daemon.run(monitor, interval=0.01, iterations=3)
    assert monitor.read.calls == 3
    stop = threading.Event()
    stop.set()
    daemon.run(monitor, interval=0.01, stop=stop)
    assert monitor.read.calls == 3


def test_run_loop_survives_a_bug(online, start_workflow, caplog):
    monitor = monitor_for([online], start_workflow)
    monitor.read = Script([ZeroDivisionError("bug")])
    daemon.run(monitor, interval=0.01, iterations=2)
    assert monitor.read.calls == 2
    assert "hostmonitor step failed" in caplog.text
