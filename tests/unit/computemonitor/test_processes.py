"""The process monitor (instance_ha.computemonitor.processes): its table's
check, its decision per process on a fake clock, and its loop against
real stand-in processes, killed with SIGKILL and restarted by a real
restart command."""

import logging
import subprocess
import textwrap
import threading

import pytest
from stand_ins import StandIns
from stand_ins import wait_until

from instance_ha.computemonitor import processes

Action = processes.Action


# -- the table ---------------------------------------------------------------

def write(tmp_path, text):
    path = tmp_path / "processes.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_table_with_defaults_and_both_forms_of_restart(tmp_path):
    config = processes.load(write(tmp_path, """\
        processes:
          - name: nova-compute
            match: '(^|/)nova-compute( |$)'
            restart: systemctl restart 'nova-compute'
          - name: libvirtd
            match: '(^|/)libvirtd( |$)'
            restart: [sh, -c, 'exit 0']
            report: false
        """))
    assert config == processes.Config(processes=(
        processes.Process("nova-compute", "(^|/)nova-compute( |$)",
                          ("systemctl", "restart", "nova-compute")),
        processes.Process("libvirtd", "(^|/)libvirtd( |$)",
                          ("sh", "-c", "exit 0"), report=False),
    ), max_restarts=3, window=300, interval=5, restart_timeout=60)


def test_settings_are_read(tmp_path):
    config = processes.load(write(tmp_path, """\
        max_restarts: 0
        window: 60
        interval: 0.5
        restart_timeout: 10
        processes: [{name: p, match: p, restart: 'true'}]
        """))
    assert (config.max_restarts, config.window, config.interval,
            config.restart_timeout) == (0, 60, 0.5, 10)


GOOD = "{name: nova-compute, match: nova-compute, restart: 'true'}"


@pytest.mark.parametrize("text, message", [
    ("[]", "must be a mapping with a 'processes' list"),
    ("processes: []", "processes must be a non-empty list"),
    (f"max_restart: 3\nprocesses: [{GOOD}]",
     "unknown setting 'max_restart'"),
    (f"max_restarts: -1\nprocesses: [{GOOD}]",
     "max_restarts must be an integer from 0 to 1000, not -1"),
    (f"window: 0\nprocesses: [{GOOD}]",
     "window must be a number of seconds above 0"),
    (f"interval: true\nprocesses: [{GOOD}]",
     "interval must be a number of seconds above 0, at most 86400, "
     "not True"),
    ("processes: [nova-compute]", "process 1: must be a mapping"),
    ("processes: [{match: x, restart: 'true'}]",
     "process 1: name must be a non-empty string"),
    (f"processes: [{GOOD}, {{name: libvirtd, restart: 'true'}}]",
     "process 2 (libvirtd): match must be a non-empty regular expression"),
    ("processes: [{name: p, match: '(', restart: 'true'}]",
     "process 1 (p): match is not a regular expression"),
    ("processes: [{name: p, match: p}]",
     "process 1 (p): restart must be a command"),
    ("processes: [{name: p, match: p, restart: [sh, '']}]",
     "process 1 (p): restart must be a command"),
    ("processes: [{name: p, match: p, restart: \"sh -c 'x\"}]",
     "process 1 (p): restart cannot be split"),
    ("processes: [{name: p, match: p, restart: no-such-command-x1 now}]",
     "process 1 (p): restart: 'no-such-command-x1' is not an executable"),
    ("processes: [{name: p, match: p, restart: 'true', report: 'no'}]",
     "process 1 (p): report must be true or false, not 'no'"),
    ("processes: [{name: p, match: p, restart: 'true', pidfile: x}]",
     "process 1 (p): unknown field 'pidfile'"),
    (f"processes: [{GOOD}, {GOOD}]",
     "process name 'nova-compute' is used twice"),
])
def test_a_bad_table_is_one_line_naming_the_entry_and_field(
        tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(processes.ConfigError) as raised:
        processes.load(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_file_that_is_not_yaml_or_missing_is_one_line(tmp_path):
    path = write(tmp_path, "processes: [\n")
    with pytest.raises(processes.ConfigError, match=r": not YAML \(line"):
        processes.load(path)
    with pytest.raises(processes.ConfigError, match="cannot read"):
        processes.load(str(tmp_path / "missing.yaml"))


# -- the decision, per process -----------------------------------------------

def test_a_process_that_comes_back_within_the_budget_reports_nothing():
    watch = processes.Watch(max_restarts=3, window=300)
    assert watch.observe(True, 0) is Action.NOTHING
    for now in (10, 20, 30):
        assert watch.observe(False, now) is Action.RESTART
        assert watch.restart_done(True) is Action.NOTHING
        assert watch.observe(True, now + 5) is Action.NOTHING
    assert watch.restarts == [10, 20, 30]


def test_down_with_the_budget_spent_reports_once_then_nothing():
    watch = processes.Watch(max_restarts=2, window=300)
    for now in (0, 10):
        assert watch.observe(False, now) is Action.RESTART
        assert watch.restart_done(True) is Action.NOTHING
        assert watch.observe(True, now + 1) is Action.NOTHING
    assert watch.observe(False, 20) is Action.REPORT
    assert watch.reason == ("down after 2 restart(s) in the last 300 s "
                            "(max_restarts 2)")
    assert [watch.observe(False, t) for t in range(21, 400, 10)] == \
        [Action.NOTHING] * 38


def test_a_restart_that_never_brings_it_back_spends_the_budget():
    watch = processes.Watch(max_restarts=2, window=300)
    assert [watch.observe(False, t) for t in (0, 5, 10, 15)] == [
        Action.RESTART, Action.RESTART, Action.REPORT, Action.NOTHING]


def test_restarts_older_than_the_window_no_longer_count():
    watch = processes.Watch(max_restarts=2, window=60)
    assert watch.observe(False, 0) is Action.RESTART
    assert watch.observe(False, 30) is Action.RESTART
    assert watch.observe(True, 31) is Action.NOTHING
    assert watch.observe(False, 61) is Action.RESTART
    assert watch.restarts == [30, 61]
    assert watch.observe(False, 70) is Action.REPORT


def test_a_failed_restart_reports_at_once():
    watch = processes.Watch(max_restarts=3, window=300)
    assert watch.observe(False, 0) is Action.RESTART
    assert watch.restart_done(False, "exit status 1") is Action.REPORT
    assert watch.reason == "down, and its restart failed: exit status 1"
    assert watch.phase is processes.Phase.DOWN_FOR_GOOD
    assert watch.observe(False, 5) is Action.NOTHING


def test_no_restarts_allowed_reports_the_first_time_down():
    watch = processes.Watch(max_restarts=0, window=300)
    assert watch.observe(False, 0) is Action.REPORT


def test_running_again_after_a_report_starts_a_new_episode():
    watch = processes.Watch(max_restarts=1, window=300)
    assert watch.observe(False, 0) is Action.RESTART
    assert watch.observe(False, 5) is Action.REPORT
    assert watch.observe(True, 10) is Action.NOTHING
    assert (watch.phase, watch.restarts, watch.reason) == (
        processes.Phase.RUNNING, [], None)
    assert watch.observe(False, 15) is Action.RESTART
    assert watch.observe(False, 20) is Action.REPORT


def test_a_report_not_delivered_is_answered_again_while_down():
    watch = processes.Watch(max_restarts=0, window=300)
    assert watch.observe(False, 0) is Action.REPORT
    watch.report_failed()
    assert watch.observe(False, 5) is Action.REPORT
    assert watch.observe(False, 10) is Action.NOTHING
    watch.report_failed()
    assert watch.observe(True, 15) is Action.NOTHING
    assert watch.observe(True, 20) is Action.NOTHING


# -- the loop, with fakes ----------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def config_of(*entries, **settings):
    return processes.Config(processes=tuple(entries), **settings)


NOVA = processes.Process("nova-compute", "nova-compute",
                         ("systemctl", "restart", "nova-compute"))


def test_the_loop_restarts_reports_and_reports_again_when_undelivered():
    up = {"nova-compute": False}
    runs, reports, answers = [], [], [False, None]

    def report(name, reason):
        reports.append((name, reason))
        return answers.pop(0)

    monitor = processes.ProcessMonitor(
        config_of(NOVA, max_restarts=1), report, clock=Clock(),
        running=up.get, run=lambda argv: runs.append(argv) or 0)
    assert monitor.step() == {"nova-compute": Action.RESTART}
    assert runs == [["systemctl", "restart", "nova-compute"]]
    assert monitor.step() == {"nova-compute": Action.REPORT}
    assert monitor.step() == {"nova-compute": Action.REPORT}
    assert monitor.step() == {"nova-compute": Action.NOTHING}
    assert reports == [("nova-compute", "down after 1 restart(s) in the "
                        "last 300 s (max_restarts 1)")] * 2
    assert len(runs) == 1


@pytest.mark.parametrize("failure, reason", [
    (subprocess.TimeoutExpired(["x"], 60), "timed out after 60 s"),
    (FileNotFoundError(2, "No such file or directory"),
     "cannot run systemctl: No such file or directory"),
    (3, "exit status 3"),
])
def test_a_restart_that_fails_is_reported_with_how(failure, reason):
    def run(argv):
        if isinstance(failure, Exception):
            raise failure
        return failure

    reports = []
    monitor = processes.ProcessMonitor(
        config_of(NOVA), lambda *r: reports.append(r), clock=Clock(),
        running=lambda name: False, run=run)
    monitor.step()
    monitor.step()
    assert reports == [("nova-compute",
                        f"down, and its restart failed: {reason}")]


def test_a_process_with_report_false_is_restarted_but_never_reported(
        caplog):
    libvirtd = processes.Process("libvirtd", "libvirtd", ("false",),
                                 report=False)
    reports = []
    monitor = processes.ProcessMonitor(
        config_of(libvirtd), lambda *r: reports.append(r), clock=Clock(),
        running=lambda name: False, run=lambda argv: 1)
    with caplog.at_level(logging.ERROR):
        assert monitor.step() == {"libvirtd": Action.REPORT}
    assert reports == []
    assert "libvirtd down, and its restart failed: exit status 1; not " \
        "reported (report: false)" in caplog.text


def test_a_report_that_raises_is_asked_again():
    calls = []

    def report(name, reason):
        calls.append(name)
        if len(calls) == 1:
            raise ConnectionError("Mistral unreachable")

    monitor = processes.ProcessMonitor(
        config_of(NOVA, max_restarts=0), report, clock=Clock(),
        running=lambda name: False, run=lambda argv: 0)
    for _ in range(4):
        monitor.step()
    assert calls == ["nova-compute", "nova-compute"]


def test_run_forever_stops_when_its_event_is_set():
    stop = threading.Event()
    passes = []

    def running(name):
        passes.append(name)
        if len(passes) == 3:
            stop.set()
        return True

    monitor = processes.ProcessMonitor(
        config_of(NOVA, interval=0.01), lambda *r: None, running=running)
    monitor.run_forever(stop)
    assert passes == ["nova-compute"] * 3


def test_run_forever_outlives_a_failed_pass(caplog):
    class Stop(Exception):
        pass

    reads = iter([OSError("cannot list /proc"), True])

    def running(name):
        item = next(reads)
        if isinstance(item, Exception):
            raise item
        return item

    def sleep(seconds):
        assert seconds == 5
        if not sleeps:
            sleeps.append(seconds)
            return
        raise Stop

    sleeps = []
    monitor = processes.ProcessMonitor(config_of(NOVA), lambda *r: None,
                                       sleep=sleep, running=running)
    with pytest.raises(Stop):
        monitor.run_forever()
    assert "process monitor pass failed" in caplog.text


def test_run_command_says_why_it_failed(caplog):
    assert processes.run_command(["true"], timeout=30) == 0
    with caplog.at_level(logging.WARNING):
        status = processes.run_command(
            ["sh", "-c", "echo first >&2; echo 'unit failed' >&2; exit 4"],
            timeout=30)
    assert status == 4
    assert "sh said: unit failed" in caplog.text
    with pytest.raises(subprocess.TimeoutExpired):
        processes.run_command(["sleep", "30"], timeout=0.2)


# -- the loop, on real processes ---------------------------------------------

@pytest.fixture
def stand_ins(tmp_path):
    """Every process a test starts, directly or through the restart
    command, is killed by its pid at teardown."""
    started = StandIns(tmp_path)
    yield started
    started.teardown()


def real_monitor(stand_ins, restart, reports, clock, **settings):
    nova = processes.Process("nova-compute", stand_ins.marker, restart)
    return processes.ProcessMonitor(
        config_of(nova, **settings), lambda *r: reports.append(r),
        clock=clock)


def test_a_killed_process_restarted_twice_within_the_window_reports_nothing(
        stand_ins, caplog):
    reports, clock = [], Clock()
    monitor = real_monitor(stand_ins, stand_ins.restart, reports, clock)
    stand_ins.start()
    assert monitor.step() == {"nova-compute": Action.NOTHING}
    for kills in (1, 2):
        stand_ins.kill_all_running()
        clock.now += 10
        with caplog.at_level(logging.WARNING):
            assert monitor.step() == {"nova-compute": Action.RESTART}
        assert len(stand_ins.restarted()) == kills
        wait_until(stand_ins.pids, "restarted")
        assert stand_ins.pids() == stand_ins.restarted()[-1:]
        clock.now += 5
        assert monitor.step() == {"nova-compute": Action.NOTHING}
    assert reports == []
    assert caplog.text.count("nova-compute is not running: restart") == 2


def test_a_restart_command_that_fails_reports_once(stand_ins, caplog):
    reports, clock = [], Clock()
    monitor = real_monitor(stand_ins, ("false",), reports, clock)
    stand_ins.start()
    monitor.step()
    stand_ins.kill_all_running()
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            clock.now += 5
            monitor.step()
    assert reports == [("nova-compute", "down, and its restart failed: "
                        "exit status 1")]
    assert caplog.text.count("reporting process down") == 1


def test_more_kills_than_max_restarts_within_the_window_report_once(
        stand_ins):
    reports, clock = [], Clock()
    monitor = real_monitor(stand_ins, stand_ins.restart, reports, clock,
                           max_restarts=2, window=300)
    stand_ins.start()
    monitor.step()
    actions = []
    for _ in range(3):
        stand_ins.kill_all_running()
        clock.now += 10
        actions.append(monitor.step()["nova-compute"])
        if actions[-1] is Action.RESTART:
            wait_until(stand_ins.pids, "restarted")
            monitor.step()
    for _ in range(5):
        clock.now += 10
        monitor.step()
    assert actions == [Action.RESTART, Action.RESTART, Action.REPORT]
    assert len(stand_ins.restarted()) == 2
    assert reports == [("nova-compute", "down after 2 restart(s) in the "
                        "last 300 s (max_restarts 2)")]


def test_a_process_back_after_a_report_may_report_again(stand_ins):
    reports, clock = [], Clock()
    monitor = real_monitor(stand_ins, ("false",), reports, clock)
    for episode in (1, 2):
        stand_ins.start()
        assert monitor.step() == {"nova-compute": Action.NOTHING}
        stand_ins.kill_all_running()
        clock.now += 5
        assert monitor.step() == {"nova-compute": Action.REPORT}
        assert monitor.step() == {"nova-compute": Action.NOTHING}
        assert len(reports) == episode
