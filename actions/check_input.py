"""Check a workflow's input before anything touches Nova."""

from mistral_lib import actions

from instance_ha import workflow_inputs


class CheckInput(actions.Action):
    """``given``: the workflow's input, as Mistral resolved it (defaults
    filled in).  Fails with one line naming every bad input
    (instance_ha.workflow_inputs.RULES); reads and changes nothing."""

    def __init__(self, workflow, given):
        self.workflow = workflow
        self.given = given

    def run(self, context):
        if self.workflow not in workflow_inputs.RULES:
            return actions.Result(error={
                "reason": f"bad input: no rules for workflow "
                          f"{self.workflow!r}"})
        if not isinstance(self.given, dict):
            return actions.Result(error={
                "reason": "bad input: the workflow input must be a dict"})
        found = workflow_inputs.problems(self.workflow, self.given)
        if found:
            return actions.Result(error={
                "reason": "bad input: " + "; ".join(found)})
        return {"workflow": self.workflow, "checked": sorted(self.given)}
