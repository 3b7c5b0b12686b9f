"""Horizon (with mistral-dashboard) as a child process of the dashboard
tier, in its own virtualenv (tools/horizon-venv.sh), stopped by its PID.

Django's development server (``django-admin runserver --noreload
--insecure``: one process, threaded, the static files collected and
compressed when the virtualenv was built served from there), on
127.0.0.1 and a free port, with the settings of
``horizon_local_settings.py`` (installed into the virtualenv) and the
environment it reads: the Keystone URL, the state directory (sessions).
"""

import os
import subprocess
import time
import urllib.error
import urllib.request

from instance_ha import server_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def venv_dir():
    """Where tools/horizon-venv.sh built the virtualenv (HORIZON_VENV,
    default .horizon in the checkout)."""
    path = os.environ.get("HORIZON_VENV", ".horizon")
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def venv_missing():
    """Why the Horizon virtualenv cannot be used, or None."""
    venv = venv_dir()
    if not os.path.exists(os.path.join(venv, ".horizon-built")):
        return (f"no Horizon virtualenv at {venv} (build it with "
                f"tools/horizon-venv.sh)")
    return None


class Horizon(server_process.Child):
    """``django-admin runserver`` of the Horizon virtualenv, by PID."""

    def __init__(self, workdir, keystone_url, venv=None):
        self.workdir = str(workdir)
        self.venv = venv or venv_dir()
        self.keystone_url = keystone_url
        self.host = "127.0.0.1"
        self.port = None
        self.output_file = os.path.join(self.workdir, "horizon.log")

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def env(self):
        state = os.path.join(self.workdir, "horizon-state")
        os.makedirs(state, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OS_", "PYTHON", "DJANGO_"))}
        env.update(DJANGO_SETTINGS_MODULE="openstack_dashboard.settings",
                   HORIZON_KEYSTONE_URL=self.keystone_url,
                   HORIZON_STATE_DIR=state,
                   PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
        return env

    def start(self, timeout=120.0, attempts=3):
        """Start Horizon and wait until its login page answers; a port
        another process took before our child bound it: a new port, up to
        ``attempts`` times."""
        for attempt in range(1, attempts + 1):
            self.port = server_process.free_port(self.host)
            with open(self.output_file, "ab") as out:
                self.process = subprocess.Popen(
                    [os.path.join(self.venv, "bin", "django-admin"),
                     "runserver", "--noreload", "--insecure",
                     f"{self.host}:{self.port}"],
                    stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=self.env(),
                    cwd=self.workdir)
            try:
                self._wait_ready(timeout)
                return self
            except server_process.PortInUse:
                self.kill()
                if attempt == attempts:
                    raise

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                tail = self.tail()
                error = server_process.PortInUse \
                    if "already in use" in tail else RuntimeError
                raise error(f"Horizon exited with {self.process.returncode}"
                            f": {tail}")
            if "Starting development server" in self.tail(50) \
                    and self._login_page_answers():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"Horizon not ready after {timeout} s: "
                                   f"{self.tail()}")
            time.sleep(0.3)

    def _login_page_answers(self):
        try:
            with urllib.request.urlopen(self.url + "/auth/login/",
                                        timeout=30) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False
