"""Confirm, before anything touches Nova, that the failed host is fenced."""

from mistral_lib import actions

from instance_ha import fence_gate


class CheckFencing(actions.Action):
    """``host``: the Nova host; ``fencing``: the workflow's input.

    ``{}`` or ``{"node": N}``: read Pacemaker here, on the executor, and
    fail unless node N (default: ``host``) is offline and fenced after it
    went down, in a partition with quorum (instance_ha/fence_gate.py).
    ``{"override": WHY}``: nothing is checked, and the result says so.

    The result's ``summary`` goes into Nova's disabled reason and the
    workflow's output: it says "fenced" only when Pacemaker said so."""

    def __init__(self, host, fencing):
        self.host = host
        self.fencing = fencing

    def run(self, context):
        if "override" in self.fencing:
            why = self.fencing["override"].strip()
            return {"checked_by": "operator override", "node": None,
                    "fenced_at": None, "override": why,
                    "summary": f"fencing NOT checked, operator override: "
                               f"{why}"}
        node = self.fencing.get("node") or self.host
        try:
            verdict = fence_gate.confirm(node, fence_gate.read_cluster())
        except fence_gate.Refused as exc:
            return self._refuse(str(exc))
        except Exception as exc:  # ClusterReadError, a missing tool, ...
            return self._refuse(f"cannot read Pacemaker on this executor "
                                f"({exc})")
        fenced_at = verdict.fenced_at.isoformat() \
            if verdict.fenced_at else None
        return {"checked_by": "pacemaker", "node": node,
                "fenced_at": fenced_at, "override": None,
                "summary": f"Pacemaker: {node} fenced at {fenced_at}"}

    def _refuse(self, why):
        return actions.Result(error={
            "reason": f"refusing to evacuate {self.host}: {why}; nothing "
                      "was changed (give fencing.override only for a host "
                      "known to be powered off)"})
