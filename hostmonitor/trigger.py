"""What names one host failure's run of ``instance_ha.host_evacuate``:
its execution id, description and input (agent.handoff POSTs it).

The execution id is derived from the failure (host and fence completion
time), so every trigger of the same failure, from any controller, after any
restart, names the same execution; Mistral returns the existing execution
for an id it already has (POST /v2/executions with an ``id``).
"""

import datetime
import uuid

WORKFLOW = "instance_ha.host_evacuate"
# Namespace of the execution ids; changing it would re-trigger every
# failure still in Pacemaker's history.
EXECUTION_NAMESPACE = uuid.UUID("6f0b6a52-8c8e-5d1e-9a3e-2c1d6b7f4e10")
DESCRIPTION_PREFIX = "instance-ha: evacuate host "


def failure_key(host, fenced_at):
    """The identity of one failure of one host, as text (in UTC: the same
    instant must give the same key on every controller)."""
    fenced_at = fenced_at.astimezone(datetime.timezone.utc)
    return f"{host}@{fenced_at.isoformat(timespec='microseconds')}"


def execution_id(host, fenced_at):
    return str(uuid.uuid5(EXECUTION_NAMESPACE, failure_key(host, fenced_at)))


def description(host, fenced_at, origin):
    return (f"{DESCRIPTION_PREFIX}{host} (fenced "
            f"{fenced_at.isoformat(timespec='seconds')}), "
            f"triggered by {origin}")


def workflow_input(host, on_shared_storage, node=None):
    """``host``: the Nova host; ``node``: its Pacemaker node (default: the
    same name), which the workflow finds fenced before it acts."""
    return {"search_opts": {"host": host},
            "fencing": {"node": node or host},
            "on_shared_storage": bool(on_shared_storage)}
