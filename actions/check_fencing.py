"""Confirm, before anything touches Nova, that the failed host is fenced."""

from mistral_lib import actions

from instance_ha import fence_gate


class CheckFencing(actions.Action):
    """``host``: the Nova host; ``fencing``: the workflow's input, as
    fence_gate.check reads it.  Fails, with the reason, unless Pacemaker
    (read here, on the executor) shows the host fenced now or the input
    is an operator override; the result's ``summary`` goes into Nova's
    disabled reason and the workflow's output."""

    def __init__(self, host, fencing):
        self.host = host
        self.fencing = fencing

    def run(self, context):
        try:
            return fence_gate.check(self.host, self.fencing)
        except fence_gate.Refused as exc:
            return actions.Result(error={"reason": str(exc)})
