"""Fence histories: stonith_admin and crm_mon formats."""

import pytest

from instance_ha.hostmonitor import fencing
from instance_ha.hostmonitor import pcmk


def test_history_newest_first_both_successes(history):
    events = history("rn1-after-failure")
    assert [(e.target, e.action, e.status) for e in events] == [
        ("rn1", "reboot", "success"), ("rn1", "reboot", "success")]
    assert events[0].completed > events[1].completed
    assert all(e.fenced for e in events)
    assert fencing.last_fenced(events, "rn1") is events[0]
    assert fencing.last_fenced(events, "rn2") is None


def test_pending_event_has_no_completion(history):
    events = history("rn1-pending")
    pending = [e for e in events if e.status == fencing.PENDING]
    assert len(pending) == 1 and pending[0].completed is None
    assert pending[0].fenced is False
    assert fencing.pending_for(events, "rn1") is True
    assert fencing.pending_for(events, "rn2") is False


def test_failed_event(history):
    events = history("rn1-failed")
    failed = fencing.failed_after(events, "rn1", None)
    assert failed.status == fencing.FAILED and failed.fenced is False
    # The only success is the old one.
    assert fencing.last_fenced(events, "rn1").completed < failed.completed
    assert fencing.failed_after(events, "rn1", failed.completed) is None


def test_unfencing_is_not_fencing():
    text = ('<pacemaker-result><list name="fencing history" count="1">'
            '<fence_event action="on" target="rn1" client="c" origin="cn1" '
            'status="success" completed="2026-11-21 06:22:16Z"/></list>'
            '<status code="0" message="OK"/></pacemaker-result>')
    events = fencing.parse_history(text)
    assert events[0].fenced is False
    assert fencing.last_fenced(events, "rn1") is None


def test_all_targets_history(history):
    events = history("all-rn1-rn2")
    assert {e.target for e in events} == {"rn1", "rn2"}


def test_crm_mon_document_with_fence_history(path):
    with open(path("crm_mon", "rn1-fenced+history.xml"), "rb") as f:
        events = fencing.parse_history(f.read())
    assert [e.target for e in events] == ["rn1"]


def test_stonith_admin_without_fencer_is_an_error(path):
    # Real output of stonith_admin 2.1.5 with no fencer to talk to.
    with open(path("fence", "stonith_admin-not-connected.xml"), "rb") as f:
        text = f.read()
    with pytest.raises(pcmk.ClusterReadError,
                       match="status 102: Not connected"):
        fencing.parse_history(text)


@pytest.mark.parametrize("text, message", [
    ("", "empty output"),
    ("<pacemaker-result><list", "not XML"),
    ('<pacemaker-result><status code="0" message="OK"/></pacemaker-result>',
     "no fence history"),
    ('<pacemaker-result><fence_history status="102"/>'
     '<status code="0" message="OK"/></pacemaker-result>',
     "did not give its history"),
    ('<pacemaker-result><list name="fencing history" count="1">'
     '<fence_event action="reboot" target="rn1" status="success"/></list>'
     '<status code="0" message="OK"/></pacemaker-result>',
     "without a completion time"),
    ('<pacemaker-result><list name="fencing history" count="1">'
     '<fence_event action="reboot" status="weird"/></list>'
     '<status code="0" message="OK"/></pacemaker-result>',
     "without a target or a known status"),
])
def test_bad_histories_are_errors(text, message):
    with pytest.raises(pcmk.ClusterReadError, match=message):
        fencing.parse_history(text)


def test_read_history_runs_stonith_admin_verbose(tmp_path, path):
    calls = tmp_path / "calls"
    script = tmp_path / "stonith_admin"
    script.write_text(f'#!/bin/sh\necho "$@" > {calls}\n'
                      f"cat {path('fence', 'rn1-stale.xml')}\n")
    script.chmod(0o755)
    events = fencing.read_history("rn1", stonith_admin=str(script))
    assert calls.read_text().split() == [
        "--history", "rn1", "--verbose", "--output-as=xml"]
    assert len(events) == 1


def test_read_history_missing_binary():
    with pytest.raises(pcmk.ClusterReadError, match="not found"):
        fencing.read_history("rn1", stonith_admin="/nonexistent/stonith")
