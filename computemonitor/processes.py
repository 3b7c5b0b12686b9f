"""The process monitor of a compute host: nova-compute (and libvirtd)
kept running, and "process down" reported once when one cannot be.

Every ``interval`` seconds each process of the table is looked for in
/proc.  One that is gone is restarted with its ``restart`` command, at
most ``max_restarts`` times in any ``window`` seconds, so that a process
that dies and comes back within that budget reports nothing.  It is down
for good, and reported once through the ``report`` callable, when its
restart command fails (exits non-zero, cannot run, or outlasts
``restart_timeout``) or when it is down again with the window's budget
spent.  Nothing more is done for it until it is seen running again, which
ends the episode: a later failure is a new one, and may report again.

The table is a YAML file, checked whole before anything runs (as
masakari-monitors' process_list.yaml, smaller)::

    max_restarts: 3          # restarts allowed in any window  [3]
    window: 300              # seconds                         [300]
    interval: 5              # seconds between two passes      [5]
    restart_timeout: 60      # seconds a restart command may take [60]
    processes:
      - name: nova-compute
        match: '(^|/)nova-compute( |$)'
        restart: systemctl restart nova-compute
      - name: libvirtd
        match: '(^|/)libvirtd( |$)'
        restart: [systemctl, restart, libvirtd]
        report: false        # restarted, but its loss reports nothing

``match`` is a Python regular expression searched in each process's
command line, its arguments joined by spaces (as ``pgrep -f`` does).  It
is matched here, reading /proc, rather than by running pgrep: no process
started every few seconds, no dependency on procps, and the pattern that
the file's check compiles is the one that matches (pgrep's POSIX
expressions are another dialect).  Anchor it, so that neither a ``tail
-f .../nova-compute.log`` nor the restart command itself counts as the
process.  ``restart`` is an argument list, or a string split as a shell
would split it (shlex), run without a shell; it should return once the
process runs (``systemctl restart`` does), since a process still missing
at the next pass counts as down again.
"""

import dataclasses
import enum
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

import yaml

LOG = logging.getLogger(__name__)

DEFAULTS = {"max_restarts": 3, "window": 300, "interval": 5,
            "restart_timeout": 60}
ENTRY_FIELDS = ("name", "match", "restart", "report")


class ConfigError(Exception):
    """The process table cannot be used: one line naming what is wrong."""


@dataclasses.dataclass(frozen=True)
class Process:
    name: str
    match: str
    restart: tuple[str, ...]
    report: bool = True


@dataclasses.dataclass(frozen=True)
class Config:
    processes: tuple[Process, ...]
    max_restarts: int = DEFAULTS["max_restarts"]
    window: float = DEFAULTS["window"]
    interval: float = DEFAULTS["interval"]
    restart_timeout: float = DEFAULTS["restart_timeout"]


# -- the table ---------------------------------------------------------------

def load(path):
    """The Config of the YAML file ``path``; ConfigError when it is bad."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not YAML{where}: "
                          f"{getattr(exc, 'problem', exc)}") from exc
    return parse(data, source=path)


def parse(data, source="process table"):
    """The Config of ``data`` (the file's YAML, decoded)."""
    def fail(message):
        raise ConfigError(f"{source}: {message}")

    if not isinstance(data, dict):
        fail("must be a mapping with a 'processes' list")
    unknown = sorted(set(data) - set(DEFAULTS) - {"processes"})
    if unknown:
        fail(f"unknown setting {unknown[0]!r} (known: processes, "
             f"{', '.join(DEFAULTS)})")
    settings = {}
    for key, default in DEFAULTS.items():
        value = data.get(key, default)
        problem = (_count(value) if key == "max_restarts"
                   else _seconds(value))
        if problem:
            fail(f"{key} {problem}, not {value!r}")
        settings[key] = value
    entries = data.get("processes")
    if not isinstance(entries, list) or not entries:
        fail("processes must be a non-empty list of processes")
    processes = []
    for number, entry in enumerate(entries, 1):
        try:
            processes.append(_process(entry))
        except ValueError as exc:
            name = entry.get("name") if isinstance(entry, dict) else None
            label = f" ({name})" if isinstance(name, str) and name else ""
            fail(f"process {number}{label}: {exc}")
    names = [p.name for p in processes]
    for name in names:
        if names.count(name) > 1:
            fail(f"process name {name!r} is used twice")
    return Config(processes=tuple(processes), **settings)


def _count(value):
    if not isinstance(value, int) or isinstance(value, bool) or \
            not 0 <= value <= 1000:
        return "must be an integer from 0 to 1000"
    return None


def _seconds(value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or \
            not 0 < value <= 86400:
        return "must be a number of seconds above 0, at most 86400"
    return None


def _process(entry):
    """A Process from one entry of the file; ValueError naming the field."""
    if not isinstance(entry, dict):
        raise ValueError("must be a mapping of " + ", ".join(ENTRY_FIELDS))
    unknown = sorted(set(entry) - set(ENTRY_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: "
                         f"{', '.join(ENTRY_FIELDS)})")
    name, match = entry.get("name"), entry.get("match")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    if not isinstance(match, str) or not match.strip():
        raise ValueError("match must be a non-empty regular expression")
    try:
        re.compile(match)
    except re.error as exc:
        raise ValueError(f"match is not a regular expression: {exc}") \
            from exc
    report = entry.get("report", True)
    if not isinstance(report, bool):
        raise ValueError(f"report must be true or false, not {report!r}")
    return Process(name=name, match=match, restart=_argv(entry.get(
        "restart")), report=report)


def _argv(restart):
    if isinstance(restart, str):
        try:
            restart = shlex.split(restart)
        except ValueError as exc:
            raise ValueError(f"restart cannot be split: {exc}") from exc
    if not isinstance(restart, list) or not restart or \
            not all(isinstance(a, str) and a for a in restart):
        raise ValueError("restart must be a command: a string or a list "
                         "of non-empty strings")
    if shutil.which(restart[0]) is None:
        raise ValueError(f"restart: {restart[0]!r} is not an executable "
                         "command here")
    return tuple(restart)


# -- the decision, per process -----------------------------------------------

class Action(enum.Enum):
    NOTHING = "nothing"
    RESTART = "restart"
    REPORT = "report"


class Phase(enum.Enum):
    RUNNING = "running"
    RESTARTING = "restarting"    # down, restarted within the budget
    DOWN_FOR_GOOD = "down for good"    # reported (or being reported)


class Watch:
    """What to do about one process, from whether it runs and the clock:
    no process, no I/O.  ``observe()`` answers an Action; after a
    RESTART, ``restart_done()`` says how the command went; ``reason``
    says why, after a REPORT."""

    def __init__(self, max_restarts, window):
        self.max_restarts = max_restarts
        self.window = window
        self.phase = Phase.RUNNING
        self.restarts = []    # when each restart of the window was made
        self.reason = None
        self._report_due = False

    def observe(self, running, now):
        if running:
            if self.phase is Phase.DOWN_FOR_GOOD:
                # The episode ends: its restarts no longer count.
                self.restarts.clear()
                self.reason = None
                self._report_due = False
            self.phase = Phase.RUNNING
            return Action.NOTHING
        if self.phase is Phase.DOWN_FOR_GOOD:
            return self._report() if self._report_due else Action.NOTHING
        self.restarts = [t for t in self.restarts if t > now - self.window]
        if len(self.restarts) < self.max_restarts:
            self.restarts.append(now)
            self.phase = Phase.RESTARTING
            return Action.RESTART
        return self._down_for_good(
            f"down after {len(self.restarts)} restart(s) in the last "
            f"{self.window:g} s (max_restarts {self.max_restarts})")

    def restart_done(self, ok, why=""):
        """After a RESTART: ``ok`` when the command succeeded; else the
        process is down for good (REPORT), ``why`` saying how it failed."""
        if ok:
            return Action.NOTHING
        return self._down_for_good(f"down, and its restart failed: {why}")

    def report_failed(self):
        """The REPORT could not be delivered: answer it again at the next
        observation of the process down."""
        self._report_due = True

    def _down_for_good(self, reason):
        self.phase = Phase.DOWN_FOR_GOOD
        self.reason = reason
        return self._report()

    def _report(self):
        self._report_due = False
        return Action.REPORT


# -- the host's processes ----------------------------------------------------

def command_lines(proc="/proc"):
    """(pid, command line) of every process but zombies and kernel
    threads (whose command line is empty), arguments joined by spaces."""
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "cmdline"), "rb") as f:
                raw = f.read()
        except OSError:    # gone meanwhile, or not ours to read
            continue
        if raw:
            text = raw.rstrip(b"\0").replace(b"\0", b" ")
            yield int(entry), text.decode("utf-8", "replace")


def matching_pids(pattern, proc="/proc"):
    """The pids whose command line ``pattern`` matches, this one's aside
    (as pgrep -f)."""
    found = re.compile(pattern)
    return [pid for pid, line in command_lines(proc)
            if pid != os.getpid() and found.search(line)]


def run_command(argv, timeout):
    """Run ``argv`` without a shell: its exit status.  Raises
    subprocess.TimeoutExpired (killed after ``timeout`` s) or OSError (it
    cannot run).  Its stdout is dropped and the last line of its stderr
    logged when it fails.  The output goes to a file, not a pipe, so that
    a daemon it leaves running does not hold the call open."""
    with tempfile.TemporaryFile() as errors:
        status = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=errors,
                                timeout=timeout, check=False).returncode
        if status:
            errors.seek(0)
            lines = errors.read().decode("utf-8", "replace").splitlines()
            if lines:
                LOG.warning("%s said: %s", argv[0], lines[-1][:200])
    return status


class ProcessMonitor:
    """One ``step()`` per pass over the processes of ``config``.

    ``report(process_name, reason)`` says that a process is down for good;
    it returns False, or raises, when it could not say it now (the next
    pass asks again while the process is still down); it should not take
    long.  ``running(name)`` is whether the process of that name runs
    (default: its ``match`` in /proc); ``run(argv)`` runs a restart
    command and returns its exit status, or raises
    subprocess.TimeoutExpired or OSError (default: run_command with the
    config's restart_timeout)."""

    def __init__(self, config, report, clock=time.monotonic,
                 sleep=time.sleep, running=None, run=None):
        self.config = config
        self.report = report
        self.clock = clock
        self.sleep = sleep
        by_name = {p.name: p for p in config.processes}
        self.running = running or (
            lambda name: bool(matching_pids(by_name[name].match)))
        self.run = run or (
            lambda argv: run_command(argv, config.restart_timeout))
        self.watches = {p.name: Watch(config.max_restarts, config.window)
                        for p in config.processes}

    def step(self):
        """One pass: {process name: the Action taken} (REPORT for a
        restart that failed)."""
        return {process.name: self._check(process)
                for process in self.config.processes}

    def run_forever(self, stop_event=None):
        """Passes every ``interval`` seconds until ``stop_event`` (a
        threading.Event) is set: between passes it waits on the event, so
        that a stop is prompt; without one, ``sleep(interval)``."""
        LOG.info("watching %s every %g s",
                 ", ".join(p.name for p in self.config.processes),
                 self.config.interval)
        while stop_event is None or not stop_event.is_set():
            try:
                self.step()
            except Exception:    # the monitor outlives one bad pass
                LOG.exception("process monitor pass failed")
            if stop_event is None:
                self.sleep(self.config.interval)
            elif stop_event.wait(self.config.interval):
                break

    def _check(self, process):
        watch = self.watches[process.name]
        was = watch.phase
        action = watch.observe(self.running(process.name), self.clock())
        if was is Phase.DOWN_FOR_GOOD and watch.phase is Phase.RUNNING:
            LOG.info("%s runs again", process.name)
        if action is Action.RESTART and watch.restart_done(
                *self._restart(process, watch)) is Action.REPORT:
            action = Action.REPORT
        if action is Action.REPORT:
            self._report(process, watch)
        return action

    def _restart(self, process, watch):
        """(ok, how it failed) of one restart of ``process``."""
        LOG.warning("%s is not running: restart %d of %d in %g s: %s",
                    process.name, len(watch.restarts),
                    self.config.max_restarts, self.config.window,
                    shlex.join(process.restart))
        try:
            status = self.run(list(process.restart))
        except subprocess.TimeoutExpired:
            why = f"timed out after {self.config.restart_timeout:g} s"
        except OSError as exc:
            why = f"cannot run {process.restart[0]}: {exc.strerror or exc}"
        else:
            if status == 0:
                return True, ""
            why = f"exit status {status}"
        LOG.error("%s: restart command failed: %s", process.name, why)
        return False, why

    def _report(self, process, watch):
        if not process.report:
            LOG.error("%s %s; not reported (report: false)", process.name,
                      watch.reason)
            return
        LOG.error("%s %s: reporting process down", process.name,
                  watch.reason)
        try:
            delivered = self.report(process.name, watch.reason) is not False
        except Exception as exc:
            LOG.warning("report of %s failed: %s", process.name, exc)
            delivered = False
        if not delivered:
            LOG.warning("%s: process down not reported yet; asking again "
                        "at the next pass", process.name)
            watch.report_failed()
