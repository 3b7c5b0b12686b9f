"""The ``instance-ha hostmonitor`` loop: the agent's monitor pass
(instance_ha.agent.monitor) on reads in sequence, against a Mistral-like
server on 127.0.0.1 and the CIB record on a CIB file: debounce, hand-over,
the watchdog's restarts under the next id, the fenced-now gate, the state
file, restarts of the daemon."""

import datetime
import json
import logging
import threading
import urllib.parse

import pytest

from instance_ha import mistral_client
from instance_ha.agent import handoff
from instance_ha.agent import statefile
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
    """Ten seconds later at every pass (the pass reads it once)."""

    def __init__(self, start=START):
        self.now = start

    def __call__(self):
        self.now += datetime.timedelta(seconds=10)
        return self.now


# What a real execution has and conftest's fake_mistral leaves out.
EXECUTION_FIELDS = {"state_info": None, "output": "{}",
                    "updated_at": "2026-11-21 06:00:00"}


@pytest.fixture
def mistral(fake_mistral):
    """conftest's Mistral-like server on 127.0.0.1, with what the
    watchdog asks too: the executions below a root, an execution's tasks
    (none here), setting an execution's state."""

    class Handler(fake_mistral.RequestHandlerClass):
        def do_GET(self):
            parsed = urllib.parse.urlparse(self.path)
            parts = parsed.path.split("/")  # "", "v2", "executions", ...
            executions = self.server.executions
            root = urllib.parse.parse_qs(parsed.query).get(
                "root_execution_id", [None])[0]
            if parsed.path == "/v2/executions" and root:
                return self._send(200, {"executions": [
                    e for e in executions.values()
                    if e.get("root_execution_id") == root]})
            if len(parts) == 5 and parts[4] == "tasks":
                return self._send(200, {"tasks": []})
            if len(parts) == 4 and parts[3] in executions:
                return self._send(200, dict(EXECUTION_FIELDS,
                                            **executions[parts[3]]))
            return super().do_GET()

        def do_PUT(self):
            body = json.loads(self.rfile.read(int(
                self.headers.get("Content-Length", 0))))
            execution_id = self.path.rsplit("/", 1)[1]
            self.server.updates.append((execution_id, body.get("state")))
            self.server.executions[execution_id]["state"] = body["state"]
            return self._send(200, self.server.executions[execution_id])

    fake_mistral.RequestHandlerClass = Handler
    fake_mistral.updates = []
    return fake_mistral


@pytest.fixture
def fenced(mon, history):
    return mon("rn1-fenced").with_fence_events(history("rn1-after-failure"))


@pytest.fixture
def fenced_at(fenced):
    return fenced.fence_events[0].completed


@pytest.fixture
def online(mon):
    return mon("remotes-online").with_fence_events(())


@pytest.fixture
def records(cib_copy, cib_env):
    return store.CibStore(env=cib_env(cib_copy("rn1-fenced")))


def monitor_for(reads, mistral, records=None, debounce=2, threshold=50,
                start=START, **settings):
    config = daemon.agent_config(
        decision.Policy(debounce=debounce, threshold_percent=threshold),
        mistral_url=mistral.url, request_timeout=5, **settings)
    return daemon.HostMonitor(
        config, read=Script(reads), store=records,
        connect=lambda: mistral_client.connect(mistral_url=mistral.url,
                                               timeout=5),
        clock=Clock(start), origin="test hostmonitor")


def test_failure_is_handed_over_once_after_debounce(
        fenced, online, mistral, records, fenced_at, caplog):
    caplog.set_level(logging.DEBUG, logger="instance_ha.hostmonitor")
    # Seen online (by this monitor) well before the fence.
    monitor = monitor_for([online, fenced, fenced, fenced, fenced],
                          mistral, records,
                          start=fenced_at - datetime.timedelta(minutes=5))
    monitor.step()
    monitor.step()
    assert mistral.posts == []  # one read is not enough
    monitor.step()
    assert len(mistral.posts) == 1
    monitor.step()
    monitor.step()
    assert len(mistral.posts) == 1
    expected_id = trigger.execution_id("rn1", fenced_at)
    assert records.get("rn1") == store.Handoff(
        host="rn1", execution_id=expected_id,
        failure=trigger.failure_key("rn1", fenced_at))
    assert "test hostmonitor" in mistral.posts[0]["description"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("rn1: failed and fenced (") and m.endswith(
        f"evacuation handed to Mistral: execution {expected_id} (RUNNING)")
        for m in messages), messages
    assert any(m.startswith("remote rn1: failed_fenced: ") for m in messages)
    assert all("\n" not in m for m in messages)
    # The watchdog follows the run at every later pass.
    assert "cannot follow" not in caplog.text


def test_restart_does_not_hand_over_again(fenced, mistral, records):
    first = monitor_for([fenced], mistral, records, debounce=1)
    first.step()
    assert len(mistral.posts) == 1
    restarted = monitor_for([fenced], mistral, records, debounce=1)
    restarted.step()
    restarted.step()
    assert len(mistral.posts) == 1


def test_without_store_a_restart_repeats_but_mistral_dedups(fenced,
                                                            mistral):
    for _ in range(2):
        monitor_for([fenced], mistral, debounce=1).step()
    assert len(mistral.posts) == 2
    assert len(mistral.executions) == 1


def test_back_online_clears_the_record(fenced, online, mistral, records):
    monitor = monitor_for([fenced, online, online], mistral, records,
                          debounce=1)
    monitor.step()
    assert records.get("rn1") is not None
    monitor.step()
    assert records.get("rn1") is None
    # A record left by an earlier run is cleared too.
    records.record(store.Handoff(host="rn2", execution_id="old",
                                 failure="rn2@x"))
    later = monitor_for([online], mistral, records, debounce=1)
    later.step()
    assert records.all() == {}


def test_unreadable_cluster_decides_nothing(fenced, mistral, caplog):
    broken = pcmk.ClusterReadError("crm_mon: not found")
    monitor = monitor_for([broken, broken, fenced], mistral, debounce=1)
    assert monitor.step() is None
    assert monitor.step() is None
    assert mistral.posts == []
    assert "cannot read the cluster" in caplog.text
    assert monitor.step() is not None
    assert len(mistral.posts) == 1


def test_mass_failure_triggers_nothing(mon, history, mistral, caplog):
    two_down = mon("rn1-rn2-fenced").with_fence_events(
        history("all-rn1-rn2"))
    monitor = monitor_for([two_down], mistral, debounce=1)
    monitor.step()
    monitor.step()
    assert mistral.posts == []
    errors = [r.getMessage() for r in caplog.records
              if r.levelno == logging.ERROR]
    assert errors and errors[0].startswith(
        "MASS FAILURE, NOTHING TRIGGERED: 2 of 3 compute hosts are down")


def test_no_quorum_triggers_nothing(mon, history, mistral):
    status = mon("rn1-fenced-noquorum").with_fence_events(
        history("rn1-after-failure"))
    monitor_for([status], mistral, debounce=1).step()
    assert mistral.posts == []


def test_unfenced_failure_triggers_nothing(mon, history, mistral):
    lost = mon("rn1-lost").with_fence_events(history("rn1-pending"))
    monitor = monitor_for([lost], mistral, debounce=1)
    monitor.step()
    monitor.step()
    assert mistral.posts == []


def test_mistral_down_is_retried_next_round(fenced, mistral, records,
                                            caplog):
    mistral.fail_next = 1
    monitor = monitor_for([fenced], mistral, records, debounce=1)
    monitor.step()
    assert records.get("rn1") is None
    assert "could not start the evacuation workflow" in caplog.text
    monitor.step()
    assert records.get("rn1") is not None
    assert len(mistral.executions) == 1


def test_a_run_in_error_is_started_again_under_the_next_id(
        fenced, mistral, records, fenced_at, caplog):
    """The agent's watchdog, in the daemon: a run that ended in ERROR is
    started again under attempt 2's id, and the CIB record follows."""
    monitor = monitor_for([fenced], mistral, records, debounce=1)
    monitor.step()
    first = trigger.execution_id("rn1", fenced_at)
    mistral.executions[first]["state"] = "ERROR"
    monitor.step()
    second = handoff.execution_id("rn1", fenced_at, 1)
    assert [p["id"] for p in mistral.posts] == [first, second]
    assert mistral.posts[1]["description"].endswith(", attempt 2")
    assert records.get("rn1").execution_id == second
    assert "recovery run 2/3 started" in caplog.text


def test_no_new_run_unless_the_host_is_fenced_now(fenced, mistral,
                                                  fenced_at, caplog):
    """The same gate as the agent: while the cluster cannot be read,
    the run in error is only observed."""
    broken = pcmk.ClusterReadError("crm_mon: exit status 102")
    monitor = monitor_for([fenced, broken, broken, fenced], mistral,
                          debounce=1)
    monitor.step()
    mistral.executions[trigger.execution_id("rn1", fenced_at)]["state"] = \
        "ERROR"
    monitor.step()
    monitor.step()
    assert len(mistral.posts) == 1
    assert "NOT starting recovery run 2/3" in caplog.text
    assert "the cluster could not be read this time" in caplog.text
    monitor.step()
    assert mistral.posts[-1]["id"] == handoff.execution_id("rn1",
                                                           fenced_at, 1)


def test_a_stalled_run_is_failed_and_started_again(fenced, mistral,
                                                   fenced_at, caplog):
    monitor = monitor_for([fenced], mistral, debounce=1,
                          watchdog_timeout=30)
    for _ in range(4):  # 10 s a pass: 30 s without progress at the 4th
        monitor.step()
    first = trigger.execution_id("rn1", fenced_at)
    assert mistral.updates == [(first, "ERROR")]
    assert mistral.posts[-1]["id"] == handoff.execution_id("rn1",
                                                           fenced_at, 1)
    assert "made no progress for 30 s" in caplog.text


def test_the_state_file_carries_the_watch_over_a_restart(
        fenced, mistral, fenced_at, tmp_path):
    """No CIB record (--no-store): the state file, in the agent's format,
    is what a restarted daemon goes on from."""
    path = str(tmp_path / "hostmonitor.state")
    first = monitor_for([fenced], mistral, debounce=1)
    first.state_path = path
    first.step()
    [entry] = statefile.load(path)["watch"].values()
    assert entry["execution_id"] == trigger.execution_id("rn1", fenced_at)
    mistral.executions[entry["execution_id"]]["state"] = "ERROR"
    restarted = daemon.HostMonitor(
        first.config, read=Script([fenced]), state_path=path,
        connect=first.connect, clock=Clock(first.clock.now),
        origin="test hostmonitor")
    restarted.step()
    assert [p["id"] for p in mistral.posts] == [
        entry["execution_id"], handoff.execution_id("rn1", fenced_at, 1)]


def test_a_run_recorded_by_the_agent_is_followed(fenced, mistral, records,
                                                 fenced_at):
    """The CIB record of the agent (attempt 2 of this failure, from
    another controller): the daemon follows that run, starts nothing new
    while it runs, and attempt 3 when it ends in ERROR."""
    second = handoff.execution_id("rn1", fenced_at, 1)
    handoff.start(mistral_client.connect(mistral_url=mistral.url), "rn1",
                  fenced_at, 1, trigger.WORKFLOW, True, "the agent")
    records.record(store.Handoff(host="rn1", execution_id=second,
                                 failure=trigger.failure_key("rn1",
                                                             fenced_at)))
    monitor = monitor_for([fenced], mistral, records, debounce=1)
    monitor.step()
    monitor.step()
    assert [p["id"] for p in mistral.posts] == [second]
    mistral.executions[second]["state"] = "ERROR"
    monitor.step()
    assert mistral.posts[-1]["id"] == handoff.execution_id("rn1",
                                                           fenced_at, 2)


def test_unchanged_decisions_are_logged_at_debug(online, mistral, caplog):
    caplog.set_level(logging.DEBUG, logger="instance_ha.hostmonitor")
    monitor = monitor_for([online], mistral)
    monitor.step()
    monitor.step()
    rn1 = [r for r in caplog.records
           if r.getMessage().startswith("remote rn1: online")]
    assert [r.levelno for r in rn1] == [logging.INFO, logging.DEBUG]


def test_run_loop_stops(online, mistral):
    monitor = monitor_for([online], mistral)
    daemon.run(monitor, interval=0.01, iterations=3)
    assert monitor.read.calls == 3
    stop = threading.Event()
    stop.set()
    daemon.run(monitor, interval=0.01, stop=stop)
    assert monitor.read.calls == 3


def test_run_loop_survives_a_bug(online, mistral, caplog):
    monitor = monitor_for([online], mistral)
    monitor.read = Script([ZeroDivisionError("bug")])
    daemon.run(monitor, interval=0.01, iterations=2)
    assert monitor.read.calls == 2
    assert "hostmonitor step failed" in caplog.text
