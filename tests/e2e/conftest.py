"""Fixtures for tests on a live Pacemaker cluster (see cluster.py).

The tests skip when the machine cannot run the cluster (not root, Pacemaker
not installed), except in CI (``CI`` or ``INSTANCE_HA_E2E_REQUIRE`` set),
where that is a failure: on the project's machine kind they must run.
"""

import os
import shutil

import pytest

from .cluster import ClusterUnavailable
from .cluster import LiveCluster
from .cluster import check_prerequisites


def live_cluster_required():
    return bool(os.environ.get("CI")
                or os.environ.get("INSTANCE_HA_E2E_REQUIRE"))


def require_live_cluster():
    """Skip (fail in CI) unless this machine can run the live cluster."""
    try:
        check_prerequisites()
    except ClusterUnavailable as exc:
        if live_cluster_required():
            pytest.fail(f"live cluster required here but unavailable: {exc}")
        pytest.skip(f"live cluster unavailable: {exc}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, "_e2e_rep_" + report.when, report)
    return report


def _failed(node):
    return any(getattr(getattr(node, "_e2e_rep_" + when, None), "failed",
                       False) for when in ("setup", "call"))


@pytest.fixture
def start_live_cluster(request):
    """start_live_cluster(**LiveCluster kwargs) -> a started LiveCluster.

    Every cluster is stopped at teardown, whatever the test did.  Its
    scratch directory (logs: pacemaker.log, corosync.log, rnN.log,
    fence_calls.log, ...) is printed, kept when the test failed and
    removed when it passed."""
    require_live_cluster()
    clusters = []

    def start(**kwargs):
        cluster = LiveCluster(**kwargs)
        clusters.append(cluster)
        try:
            cluster.start()
        except ClusterUnavailable as exc:
            if live_cluster_required():
                raise
            pytest.skip(f"live cluster unavailable: {exc}")
        finally:
            print(f"live cluster logs: {cluster.scratch}")
        return cluster

    yield start
    errors = []
    for cluster in reversed(clusters):
        try:
            cluster.stop()
        except Exception as exc:  # noqa: BLE001 - stop them all, then raise
            errors.append(exc)
    for cluster in clusters:
        print(f"live cluster {cluster.remotes} timings: {cluster.timings}")
        if cluster.scratch and not errors and not _failed(request.node):
            shutil.rmtree(cluster.scratch, ignore_errors=True)
        elif cluster.scratch:
            print(f"live cluster logs kept in {cluster.scratch}")
    if errors:
        raise errors[0]


@pytest.fixture
def live_cluster(start_live_cluster):
    """cn1 + remote node rn1 (10.99.0.2), fencing without delay."""
    return start_live_cluster(remotes=["rn1"])
