"""claim_reserved_host and release_reserved_host against the simulated
cloud over HTTP: a claim is recorded in Nova (a mark on the reserved
host, its name in the failed host's disabled reason) before the host is
used, so a claim whose answer was lost, or a later run, finds its host
again."""

import pytest
from actions_support import run
from actions_support import topology

from instance_ha.actions.reserved_host import ClaimReservedHost
from instance_ha.actions.reserved_host import ReleaseReservedHost
from instance_ha.actions.service_enable import ServiceEnable
from instance_ha.simcloud import microversion

pytest_plugins = ("actions_support",)

RESERVED = "instance-ha: reserved"
FENCED = "instance-ha: host recovery 1234 started 2026-11-21"


@pytest.fixture
def spares(make_cloud):
    """compute1 (failed, one VM), compute2 ordinary, spare1 and spare2
    reserved."""
    cloud = make_cloud(topology({"compute1": [{"name": "vm1"}],
                                 "compute2": [], "spare1": [],
                                 "spare2": []}))
    for name in ("spare1", "spare2"):
        service = cloud.model.hosts[name].service
        service.disabled, service.disabled_reason = True, RESERVED
    failed = cloud.model.hosts["compute1"].service
    failed.forced_down, failed.disabled = True, True
    failed.disabled_reason = FENCED
    return cloud


def state(cloud, host):
    service = cloud.model.hosts[host].service
    return service.disabled, service.disabled_reason


def test_claim_marks_the_first_reserved_candidate(spares):
    mark = spares.mark()
    result = run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    assert result["host"] == "spare1" and result["claimed"] is True
    assert state(spares, "spare1") == (
        True, "instance-ha: claimed for compute1")
    assert state(spares, "spare2") == (True, RESERVED)
    assert state(spares, "compute1") == (
        True, FENCED + "; reserved host spare1")
    assert spares.model.hosts["compute1"].service.forced_down is True
    assert spares.operations(mark).count("services.update") == 2


def test_a_claim_whose_answer_was_lost_finds_its_host_again(spares):
    run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    mark = spares.mark()
    again = run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    assert again["host"] == "spare1" and again["claimed"] is True
    assert "earlier attempt" in again["reason"]
    assert "services.update" not in spares.operations(mark)
    assert state(spares, "spare2") == (True, RESERVED)


def test_a_claim_found_again_after_the_enable(spares):
    """Nova clears the reason of a service it enables: the failed host's
    record still names the claimed host, for any later run."""
    run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    run(ServiceEnable("spare1"))
    mark = spares.mark()
    again = run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    assert again["host"] == "spare1"
    assert "services.update" not in spares.operations(mark)
    assert state(spares, "spare2") == (True, RESERVED)


def test_a_recorded_host_taken_since_by_another_failure_is_not_used(
        spares):
    run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    run(ReleaseReservedHost("spare1", "compute1"))
    spares.model.hosts["spare1"].service.disabled_reason = \
        "instance-ha: claimed for compute7"
    again = run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    assert again["host"] == "spare2"
    assert state(spares, "compute1") == (
        True, FENCED + "; reserved host spare2")


def test_a_long_reason_is_cut_to_nova_255_characters(spares):
    spares.model.hosts["compute1"].service.disabled_reason = "x" * 250
    run(ClaimReservedHost("compute1", ["spare1"]))
    reason = state(spares, "compute1")[1]
    assert len(reason) == 255
    assert reason.endswith("; reserved host spare1")


def test_a_host_claimed_for_another_failure_is_not_taken(spares):
    run(ClaimReservedHost("compute2", ["spare1"]))
    result = run(ClaimReservedHost("compute1", ["spare1"]))
    assert result["host"] is None
    assert "no reserved host is available" in result["reason"]
    assert state(spares, "spare1") == (
        True, "instance-ha: claimed for compute2")


def test_enable_after_the_claim_then_release_makes_it_reserved_again(
        spares):
    run(ClaimReservedHost("compute1", ["spare1"]))
    run(ServiceEnable("spare1"))
    assert state(spares, "spare1") == (False, None)
    result = run(ReleaseReservedHost("spare1", "compute1"))
    assert result["released"] is True
    assert state(spares, "spare1") == (
        True, f"{RESERVED} (unused by the recovery of compute1)")


def test_release_of_a_host_still_marked_by_the_claim(spares):
    """The run died between the claim and the enable, or could not
    enable: the claim mark goes, the host is reserved again."""
    run(ClaimReservedHost("compute1", ["spare1"]))
    result = run(ReleaseReservedHost("spare1", "compute1"))
    assert result["released"] is True
    assert state(spares, "spare1")[1].startswith(RESERVED)


def test_release_leaves_a_host_disabled_for_another_reason(spares):
    service = spares.model.hosts["spare1"].service
    service.disabled_reason = "operator: bad disk"
    mark = spares.mark()
    result = run(ReleaseReservedHost("spare1", "compute1"))
    assert result["released"] is False
    assert "services.update" not in spares.operations(mark)
    assert state(spares, "spare1") == (True, "operator: bad disk")


def test_release_leaves_a_host_that_runs_servers(spares):
    mark = spares.mark()
    result = run(ReleaseReservedHost("compute1", "compute9"))  # runs vm1
    assert result["released"] is False
    assert "runs servers" in result["reason"]
    assert "services.update" not in spares.operations(mark)
    assert state(spares, "compute1") == (True, FENCED)


def test_claim_before_microversion_2_53_uses_disable_log_reason(
        spares, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 40))
    mark = spares.mark()
    result = run(ClaimReservedHost("compute1", ["spare1"]))
    assert result["host"] == "spare1"
    updates = spares.nova_calls(mark, operation="services.update")
    assert [c.path for c in updates] == [
        "/v2.1/os-services/disable-log-reason"] * 2
    assert state(spares, "spare1") == (
        True, "instance-ha: claimed for compute1")
