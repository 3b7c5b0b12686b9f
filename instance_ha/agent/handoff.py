"""Start one failure's workflow run under a deterministic id.

Attempt 0 has hostmonitor's id, ``trigger.execution_id(host, fenced_at)``
(so the agent, the ``instance-ha hostmonitor`` daemon and any controller
name the same execution); attempt N > 0 (a restart by the watchdog) has
``uuid5(namespace, failure_key + "#N")``.  Every id is POSTed with
``/v2/executions`` and Mistral returns the existing execution for an id it
already has: exactly once per (failure, attempt), by construction,
whoever asks and however often.

The return of the host to service after that failure
(``instance_ha.host_return``, started by the agent with ``return_hosts``)
has ``uuid5(namespace, failure_key + "#return")``: one per failure too.
"""

import json
import uuid

from instance_ha.hostmonitor import trigger


def execution_id(host, fenced_at, attempt=0):
    if attempt == 0:
        return trigger.execution_id(host, fenced_at)
    key = trigger.failure_key(host, fenced_at)
    return str(uuid.uuid5(trigger.EXECUTION_NAMESPACE, f"{key}#{attempt}"))


def attempt_of(host, fenced_at, execution_id_, limit=100):
    """Which attempt ``execution_id_`` is for this failure, or None."""
    for attempt in range(limit):
        if execution_id(host, fenced_at, attempt) == execution_id_:
            return attempt
    return None


def return_execution_id(host, fenced_at):
    key = trigger.failure_key(host, fenced_at)
    return str(uuid.uuid5(trigger.EXECUTION_NAMESPACE, f"{key}#return"))


def body(host, fenced_at, attempt, workflow, on_shared_storage, origin,
         wf_input=None):
    """``host``: the Pacemaker node (the failure's identity);
    ``wf_input``: the workflow's input (AgentConfig.workflow_input), by
    default the node as Nova host with on_shared_storage."""
    description = trigger.description(host, fenced_at, origin)
    if attempt:
        description += f", attempt {attempt + 1}"
    return {
        "id": execution_id(host, fenced_at, attempt),
        "workflow_name": workflow,
        "input": json.dumps(wf_input or trigger.workflow_input(
            host, on_shared_storage)),
        "description": description,
    }


def start(client, host, fenced_at, attempt, workflow, on_shared_storage,
          origin, wf_input=None):
    """The execution of this (failure, attempt): created, or the existing
    one.  Raises what python-mistralclient raises."""
    return client.executions._create("/executions", body(
        host, fenced_at, attempt, workflow, on_shared_storage, origin,
        wf_input))


RETURN_WORKFLOW = "instance_ha.host_return"
RETURN_DESCRIPTION_PREFIX = "instance-ha: return host "


def return_input(node, nova_host):
    """host_return's input: the Nova host, and the Pacemaker node where
    its name differs (the workflow's default is the host's name)."""
    wf_input = {"host": nova_host}
    if node != nova_host:
        wf_input["node"] = node
    return wf_input


def start_return(client, node, fenced_at, nova_host, origin):
    """The host_return execution after this failure of ``node``: created,
    or the existing one.  Raises what python-mistralclient raises."""
    return client.executions._create("/executions", {
        "id": return_execution_id(node, fenced_at),
        "workflow_name": RETURN_WORKFLOW,
        "input": json.dumps(return_input(node, nova_host)),
        "description": (f"{RETURN_DESCRIPTION_PREFIX}{node} to service "
                        f"(fenced {fenced_at.isoformat(timespec='seconds')})"
                        f", triggered by {origin}"),
    })
