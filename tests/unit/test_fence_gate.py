"""The manual evacuation's fencing gate, on output captured from a live
Pacemaker cluster (tests/unit/hostmonitor/fixtures/live)."""

import os

import pytest

from instance_ha import fence_gate
from instance_ha.hostmonitor import crm_mon

LIVE = os.path.join(os.path.dirname(__file__), "hostmonitor", "fixtures",
                    "live")


def live(name):
    return crm_mon.read_file(os.path.join(LIVE, name))


@pytest.mark.parametrize("name", ["crm_mon_rn1_fenced.xml",
                                  "crm_mon_fencing_succeeded.xml"])
def test_a_fenced_host_may_be_evacuated(name):
    assert fence_gate.refusal("rn1", live(name)) is None


@pytest.mark.parametrize("name, words", [
    ("crm_mon_all_online.xml", "online"),
    ("crm_mon_rn1_unclean.xml", "failed_unfenced"),
    ("crm_mon_rn1_fencing_failed.xml", "failed_unfenced"),
    ("crm_mon_rn1_back_online.xml", "online"),
])
def test_a_host_not_confirmed_fenced_is_refused(name, words):
    reason = fence_gate.refusal("rn1", live(name))
    assert reason.startswith("Pacemaker does not show rn1 fenced")
    assert words in reason


def test_an_unknown_node_is_refused():
    assert fence_gate.refusal("compute9", live("crm_mon_rn1_fenced.xml")) \
        == "Pacemaker has no node named compute9"


def test_without_quorum_nothing_is_evacuated():
    import dataclasses

    status = dataclasses.replace(live("crm_mon_rn1_fenced.xml"),
                                 quorum=False)
    assert fence_gate.refusal("rn1", status) == \
        "this cluster partition has no quorum"
