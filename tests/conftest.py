"""Fixtures shared by every test tier."""

import pytest

from instance_ha.simcloud import testing


@pytest.fixture
def simcloud_factory():
    """start(config=None) -> a running in-process SimCloud on a free
    127.0.0.1 port (config: see instance_ha.simcloud.topology; None: 3
    hosts x 2 servers, 0.2 s evacuations).  All are stopped at teardown."""
    started = []

    def start(config=None):
        sim = testing.start(config)
        started.append(sim)
        return sim

    yield start
    for sim in reversed(started):
        sim.stop()
    for sim in started:
        # A simulator bug answers 500 and is kept here: fail on it.
        assert sim.errors == [], sim.errors
        assert sim.cloud.timeline.errors() == [], sim.cloud.timeline.errors()


@pytest.fixture
def simcloud(simcloud_factory):
    """A running simulated cloud: compute1..3, two active servers each
    (project demo, metadata HA_Enabled=True), 0.2 s evacuations.  Steer
    and inspect it through ``simcloud.cloud``."""
    return simcloud_factory()


@pytest.fixture
def simcloud_process_factory():
    """start(*args) -> a started testing.SimCloudProcess running
    ``instance-ha simcloud --clouds-yaml FILE *args``; its clouds_yaml is
    the file.  All are stopped (SIGTERM) at teardown."""
    started = []

    def start(*args):
        process = testing.SimCloudProcess(*args)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
