"""kill -9 of one of two engine+executor processes of a stock,
distributed Mistral (MariaDB, RabbitMQ) in the middle of a host
evacuation; the other one carries on, the agent's watchdog drives the
rest.  The fixed sample runs in CI; ``CHAOS_RUNS=50`` runs 50 randomized
kill points (seed ``CHAOS_SEED``)."""

import os
import random
import time

import chaos_harness
import pytest

VMS = 24


def _points():
    count = chaos_harness.runs_requested(0)
    if not count:
        return chaos_harness.FIXED_KILL_POINTS
    seed = int(os.environ.get("CHAOS_SEED") or time.time())
    print(f"chaos seed {seed}")
    return chaos_harness.random_kill_points(count, VMS, seed)


@pytest.mark.slow
@pytest.mark.timeout(chaos_harness.COMPLETION_LIMIT + 600)
@pytest.mark.parametrize("point", _points(), ids=lambda p: p.name)
def test_recovery_finishes_once_after_engine_kill(distributed,
                                                  cloud_factory, point):
    distributed.replace_dead_engines()
    distributed.choose_victim(random.Random(point.name))
    sim = cloud_factory(distributed, VMS)
    try:
        result = chaos_harness.run_one(sim, point, distributed)
    finally:
        chaos_harness.fail_leftovers(distributed.client())
    chaos_harness.append_report(result, "distributed")
    print(f"\n{distributed.victim.name} killed: {result.as_dict()}")
    assert result.killed, f"the kill point {point.name} was never reached"
    assert result.violations == [], result.violations
