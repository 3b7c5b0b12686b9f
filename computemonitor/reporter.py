"""How a compute's monitors reach the controllers: Mistral's API, with
credentials of their own (clouds.yaml or OS_* variables, never argv), an
execution started under an id the monitor derives from the failure.

POST /v2/executions with an ``id`` Mistral already has returns that
execution, so starting again after a lost answer, a restart of the monitor
or a retry is harmless.  Every call here is one attempt: an unreachable or
refusing Mistral is logged and answered with None, and the monitor's loop,
which keeps the failure in its record, asks again at its next pass.
"""

import json
import logging

from instance_ha import mistral_client

LOG = logging.getLogger(__name__)
TERMINAL = ("SUCCESS", "ERROR", "CANCELLED")


class Reporter:
    """``connect()``: a python-mistralclient client (mistral_client.connect
    with the monitor's options); made again after a failed call."""

    def __init__(self, connect):
        self._connect = connect
        self._client = None
        self._last_problem = None

    def start(self, execution_id, workflow, wf_input, description):
        """The execution (a dict: id, state, output), created or found;
        None when Mistral cannot be asked now."""
        body = {"id": execution_id, "workflow_name": workflow,
                "input": json.dumps(wf_input), "description": description}
        return self._call(
            f"starting {workflow} {execution_id}",
            lambda client: client.executions._create("/executions", body))

    def get(self, execution_id):
        """The execution (a dict), or None when Mistral cannot be asked
        now (or does not know it: a ``missing`` dict)."""
        return self._call(f"reading execution {execution_id}",
                          lambda client: client.executions.get(
                              execution_id))

    def _call(self, what, request):
        try:
            if self._client is None:
                self._client = self._connect()
            execution = request(self._client)
        except mistral_client.MistralError as exc:
            self._problem(what, str(exc))
            return None
        except mistral_client.TRANSPORT_ERRORS as exc:
            self._client = None
            if getattr(exc, "error_code", None) == 404:
                return {"id": None, "state": "MISSING", "output": {}}
            self._problem(what, mistral_client.describe(exc))
            return None
        if self._last_problem:
            LOG.info("Mistral answers again")
            self._last_problem = None
        return view(execution)

    def _problem(self, what, problem):
        # One line per new problem, not one per pass of the loop.
        level = logging.WARNING if problem != self._last_problem \
            else logging.DEBUG
        LOG.log(level, "%s: %s; asking again later", what, problem)
        self._last_problem = problem


def view(execution):
    output = getattr(execution, "output", None) or "{}"
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            output = {}
    return {"id": execution.id, "state": execution.state,
            "state_info": getattr(execution, "state_info", None),
            "output": output}
