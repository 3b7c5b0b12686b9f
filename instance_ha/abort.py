"""Abort a running host recovery cleanly, through Mistral's own API.

The recovery reads its execution's environment at each step
(``env().instance_ha_abort``, workflows/host_evacuate.yaml): once it holds
a reason, no pass takes a new VM, the passes still running finish with
the VMs they started, the locks the run kept are released and the report
lists the VMs it never touched as ``not_attempted``; the run ends in
ERROR with the reason, and the agent does not start it again.

Mistral lets an execution's environment change only while it is paused
(or idle, or in error), so an abort is two updates of the execution,
which anyone can make with Mistral's client as well::

    mistral execution-update -s PAUSED ID
    mistral execution-update -s RUNNING -e '{"instance_ha_abort": "WHY"}' ID

A pass running when the pause arrives goes on while paused; the next one
starts after the resume and reads the reason.
"""

ENV_KEY = "instance_ha_abort"
HOST_WORKFLOW = "instance_ha.host_evacuate"
DEFAULT_REASON = "an operator asked for it (instance-ha abort)"
MAX_REASON = 200
UNFINISHED = ("RUNNING", "PAUSED", "IDLE")


class NotAbortable(Exception):
    """The execution is no host recovery, or it has ended."""


def reason_problem(reason):
    """What is wrong with an abort reason, or None."""
    if not isinstance(reason, str) or not reason.strip():
        return "the reason must be a non-empty text"
    if len(reason) > MAX_REASON:
        return f"the reason must be at most {MAX_REASON} characters"
    if "\n" in reason or "\r" in reason:
        return "the reason must be one line"
    return None


def aborted(execution_output):
    """The abort reason in a host recovery's output (a dict), or None."""
    if isinstance(execution_output, dict):
        return execution_output.get("aborted")
    return None


def request(client, execution_id, reason=DEFAULT_REASON):
    """Ask the recovery ``execution_id`` to abort; the execution as Mistral
    shows it afterwards.  NotAbortable, changing nothing, unless it is an
    unfinished host recovery."""
    problem = reason_problem(reason)
    if problem:
        raise ValueError(problem)
    execution = client.executions.get(execution_id)
    if execution.workflow_name != HOST_WORKFLOW:
        raise NotAbortable(
            f"execution {execution_id} runs {execution.workflow_name}; only "
            f"host recoveries ({HOST_WORKFLOW}) can be aborted")
    if execution.state not in UNFINISHED:
        raise NotAbortable(f"execution {execution_id} has ended "
                           f"({execution.state}): nothing to abort")
    if execution.state == "RUNNING":
        client.executions.update(execution_id, "PAUSED")
    client.executions.update(execution_id, "RUNNING",
                             env={ENV_KEY: reason})
    return client.executions.get(execution_id)
