"""Decisions on output captured from a live Pacemaker 2.1.5 cluster by
tests/e2e/capture_fixtures.py (fixtures/live/README.txt says how): a remote
node killed with kill -9, fenced, reconnected; and a fencing that fails."""

import datetime
import os

import pytest

from instance_ha.hostmonitor import crm_mon
from instance_ha.hostmonitor import daemon
from instance_ha.hostmonitor import decision
from instance_ha.hostmonitor import pcmk
from instance_ha.hostmonitor import trigger

LIVE = os.path.join(os.path.dirname(__file__), "fixtures", "live")
FENCED_AT = datetime.datetime(2026, 11, 21, 6, 19, 38,
                              tzinfo=datetime.timezone.utc)

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(LIVE, "crm_mon_rn1_fenced.xml")),
    reason="no live captures in fixtures/live")


def live(name):
    return crm_mon.read_file(os.path.join(LIVE, name))


def live_history(name):
    from instance_ha.hostmonitor import fencing

    with open(os.path.join(LIVE, name), "rb") as f:
        return fencing.parse_history(f.read())


def rn1(status):
    return decision.assess(status, decision.Policy()).verdict("rn1")


def test_all_online():
    assessment = decision.assess(live("crm_mon_all_online.xml"),
                                 decision.Policy())
    assert {v.name: v.decision for v in assessment.verdicts} == {
        "cn1": "ignored", "rn1": "online", "rn2": "online"}


def test_unclean_while_fencing_is_delayed():
    verdict = rn1(live("crm_mon_rn1_unclean.xml"))
    assert verdict.decision == decision.FAILED_UNFENCED
    assert "unclean: fencing under way" in verdict.reason
    status = live("crm_mon_rn1_unclean.xml").with_fence_events(
        live_history("stonith_history_rn1_pending.xml"))
    assert rn1(status).decision == decision.FAILED_UNFENCED


@pytest.mark.parametrize("name", ["crm_mon_rn1_fenced.xml",
                                  "crm_mon_fencing_succeeded.xml"])
def test_fenced(name):
    verdict = rn1(live(name))
    assert verdict.decision == decision.FAILED_FENCED
    assert verdict.fenced_at == FENCED_AT


def test_fenced_with_the_stonith_admin_history():
    status = live("crm_mon_rn1_fenced.xml").with_fence_events(
        live_history("stonith_history_rn1_success.xml"))
    assert rn1(status).fenced_at == FENCED_AT


def test_reconnecting_is_not_online():
    status = live("crm_mon_rn1_fenced_reconnecting.xml")
    node = status.node("rn1")
    assert (node.online, node.connection.role) == (True, "Starting")
    verdict = rn1(status)
    assert verdict.decision == decision.FAILED_FENCED
    assert "is Starting" in verdict.reason


def test_back_online():
    assert rn1(live("crm_mon_rn1_back_online.xml")).decision == \
        decision.ONLINE


@pytest.mark.parametrize("name", ["crm_mon_fencing_failed.xml",
                                  "crm_mon_rn1_fencing_failed.xml"])
def test_fencing_failed(name):
    verdict = rn1(live(name))
    assert verdict.decision == decision.FAILED_UNFENCED
    # With the failed history in place of the crm_mon one, still unsafe.
    status = live(name).with_fence_events(
        live_history("stonith_history_rn1_failed.xml"))
    assert rn1(status).decision == decision.FAILED_UNFENCED


def test_the_whole_story_triggers_once(fake_mistral):
    """The captures in order, as the daemon would read them."""
    from instance_ha import mistral_client

    names = ["crm_mon_all_online.xml", "crm_mon_rn1_unclean.xml",
             "crm_mon_rn1_fenced.xml", "crm_mon_fencing_succeeded.xml",
             "crm_mon_rn1_fenced_reconnecting.xml",
             "crm_mon_rn1_back_online.xml"]
    reads = [live(name) for name in names]
    # The monitor's clock: when crm_mon made each document.
    times = iter([pcmk.parse_time(_last_update(name)) for name in names])
    client = mistral_client.connect(mistral_url=fake_mistral.url, timeout=5)
    monitor = daemon.HostMonitor(
        config=daemon.agent_config(decision.Policy(debounce=2),
                                   on_shared_storage=True),
        read=iter(reads).__next__, connect=lambda: client,
        clock=lambda: next(times))
    decisions = [monitor.step().verdict("rn1").decision for _ in names]
    assert decisions == ["online", "failed_unfenced", "failed_fenced",
                         "failed_fenced", "failed_fenced", "online"]
    assert [p["id"] for p in fake_mistral.posts] == [
        trigger.execution_id("rn1", FENCED_AT)]


def _last_update(name):
    from lxml import etree

    root = etree.parse(os.path.join(LIVE, name)).getroot()
    return root.find("summary/last_update").get("time")
