"""Two registrations of the pack at once: the second create meets the
first one's workflow (Mistral: 409 Duplicate entry)."""

import types

import pytest
from mistralclient.api import base as mistral_base

from instance_ha import installer

DUPLICATE = mistral_base.APIException(
    409, "Duplicate entry for WorkflowDefinition ['name', 'namespace', "
         "'project_id']: instance_ha.host_evacuate, , <default-project>")


class Workflows:
    """Mistral's workflows API where another installer created the
    workflow (with ``theirs``) between our read and our create."""

    def __init__(self, theirs):
        self.theirs = theirs
        self.calls = []

    def create(self, text):
        self.calls.append("create")
        raise DUPLICATE

    def get(self, name):
        self.calls.append("get")
        return types.SimpleNamespace(definition=self.theirs)

    def update(self, text):
        self.calls.append("update")
        self.theirs = text


WF = types.SimpleNamespace(workflow="instance_ha.host_evacuate",
                           filename="host_evacuate.yaml", text="ours")


@pytest.mark.parametrize("theirs, change, calls", [
    ("ours", "unchanged", ["create", "get"]),
    ("older", "updated", ["create", "get", "update"]),
])
def test_a_duplicate_is_compared_then_updated(theirs, change, calls):
    client = types.SimpleNamespace(workflows=Workflows(theirs))
    assert installer._install_one(client, WF, None) == change
    assert client.workflows.calls == calls
    assert client.workflows.theirs == "ours"


def test_another_refusal_still_stops_the_install():
    class Refusing(Workflows):
        def create(self, text):
            raise mistral_base.APIException(400, "Invalid DSL")

    client = types.SimpleNamespace(workflows=Refusing("x"))
    with pytest.raises(installer.InstallError, match="Invalid DSL"):
        installer._install_one(client, WF, None)
