"""The compute monitors as processes in the functional tests."""

import os
import signal
import subprocess

from instance_ha.simcloud import testing


class Daemon:
    """A compute monitor (``instance-ha instancemonitor`` or
    ``processmonitor``) as a child process, stopped by its PID; its log in
    ``log_path``, appended to by each start; started once ``ready`` is in
    it."""

    def __init__(self, argv, log_path, ready):
        self.argv = argv
        self.log_path = str(log_path)
        self.ready = ready
        self.process = None

    def start(self):
        self._offset = self._size()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, stdout=log,
                                        stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        log.close()
        self.wait_for_log(self.ready)
        return self

    def _size(self):
        return os.path.getsize(self.log_path) \
            if os.path.exists(self.log_path) else 0

    def log(self, since_start=True):
        with open(self.log_path, encoding="utf-8", errors="replace") as s:
            text = s.read()
        return text[self._offset:] if since_start else text

    def wait_for_log(self, text, timeout=60.0, count=1):
        def seen():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.argv[1]} exited "
                                     f"{self.process.returncode}:\n"
                                     f"{self.log()}")
            return self.log().count(text) >= count
        testing.wait_for(seen, timeout=timeout,
                         what=f"{text!r} in the log:\n{self.log()}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

