"""host_evacuate's confirm_fencing step (actions/check_fencing.py) on
crm_mon output captured from a live cluster, read through the tools the
executor's environment names (tests/fake_pacemaker.py)."""

import fake_pacemaker
import pytest
from mistral_lib import actions

from instance_ha import fence_gate
from instance_ha.actions import check_fencing
from instance_ha.agent import config as agent_config


@pytest.fixture
def pacemaker(tmp_path, monkeypatch):
    fake = fake_pacemaker.FakePacemaker(str(tmp_path))
    for name, value in fake.env.items():
        monkeypatch.setenv(name, value)
    return fake


def run(host, fencing):
    return check_fencing.CheckFencing(host, fencing).run(context=None)


def test_a_host_pacemaker_shows_fenced_passes_with_its_fencing_time(
        pacemaker):
    pacemaker.show(fake_pacemaker.FENCED, node="compute1")
    assert run("compute1", {}) == {
        "checked_by": "pacemaker", "node": "compute1",
        "fenced_at": "2026-11-21T06:19:38+00:00", "override": None,
        "summary": "Pacemaker: compute1 fenced at 2026-11-21T06:19:38+00:00"}


def test_the_pacemaker_node_may_be_named_apart_from_the_nova_host(
        pacemaker):
    pacemaker.show(fake_pacemaker.FENCED, node="rn1")
    assert run("compute1.example.com", {"node": "rn1"})["node"] == "rn1"
    refused = run("compute1.example.com", {})
    assert refused.error["reason"].startswith(
        "refusing to evacuate compute1.example.com: Pacemaker has no node "
        "named compute1.example.com")


@pytest.mark.parametrize("fixture, why", [
    (fake_pacemaker.ONLINE, "Pacemaker does not show compute1 fenced "
                            "(online"),
    (fake_pacemaker.UNCLEAN, "Pacemaker does not show compute1 fenced "
                             "(failed_unfenced"),
    ("crm_mon_rn1_fencing_failed.xml", "Pacemaker does not show compute1 "
                                       "fenced (failed_unfenced"),
    ("crm_mon_rn1_back_online.xml", "Pacemaker does not show compute1 "
                                    "fenced (online"),
])
def test_a_host_not_fenced_now_is_refused(pacemaker, fixture, why):
    pacemaker.show(fixture, node="compute1")
    result = run("compute1", {})
    assert isinstance(result, actions.Result) and result.is_error()
    assert result.error["reason"].startswith(
        f"refusing to evacuate compute1: {why}")
    assert result.error["reason"].endswith("nothing was changed (give "
                                           "fencing.override only for a "
                                           "host known to be powered off)")


def test_a_cluster_that_cannot_be_read_is_a_refusal(pacemaker):
    pacemaker.unreadable()
    reason = run("compute1", {}).error["reason"]
    assert reason.startswith("refusing to evacuate compute1: cannot read "
                             "Pacemaker on this executor (")
    assert "\n" not in reason


def test_without_the_tools_at_all_it_is_a_refusal(monkeypatch, tmp_path):
    monkeypatch.setenv(fence_gate.CRM_MON_ENV, str(tmp_path / "absent"))
    reason = run("compute1", {}).error["reason"]
    assert "cannot read Pacemaker on this executor" in reason


def test_an_override_reads_nothing_and_never_says_fenced(monkeypatch,
                                                         tmp_path):
    monkeypatch.setenv(fence_gate.CRM_MON_ENV, str(tmp_path / "absent"))
    result = run("compute1", {"override": "  powered off at the PDU  "})
    assert result["checked_by"] == "operator override"
    assert result["summary"] == ("fencing NOT checked, operator override: "
                                 "powered off at the PDU")
    assert "fenced" not in result["summary"].replace("NOT checked", "")


def test_the_agent_asks_the_workflow_to_check_its_own_node():
    config = agent_config.AgentConfig(mistral_url="http://unused/v2",
                                      host_suffix=".example.com")
    wf_input = config.workflow_input("rn1")
    assert wf_input["search_opts"] == {"host": "rn1.example.com"}
    assert wf_input["fencing"] == {"node": "rn1"}


def test_an_inferred_fencing_goes_as_an_override_that_says_so():
    config = agent_config.AgentConfig(mistral_url="http://unused/v2")
    fencing = config.workflow_input("rn1", inferred=True)["fencing"]
    assert fencing == {"override": "fencing of rn1 inferred by the agent "
                                   "(seen lost, then clean; no fence "
                                   "history)"}
    from instance_ha import workflow_inputs
    assert workflow_inputs.fencing(fencing) is None
