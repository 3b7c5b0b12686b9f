"""Running a workflow of the pack on the functional tests' embedded
Mistral to its end."""

import json
import time


def run(client, workflow, wf_input, timeout=120, execution=None):
    """Start ``workflow`` (or follow ``execution``) to its end: (execution,
    decoded output)."""
    execution = execution or client.executions.create(
        workflow, workflow_input=wf_input, description="functional test")
    deadline = time.monotonic() + timeout
    while execution.state in ("IDLE", "RUNNING", "PAUSED"):
        assert time.monotonic() < deadline, f"{execution.id} still running"
        time.sleep(0.2)
        execution = client.executions.get(execution.id)
    return execution, json.loads(execution.output or "{}")
