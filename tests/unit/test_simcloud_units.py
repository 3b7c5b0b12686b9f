"""The simulated cloud's building blocks, without HTTP."""

import email.message
import threading

import pytest

from instance_ha.simcloud import microversion
from instance_ha.simcloud import states
from instance_ha.simcloud import topology
from instance_ha.simcloud import validation
from instance_ha.simcloud.errors import NovaError
from instance_ha.simcloud.keystone import Context
from instance_ha.simcloud.timeline import Timeline


@pytest.mark.parametrize("vm_state, task_state, status", [
    ("active", None, "ACTIVE"),
    ("active", "rebuilding", "REBUILD"),
    ("active", "rebuild_spawning", "REBUILD"),
    ("stopped", "rebuilding", "REBUILD"),
    ("error", "rebuilding", "REBUILD"),
    ("stopped", None, "SHUTOFF"),
    ("stopped", "powering-on", "SHUTOFF"),
    ("resized", None, "VERIFY_RESIZE"),
    ("error", None, "ERROR"),
    ("shelved_offloaded", None, "SHELVED_OFFLOADED"),
    ("nonsense", None, "UNKNOWN"),
])
def test_status_from_states(vm_state, task_state, status):
    assert states.status(vm_state, task_state) == status


def test_status_filter_selects_states():
    vm_states, task_states = states.states_for_statuses(["shutoff"])
    assert vm_states == {"stopped"}
    assert "default" in task_states
    vm_states, task_states = states.states_for_statuses(["REBUILD"])
    assert vm_states == {"active", "stopped", "error"}
    assert "default" not in task_states
    assert states.states_for_statuses(["bogus"]) == (set(), set())


def headers(**values):
    message = email.message.Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


def test_microversion_negotiation():
    assert microversion.negotiate(headers()) == (2, 1)
    assert microversion.negotiate(headers(
        OpenStack_API_Version="compute 2.53")) == (2, 53)
    assert microversion.negotiate(headers(
        X_OpenStack_Nova_API_Version="2.12")) == (2, 12)
    # The service-type header wins over the legacy one.
    assert microversion.negotiate(headers(
        OpenStack_API_Version="compute 2.60",
        X_OpenStack_Nova_API_Version="2.12")) == (2, 60)
    assert microversion.negotiate(headers(
        OpenStack_API_Version="compute latest")) == (2, 104)
    with pytest.raises(NovaError) as error:
        microversion.negotiate(headers(OpenStack_API_Version="compute 2.0"))
    assert error.value.code == 406


def test_validation_messages():
    with pytest.raises(NovaError) as error:
        validation.validate(validation.SERVICE_UPDATE_V21,
                            {"host": "h", "binary": "b",
                             "forced_down": True})
    assert error.value.message == \
        "Additional properties are not allowed ('forced_down' was unexpected)"
    with pytest.raises(NovaError) as error:
        validation.validate(validation.SERVICE_UPDATE_V21, {"host": "h"})
    assert error.value.message == "'binary' is a required property"
    with pytest.raises(NovaError) as error:
        validation.validate(validation.evacuate_schema((2, 53)),
                            {"evacuate": {"host": 3}})
    assert error.value.message == (
        "Invalid input for field/attribute host. Value: 3. 3 is not of type "
        "'string'")
    validation.validate(validation.evacuate_schema((2, 29)),
                        {"evacuate": {"host": "h", "force": "yes"}})
    assert validation.to_bool("yes") and not validation.to_bool("off")


def test_action_rules_are_novas_state_checks():
    rules = states.ACTION_RULES
    assert rules["evacuate"].vm_states == {"active", "stopped", "error"}
    assert rules["evacuate"].task_states is None
    assert rules["stop"].vm_states == {"active", "error"}
    assert rules["stop"].task_states == {None}
    assert rules["start"].vm_states == {"stopped"}


def test_check_action_messages():
    cloud = topology.build(topology.generate(1, 1))
    try:
        server = next(iter(cloud.servers.values()))
        member = Context("u", server.project_id, ("member",))
        server.locked = True
        with pytest.raises(NovaError) as error:
            cloud.check_action("stop", server, member)
        assert error.value.message == f"Instance {server.id} is locked"
        admin = Context("a", "p", ("admin",))
        cloud.check_action("stop", server, admin)
        server.host = None
        with pytest.raises(NovaError) as error:
            cloud.check_action("start", server, admin)
        assert error.value.message == f"Instance {server.id} is not ready"
    finally:
        cloud.close()


def test_timeline_runs_callbacks_in_due_order():
    timeline = Timeline()
    done = threading.Event()
    order = []
    try:
        timeline.call_later(0.05, order.append, "late")
        timeline.call_later(0.0, order.append, "early")
        timeline.call_later(0.06, done.set)
        assert done.wait(5)
        assert order == ["early", "late"]
    finally:
        timeline.close()


def test_tokens_are_signed_and_expire(monkeypatch):
    from instance_ha.simcloud import keystone

    identity = keystone.Identity()
    token_id, token = identity.authenticate({"identity": {
        "methods": ["password"],
        "password": {"user": {"name": "demo",
                              "domain": {"name": "Default"},
                              "password": identity.member.password}}}})
    context = identity.validate(token_id)
    assert (context.project_id, context.is_admin) == (
        identity.member_project.id, False)
    assert token.methods == ["password"]
    encoded, _, signature = token_id.partition(".")
    assert identity.validate(encoded + "." + "0" * len(signature)) is None
    assert keystone.Identity().validate(token_id) is None   # other key
    later = keystone.time.time() + keystone.TOKEN_LIFETIME + 1
    monkeypatch.setattr(keystone.time, "time", lambda: later)
    assert identity.validate(token_id) is None
