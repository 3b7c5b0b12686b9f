"""Starting the host workflow through python-mistralclient, against an
HTTP server on 127.0.0.1 that answers like Mistral's executions API."""

import datetime
import json
import uuid

import pytest

from instance_ha import mistral_client
from instance_ha.agent import handoff
from instance_ha.hostmonitor import decision
from instance_ha.hostmonitor import store
from instance_ha.hostmonitor import trigger

FENCED_AT = datetime.datetime(2026, 11, 21, 6, 22, 27,
                              tzinfo=datetime.timezone.utc)
VERDICT = decision.Verdict(name="rn1", type="remote",
                           decision=decision.FAILED_FENCED, reason="test",
                           fenced_at=FENCED_AT)


@pytest.fixture
def client(fake_mistral):
    return mistral_client.connect(mistral_url=fake_mistral.url, timeout=5)


def test_execution_id_is_deterministic_per_failure():
    first = trigger.execution_id("rn1", FENCED_AT)
    assert first == trigger.execution_id("rn1", FENCED_AT)
    assert uuid.UUID(first).version == 5
    later = FENCED_AT + datetime.timedelta(seconds=1)
    assert trigger.execution_id("rn1", later) != first
    assert trigger.execution_id("rn2", FENCED_AT) != first
    # The same instant in another zone is the same failure.
    paris = FENCED_AT.astimezone(datetime.timezone(datetime.timedelta(
        hours=1)))
    assert trigger.execution_id("rn1", paris) == first
    assert trigger.failure_key("rn1", FENCED_AT) == \
        "rn1@2026-11-21T06:22:27.000000+00:00"


def start(client, on_shared_storage=True, origin="test"):
    """One failure's run, as the agent and the daemon start it."""
    return handoff.start(client, VERDICT.name, VERDICT.fenced_at, 0,
                         trigger.WORKFLOW, on_shared_storage, origin)


def test_trigger_posts_the_workflow_with_its_id(fake_mistral, client):
    execution = start(client, on_shared_storage=False,
                      origin="hostmonitor on cn1")
    assert execution.id == trigger.execution_id("rn1", FENCED_AT)
    [body] = fake_mistral.posts
    assert body["id"] == execution.id
    assert body["workflow_name"] == "instance_ha.host_evacuate"
    assert json.loads(body["input"]) == {
        "search_opts": {"host": "rn1"}, "fencing": {"node": "rn1"},
        "on_shared_storage": False}
    assert body["description"].startswith(
        "instance-ha: evacuate host rn1 (fenced 2026-11-21T06:22:27+00:00)")
    assert "hostmonitor on cn1" in body["description"]


def test_repeated_trigger_returns_the_same_execution(fake_mistral, client):
    first = start(client)
    again = start(client)
    assert again.id == first.id
    assert len(fake_mistral.posts) == 2
    assert list(fake_mistral.executions) == [first.id]


def test_mistral_error_is_raised(fake_mistral, client):
    fake_mistral.fail_next = 1
    with pytest.raises(mistral_client.TRANSPORT_ERRORS):
        start(client)


def test_find_execution(fake_mistral, client):
    assert store.find_execution(client, "rn1", FENCED_AT) is None
    assert store.find_execution(client, "rn1") is None
    started = start(client)
    assert store.find_execution(client, "rn1", FENCED_AT).id == started.id
    assert store.find_execution(client, "rn1").id == started.id
    # "rn1" must not match "rn10".
    assert store.find_execution(client, "rn") is None
