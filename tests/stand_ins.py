"""Stand-ins for nova-compute in the process monitor's tests: real
processes, found in /proc by a marker in their command line, killed with
SIGKILL by the tests and by their pid at teardown."""

import os
import signal
import subprocess
import sys
import time
import uuid

from instance_ha.computemonitor import processes

SLEEPER = "import time; time.sleep(600)"


def wait_until(condition, what, timeout=30.0):
    """Poll ``condition`` until true; a bound, not a measure."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.02)


class StandIns:
    """Stand-ins for nova-compute: sleeping Pythons whose command line
    carries ``marker``, started by the test or by ``restart`` (a script
    that starts one in the background and appends its pid to a file)."""

    def __init__(self, tmp_path):
        self.marker = f"instance-ha-test-nova-compute-{uuid.uuid4().hex}"
        self.pid_file = tmp_path / "restarted.pids"
        script = tmp_path / "restart.sh"
        script.write_text(
            f"{sys.executable} -c '{SLEEPER}' {self.marker} "
            "</dev/null >/dev/null 2>&1 &\n"
            f"echo $! >> {self.pid_file}\n")
        # The script's own command line does not carry the marker.
        self.restart = ("/bin/sh", str(script))
        self.children = []

    def start(self):
        child = subprocess.Popen([sys.executable, "-c", SLEEPER,
                                  self.marker], stdin=subprocess.DEVNULL)
        self.children.append(child)
        wait_until(lambda: child.pid in self.pids(), "seen started")
        return child.pid

    def pids(self):
        return processes.matching_pids(self.marker)

    def restarted(self):
        if not self.pid_file.exists():
            return []
        return [int(p) for p in self.pid_file.read_text().split()]

    def kill_all_running(self):
        """SIGKILL every stand-in that runs; once gone from /proc's
        command lines (reaped, or a zombie), it is not running."""
        for pid in self.pids():
            kill(pid)
            self._reap(pid)
        wait_until(lambda: not self.pids(), "seen gone")

    def _reap(self, pid):
        for child in self.children:
            if child.pid == pid:
                child.wait(timeout=30)

    def teardown(self):
        for pid in [c.pid for c in self.children] + self.restarted():
            if self._is_ours(pid):
                kill(pid)
        for child in self.children:
            child.wait(timeout=30)

    def _is_ours(self, pid):
        # A pid of the file may have been given to another process since.
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return self.marker.encode() in f.read()
        except OSError:
            return False


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
