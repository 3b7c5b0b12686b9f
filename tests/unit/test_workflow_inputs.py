"""The input table every workflow checks before it touches Nova."""

import pytest

from instance_ha import workflow_inputs

HOST_EVACUATE = "instance_ha.host_evacuate"
DEFAULTS = {"search_opts": {"host": "compute1"}, "fencing": {},
            "on_shared_storage": None,
            "recovery_method": "auto", "reserved_hosts": [],
            "reserved_hosts_aggregate": None, "policy": {},
            "concurrency": 10, "restart_groups": [],
            "check_capacity": True, "ignore_max_failures": False,
            "report_within": 2,
            "evacuation_timeout": 600, "poll_interval": 2}


def test_the_defaults_are_valid():
    assert workflow_inputs.problems(HOST_EVACUATE, DEFAULTS) == []
    assert workflow_inputs.problems(
        HOST_EVACUATE, dict(DEFAULTS, report_within=0)) == []
    for fencing in ({"node": "rn1"}, {"override": "powered off at the PDU"}):
        assert workflow_inputs.problems(
            HOST_EVACUATE, dict(DEFAULTS, fencing=fencing)) == []
    assert workflow_inputs.problems("instance_ha.instance_restart", {
        "server": "abc", "max_restarts": 3, "window": 3600}) == []
    assert workflow_inputs.problems("instance_ha.process_down", {
        "host": "compute1", "reason": None}) == []


@pytest.mark.parametrize("name, value, message", [
    ("concurrency", 0, "concurrency must be an integer from 1 to 1000, "
                       "not 0"),
    ("concurrency", -3, "concurrency must be an integer"),
    ("concurrency", True, "concurrency must be an integer"),
    ("concurrency", 2.5, "concurrency must be an integer"),
    ("evacuation_timeout", "ten", 'evacuation_timeout must be a number of '
                                  'seconds above 0, at most 86400, not '
                                  '"ten"'),
    ("poll_interval", 0, "poll_interval must be a number of seconds"),
    ("on_shared_storage", "yes", "on_shared_storage must be true, false or "
                                 'null, not "yes"'),
    ("on_shared_storage", 1, "on_shared_storage must be true, false or "
                             "null"),
    ("search_opts", {"host": "compute1", "status": "ACTIVE"},
     'search_opts must be {"host": "<the failed compute host>"} and '
     "nothing else"),
    ("search_opts", {"host": ""}, "search_opts host must be a non-empty "
                                  "string"),
    ("search_opts", "compute1", "search_opts must be"),
    ("recovery_method", "fast", "recovery_method must be one of auto, "
                                "reserved_host, auto_priority, rh_priority"),
    ("reserved_hosts", "spare1", "reserved_hosts must be a list of host "
                                 "names"),
    ("reserved_hosts", ["spare1", "spare1"], "reserved_hosts names a host "
                                             "twice"),
    ("restart_groups", "db", "restart_groups must be a list of restart "
                             "group names"),
    ("restart_groups", ["db", ""], "restart_groups must be a list of "
                                   "restart group names"),
    ("restart_groups", ["db", "db"], "restart_groups names a restart "
                                     "group twice"),
    ("reserved_hosts_aggregate", "", "reserved_hosts_aggregate must be "
                                     "null or a non-empty string"),
    ("policy", {"evacuate": "some"}, "policy evacuate must be one of all, "
                                     "tagged"),
    ("policy", {"color": "red"}, "policy has unknown keys color"),
    ("policy", {"error_servers": "keep"}, "policy error_servers must be "
                                          "one of skip, evacuate"),
    ("policy", [], "policy must be a dict"),
    ("report_within", -1, "report_within must be a number of seconds from "
                          "0 to 86400, not -1"),
    ("report_within", None, "report_within must be a number of seconds"),
    ("report_within", "5", "report_within must be a number of seconds"),
    ("fencing", None, "fencing must be {} or"),
    ("fencing", {"skip": True}, "fencing has unknown keys skip (known: "
                                "node, override)"),
    ("fencing", {"node": ""}, "fencing node must be a non-empty string"),
    ("fencing", {"node": "rn1", "override": "powered off at the PDU"},
     "fencing takes node or override, not both"),
    ("fencing", {"override": "off"}, "fencing override must say why"),
    ("fencing", {"override": "x" * 121}, "fencing override must be at most "
                                         "120 characters"),
])
def test_each_bad_input_is_named(name, value, message):
    found = workflow_inputs.problems(HOST_EVACUATE,
                                     dict(DEFAULTS, **{name: value}))
    assert len(found) == 1, found
    assert found[0].startswith(message), found
    assert "\n" not in found[0]


def test_inputs_that_only_fail_together():
    # Without candidates every compute reserved in Nova is one.
    assert workflow_inputs.problems(HOST_EVACUATE, dict(
        DEFAULTS, recovery_method="reserved_host")) == []
    assert workflow_inputs.problems(HOST_EVACUATE, dict(
        DEFAULTS, poll_interval=700)) == [
        "poll_interval must not exceed evacuation_timeout"]


def test_other_workflows():
    assert workflow_inputs.problems("instance_ha.instance_restart", {
        "server": "", "max_restarts": 0, "window": -1}) == [
        'server must be a non-empty string, not ""',
        "max_restarts must be an integer from 1 to 1000, not 0",
        "window must be a number of seconds above 0, at most 86400, "
        "not -1"]
    assert workflow_inputs.problems("instance_ha.process_down", {
        "host": ["compute1"], "reason": ""}) == [
        'host must be a non-empty string, not ["compute1"]',
        'reason must be null or a non-empty string, not ""']


def test_every_workflow_input_has_a_rule():
    """The table and the workflows' declared inputs agree."""
    import os

    import yaml

    here = os.path.dirname(os.path.abspath(__file__))
    workflows = os.path.join(here, "..", "..", "workflows")
    for name, rules in workflow_inputs.RULES.items():
        path = os.path.join(workflows, name.split(".", 1)[1] + ".yaml")
        with open(path) as f:
            spec = yaml.safe_load(f)[name]
        declared = [next(iter(i)) if isinstance(i, dict) else i
                    for i in spec["input"]]
        assert declared == list(rules), name
