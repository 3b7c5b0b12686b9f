"""The instance monitor's decisions (computemonitor/instances.py) and its
table of libvirt events (lifecycle.py), its record (crashes.py) and the
process monitor's outages (outages.py), with a fake Mistral."""

import json
import queue
import threading

import pytest

from instance_ha.computemonitor import crashes
from instance_ha.computemonitor import instances
from instance_ha.computemonitor import jsonfile
from instance_ha.computemonitor import lifecycle
from instance_ha.computemonitor import outages

VM = instances.Domain(uuid="u1", name="instance-00000001", server="u1")
OTHER = instances.Domain(uuid="x9", name="not-nova", server=None)


class FakeMistral:
    """reporter.Reporter's two calls: executions kept by id, POST of a known
    id returns it (as Mistral does); ``down``: every call answers None."""

    def __init__(self):
        self.executions = {}
        self.started = []
        self.down = False

    def start(self, execution_id, workflow, wf_input, description):
        if self.down:
            return None
        if execution_id not in self.executions:
            self.started.append((execution_id, workflow, wf_input,
                                 description))
            self.executions[execution_id] = {"id": execution_id,
                                             "state": "RUNNING",
                                             "output": {}}
        return dict(self.executions[execution_id])

    def get(self, execution_id):
        if self.down:
            return None
        return dict(self.executions.get(execution_id) or {
            "id": None, "state": "MISSING", "output": {}})

    def end(self, state="SUCCESS", **output):
        (last,) = [e for e in self.executions.values()
                   if e["state"] == "RUNNING"]
        last.update(state=state, output=output)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def mistral():
    return FakeMistral()


@pytest.fixture
def make(tmp_path, mistral):
    clock = Clock()

    def make_monitor(**settings):
        monitor = instances.InstanceMonitor(
            "compute1", crashes.Record(str(tmp_path / "record.json")),
            mistral, clock=clock, **settings)
        monitor.clock_ = clock
        return monitor
    return make_monitor


# -- the table ---

@pytest.mark.parametrize("event, detail, crash", [
    ("STOPPED", "FAILED", True),
    ("STOPPED", "CRASHED", True),
    ("CRASHED", "PANICKED", True),
    ("STOPPED", "SHUTDOWN", False),
    ("STOPPED", "DESTROYED", False),
    ("STOPPED", "MIGRATED", False),
    ("STOPPED", "SAVED", False),
    ("SUSPENDED", "PAUSED", False),
    ("UNDEFINED", "REMOVED", False),
])
def test_which_events_are_crashes(event, detail, crash):
    assert lifecycle.of_event(event, detail).crash is crash


@pytest.mark.parametrize("state, reason, crash, running", [
    ("SHUTOFF", "CRASHED", True, False),
    ("SHUTOFF", "FAILED", True, False),
    ("CRASHED", "PANICKED", True, False),
    ("SHUTOFF", "DESTROYED", False, False),
    ("SHUTOFF", "SHUTDOWN", False, False),
    ("SHUTOFF", "UNKNOWN", False, False),
    ("RUNNING", "BOOTED", False, True),
    ("PAUSED", "USER", False, True),
])
def test_which_states_are_crashes(state, reason, crash, running):
    meaning = lifecycle.of_state(state, reason)
    assert (meaning.crash, meaning.running) == (crash, running)


def test_the_triggering_events_are_listed_for_the_docs():
    assert lifecycle.triggering_events() == ["CRASHED", "STOPPED_CRASHED",
                                             "STOPPED_FAILED"]


def crash(monitor):
    """VM seen running, then killed; one pass of the monitor."""
    monitor.event(VM, "STARTED", "BOOTED")
    monitor.event(VM, "STOPPED", "FAILED")
    monitor.step()


# -- one crash, one run ---

def test_a_crash_event_starts_one_restart_with_the_host(make, mistral):
    monitor = make()
    monitor.reconcile([(VM, "RUNNING", "BOOTED")])
    monitor.event(VM, "STOPPED", "FAILED")
    monitor.step()
    monitor.step()
    ((execution_id, workflow, wf_input, description),) = mistral.started
    assert workflow == "instance_ha.instance_restart"
    assert wf_input == {"server": "u1", "host": "compute1"}
    assert "STOPPED_FAILED" in description and "compute1" in description
    assert execution_id == monitor.record.execution_id("compute1", "u1", 1)


def test_a_repeated_event_and_a_reconcile_of_the_same_crash_start_nothing(
        make, mistral):
    monitor = make()
    crash(monitor)
    monitor.event(VM, "STOPPED", "FAILED")
    monitor.reconcile([(VM, "SHUTOFF", "CRASHED")])
    monitor.step()
    assert len(mistral.started) == 1


def test_nova_s_stop_and_a_guest_shutdown_start_nothing(make, mistral):
    monitor = make()
    for detail in ("SHUTDOWN", "DESTROYED", "MIGRATED", "SAVED"):
        monitor.event(VM, "STARTED", "BOOTED")
        monitor.event(VM, "STOPPED", detail)
    monitor.reconcile([(VM, "SHUTOFF", "DESTROYED")])
    monitor.step()
    assert mistral.started == []


def test_a_domain_without_nova_metadata_is_logged_and_ignored(
        make, mistral, caplog):
    monitor = make()
    monitor.reconcile([(OTHER, "RUNNING", "BOOTED")])
    monitor.event(OTHER, "STOPPED", "FAILED")
    monitor.step()
    assert mistral.started == []
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "no Nova instance metadata" in warnings[0].getMessage()


def test_a_second_crash_after_a_restart_is_a_second_run(make, mistral):
    monitor = make()
    crash(monitor)
    mistral.end(outcome="restarted", vm_state="active")
    monitor.step()
    crash(monitor)
    ids = [s[0] for s in mistral.started]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_a_restart_and_a_second_crash_while_the_monitor_was_away(
        make, mistral):
    """Seen crashed, then crashed again: a second crash only when the first
    run brought the VM back to active."""
    monitor = make()
    crash(monitor)
    mistral.end(outcome="restarted", vm_state="active")
    monitor.step()
    again = make()
    again.reconcile([(VM, "SHUTOFF", "CRASHED")])
    again.step()
    assert len(mistral.started) == 2


def test_a_vm_left_stopped_by_its_run_is_not_restarted_again(make, mistral):
    monitor = make()
    crash(monitor)
    mistral.end(outcome="restarted", vm_state="stopped")
    monitor.step()
    for _ in range(3):
        make().reconcile([(VM, "SHUTOFF", "CRASHED")])
    monitor.step()
    assert len(mistral.started) == 1


def test_a_crash_found_at_start_is_started_by_the_next_monitor(
        make, mistral):
    """The first monitor saw the crash but Mistral was down; its successor
    starts the run under the same id."""
    mistral.down = True
    first = make()
    first.event(VM, "STARTED", "BOOTED")
    first.event(VM, "STOPPED", "FAILED")
    first.step()
    assert mistral.started == []
    mistral.down = False
    second = make()
    second.reconcile([(VM, "SHUTOFF", "CRASHED")])
    second.step()
    ((execution_id, *_),) = mistral.started
    assert execution_id == second.record.execution_id("compute1", "u1", 1)


def test_mistral_unreachable_keeps_the_crash_until_it_answers(make, mistral):
    monitor = make()
    monitor.event(VM, "STARTED", "BOOTED")
    mistral.down = True
    monitor.event(VM, "STOPPED", "FAILED")
    for _ in range(5):
        monitor.step()
    mistral.down = False
    monitor.step()
    assert len(mistral.started) == 1


def test_a_failed_run_is_attempted_again_while_the_vm_is_crashed(
        make, mistral):
    monitor = make(max_attempts=3, retry_after=30)
    crash(monitor)
    mistral.end("ERROR", outcome="failed")
    monitor.step()
    monitor.step()
    assert len(mistral.started) == 1, "not before retry_after"
    monitor.clock_.now = 31
    monitor.step()
    assert len(mistral.started) == 2
    assert "attempt 2" in mistral.started[1][3]
    mistral.end("ERROR", outcome="failed")
    monitor.step()
    monitor.clock_.now = 62
    monitor.step()
    mistral.end("ERROR", outcome="failed")
    monitor.step()
    monitor.clock_.now = 100
    monitor.step()
    assert len(mistral.started) == 3, "max_attempts"


def test_a_crash_loop_skip_is_not_attempted_again(make, mistral):
    monitor = make(retry_after=0)
    crash(monitor)
    mistral.end("ERROR", outcome="skipped")
    for _ in range(3):
        monitor.step()
    assert len(mistral.started) == 1


def test_a_domain_gone_from_libvirt_is_forgotten(make):
    monitor = make()
    monitor.reconcile([(VM, "RUNNING", "BOOTED")])
    assert "u1" in monitor.record.domains
    monitor.reconcile([])
    assert monitor.record.domains == {}


# -- the records ---

def test_a_wiped_record_names_new_executions(tmp_path):
    path = str(tmp_path / "record.json")
    first = crashes.Record(path)
    assert first.seen_crashed("u1", "vm") == 1
    (tmp_path / "record.json").unlink()
    second = crashes.Record(path)
    assert second.execution_id("h", "u1", 1) != first.execution_id(
        "h", "u1", 1)


def test_a_record_survives_a_restart(tmp_path):
    path = str(tmp_path / "record.json")
    crashes.Record(path).seen_crashed("u1", "vm")
    again = crashes.Record(path)
    assert again.current_crash("u1") == (1, 0)
    assert again.seen_crashed("u1", "vm") is None


@pytest.mark.parametrize("content", ["{not json", "[1, 2]",
                                     '{"domains": []}'])
def test_an_unreadable_record_is_one_clear_error(tmp_path, content):
    path = tmp_path / "record.json"
    path.write_text(content)
    with pytest.raises(jsonfile.RecordError, match="move it away"):
        crashes.Record(str(path))


class Running:
    def __init__(self):
        self.runs = False

    def __call__(self, name):
        return self.runs


def test_one_outage_one_process_down_run(tmp_path, mistral):
    path = str(tmp_path / "outages.json")
    running = Running()
    down = outages.ProcessDown("compute1", path, mistral, running)
    assert down("nova-compute", "its restart failed") is True
    assert down("nova-compute", "its restart failed") is True
    again = outages.ProcessDown("compute1", path, mistral, running)
    assert again("nova-compute", "its restart failed") is True
    ((_, workflow, wf_input, _),) = mistral.started
    assert workflow == "instance_ha.process_down"
    assert wf_input["host"] == "compute1"
    assert wf_input["reason"].startswith("instance-ha: nova-compute down "
                                         "on compute1")
    running.runs = True
    assert again.running("nova-compute") is True
    running.runs = False
    again("nova-compute", "its restart failed")
    assert len(mistral.started) == 2
    assert json.loads((tmp_path / "outages.json").read_text())[
        "outages"]["nova-compute"] == {"number": 2, "open": True}


def test_a_long_reason_fits_nova_s_disabled_reason(tmp_path, mistral):
    down = outages.ProcessDown("compute1", str(tmp_path / "o.json"),
                               mistral, Running())
    down("nova-compute", "x" * 400)
    ((_, _, wf_input, _),) = mistral.started
    assert len(wf_input["reason"]) == outages.MAX_REASON


def test_an_unreachable_mistral_is_a_report_not_yet_made(tmp_path, mistral):
    mistral.down = True
    down = outages.ProcessDown("compute1", str(tmp_path / "o.json"),
                               mistral, Running())
    assert down("nova-compute", "its restart failed") is False


class FakeSource:
    uri = "test:///"

    def __init__(self):
        self.events = queue.Queue()
        self.connected = False
        self.connects = 0

    def connect(self):
        self.connected = True
        self.connects += 1

    def close(self):
        self.connected = False

    def states(self):
        return []


class CountingMonitor:
    """Records the clock at each reconcile; stops the loop after
    ``passes`` passes."""

    def __init__(self, clock, stop, passes):
        self.clock, self.stop, self.passes = clock, stop, passes
        self.reconciled = []

    def reconcile(self, states):
        self.reconciled.append(self.clock.now)

    def step(self):
        self.clock.now += 1
        self.passes -= 1
        if self.passes <= 0:
            self.stop.set()


def test_the_loop_reconciles_at_connect_after_it_settles_then_each_period():
    clock, stop = Clock(), threading.Event()
    monitor = CountingMonitor(clock, stop, passes=40)
    source = FakeSource()
    instances.run(monitor, source, stop, reconcile_every=15, pass_every=0,
                  settle=5, clock=clock)
    assert source.connects == 1
    assert monitor.reconciled == [0, 5, 20, 35]
