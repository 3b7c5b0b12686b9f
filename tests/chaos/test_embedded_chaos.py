"""kill -9 of the embedded Mistral in the middle of a host evacuation;
restarted on the same database; the agent's watchdog drives the rest.

The fixed sample (one kill point per phase of a recovery) runs in CI;
``CHAOS_RUNS=50`` runs 50 randomized kill points instead (seed
``CHAOS_SEED``, printed)."""

import os
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
@pytest.mark.timeout(chaos_harness.COMPLETION_LIMIT + 300)
@pytest.mark.parametrize("point", _points(), ids=lambda p: p.name)
def test_recovery_finishes_once_after_kill(embedded, cloud_factory, point):
    sim = cloud_factory(embedded, VMS)
    try:
        result = chaos_harness.run_one(sim, point, embedded)
    finally:
        chaos_harness.fail_leftovers(embedded.client())
    chaos_harness.append_report(result, "embedded")
    print(f"\n{result.as_dict()}")
    assert result.killed, f"the kill point {point.name} was never reached"
    assert result.violations == [], result.violations
