"""Masakari's real engine as the peer: its own virtualenv, created by the
bench (``bench/.venv-masakari``, git-ignored; no Masakari code is ever
committed), and ``masakari_runner.py`` run there once per trial as a child
process, stopped by its PID if it overruns."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

MASAKARI = "masakari==22.0.0"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VENV = os.path.join(HERE, ".venv-masakari")
RUNNER = os.path.join(HERE, "masakari_runner.py")
# Masakari's fixed sleeps (its defaults: 180 s after disabling the
# service; the evacuation check polls every verify_interval = 1 s, an
# integer option, so 1 is its smallest value).
DEFAULTS = {}
SLEEPS_ZERO = {"wait_period_after_service_update": 0}


class MasakariPeer:
    def __init__(self, venv=DEFAULT_VENV, python=None, echo=print):
        self.venv = venv
        self.python_for_venv = python or _python311()
        self.echo = echo

    @property
    def python(self):
        return os.path.join(self.venv, "bin", "python")

    def ensure(self):
        """Create the virtualenv with masakari 22.0.0 unless it has it."""
        if self._installed():
            return
        self.echo(f"creating {self.venv} with {MASAKARI} (about a minute)")
        subprocess.run([self.python_for_venv, "-m", "venv", self.venv],
                       check=True)
        log = os.path.join(self.venv, "pip-install.log")
        with open(log, "w") as out:
            done = subprocess.run(
                [self.python, "-m", "pip", "install", "-q",
                 "--disable-pip-version-check", MASAKARI],
                stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise RuntimeError(f"pip install {MASAKARI} failed: see {log}")
        if not self._installed():
            raise RuntimeError(f"{MASAKARI} is not importable in "
                               f"{self.venv}")

    def _installed(self):
        if not os.path.exists(self.python):
            return False
        probe = subprocess.run(
            [self.python, "-c", "from importlib import metadata; "
             "print(metadata.version('masakari'))"],
            capture_output=True, text=True)
        return probe.returncode == 0 and probe.stdout.strip() == "22.0.0"

    def run(self, sim, host, settings, timeout=1800):
        """One execute_host_failure against ``sim``; the runner's JSON."""
        auth = sim.clouds()["clouds"]["simcloud"]["auth"]
        workdir = tempfile.mkdtemp(prefix="bench-masakari-")
        spec = {"workdir": workdir, "auth_url": sim.auth_url + "/v3",
                "username": auth["username"], "password": auth["password"],
                "project": "service", "host": host,
                "settings": dict(settings)}
        process = subprocess.Popen(
            [self.python, RUNNER], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = process.communicate(json.dumps(spec),
                                           timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            raise RuntimeError(
                f"masakari runner overran {timeout} s") from None
        except BaseException:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if process.returncode != 0 or not lines:
            raise RuntimeError(f"masakari runner failed "
                               f"({process.returncode}): {err[-2000:]}")
        return json.loads(lines[-1])


def _python311():
    """The bench's own interpreter (CPython 3.11, on which masakari
    22.0.0 was measured) makes the venv; a venv's Python makes one on its
    base interpreter."""
    return sys.executable
