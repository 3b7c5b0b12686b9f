"""kill -9 of one of two engine+executor processes of a stock,
distributed Mistral (MariaDB, RabbitMQ) in the middle of a host
evacuation; the other one carries on, the agent's watchdog drives the
rest.  The fixed sample runs in CI; ``CHAOS_RUNS=50`` runs 50 randomized
kill points (seed ``CHAOS_SEED``).  ``CHAOS_GROUPS=N`` deals the points
into N test classes: under ``pytest -n --dist loadscope`` each class runs
in its own worker, on its own deployment."""

import random
import time

import chaos_harness
import pytest

VMS = chaos_harness.VMS


def _run(distributed, cloud_factory, point):
    began = time.monotonic()
    distributed.replace_dead_engines()
    distributed.choose_victim(random.Random(point.name))
    sim = cloud_factory(distributed, VMS)
    setup = round(time.monotonic() - began, 1)
    try:
        result = chaos_harness.run_one(sim, point, distributed)
    finally:
        chaos_harness.fail_leftovers(distributed.client())
        # The outcome is final: the next run's engine starts now.
        distributed.start_replacements()
    result.setup = setup
    chaos_harness.append_report(result, "distributed")
    print(f"\n{distributed.victim.name} killed: {result.as_dict()}")
    assert result.killed, f"the kill point {point.name} was never reached"
    assert result.violations == [], result.violations


def _group(points):
    class Group:
        @pytest.mark.slow
        @pytest.mark.timeout(chaos_harness.COMPLETION_LIMIT + 600)
        @pytest.mark.parametrize("point", points)
        def test_recovery_finishes_once_after_engine_kill(
                self, distributed, cloud_factory, point):
            _run(distributed, cloud_factory, point)

    return Group


for _index, _points in enumerate(chaos_harness.params(
        "distributed", VMS, chaos_harness.groups_requested())):
    globals()[f"TestDistributed{_index}"] = _group(_points)
