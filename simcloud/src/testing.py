"""Helpers for tests and benchmarks: start a simulated cloud in-process or
as a subprocess, and talk to it with python-novaclient and keystoneauth1
exactly as production code does."""

import os
import subprocess
import tempfile
import time

from instance_ha import server_process
from instance_ha.simcloud import server
from instance_ha.simcloud import topology


def small_topology(hosts=3, vms_per_host=2, evacuation_time=0.2):
    config = topology.generate(hosts, vms_per_host, evacuation_time)
    config["settings"]["power_time"] = 0.05
    return config


def start(config=None):
    """A started in-process SimCloud; the caller stops it."""
    cloud = topology.build(small_topology() if config is None else config)
    return server.SimCloud(cloud).start()


def session(sim, admin=True, **session_args):
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    identity = sim.cloud.identity
    user = identity.admin if admin else identity.member
    auth = v3.Password(auth_url=sim.auth_url, username=user.name,
                       password=user.password,
                       project_name=user.project.name,
                       user_domain_name="Default",
                       project_domain_name="Default")
    return ks_session.Session(auth=auth, **session_args)


def nova(sim, version="2.53", admin=True):
    from novaclient import client

    return client.Client(version, session=session(sim, admin))


def request(sim, method, path, version=None, admin=True, **kwargs):
    """One raw compute API request through keystoneauth (token and
    catalog included); the requests.Response, whatever its status."""
    headers = dict(kwargs.pop("headers", {}))
    if version is not None:
        headers["OpenStack-API-Version"] = f"compute {version}"
    return session(sim, admin).request(
        sim.compute_url + path, method, headers=headers, raise_exc=False,
        **kwargs)


def wait_for(predicate, timeout=10.0, interval=0.01, what=None):
    """predicate()'s first true value; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for "
                                 f"{what or predicate}")
        time.sleep(interval)


class SimCloudProcess:
    """``instance-ha simcloud`` in a subprocess; ``clouds_yaml`` is the
    file it wrote."""

    def __init__(self, *args):
        self._dir = tempfile.TemporaryDirectory(prefix="simcloud-")
        self.clouds_yaml = os.path.join(self._dir.name, "clouds.yaml")
        self.args = [*server_process.instance_ha_command(), "simcloud",
                     "--clouds-yaml", self.clouds_yaml, *args]
        self.process = None
        self.result = None

    def start(self, timeout=30.0):
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        wait_for(lambda: os.path.exists(self.clouds_yaml)
                 or self.process.poll() is not None, timeout=timeout)
        if self.process.poll() is not None:
            raise RuntimeError("simcloud exited: "
                               + self.process.stderr.read())
        return self

    def stop(self, timeout=10.0):
        """SIGTERM; (exit status, stdout, stderr).  Idempotent."""
        if self.process is None or self.result is not None:
            return self.result
        self.process.terminate()
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        self._dir.cleanup()
        self.result = self.process.returncode, out, err
        return self.result
