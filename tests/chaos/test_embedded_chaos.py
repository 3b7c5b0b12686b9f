"""kill -9 of the embedded Mistral in the middle of a host evacuation;
restarted on the same database; the agent's watchdog drives the rest.

The fixed sample (one kill point per phase of a recovery) runs in CI;
``CHAOS_RUNS=50`` runs 50 randomized kill points instead (seed
``CHAOS_SEED``, in the report header)."""

import time

import chaos_harness
import pytest

VMS = chaos_harness.VMS
[POINTS] = chaos_harness.params("embedded", VMS)


@pytest.mark.slow
@pytest.mark.timeout(chaos_harness.COMPLETION_LIMIT + 300)
@pytest.mark.parametrize("point", POINTS)
def test_recovery_finishes_once_after_kill(embedded, cloud_factory, point):
    began = time.monotonic()
    sim = cloud_factory(embedded, VMS)
    setup = round(time.monotonic() - began, 1)
    try:
        result = chaos_harness.run_one(sim, point, embedded)
    finally:
        chaos_harness.fail_leftovers(embedded.client())
    result.setup = setup
    chaos_harness.append_report(result, "embedded")
    print(f"\n{result.as_dict()}")
    assert result.killed, f"the kill point {point.name} was never reached"
    assert result.violations == [], result.violations
