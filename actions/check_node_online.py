"""Before a repaired host goes back to work: Pacemaker shows it online."""

from mistral_lib import actions

from instance_ha import fence_gate
from instance_ha import hostmonitor
from instance_ha.hostmonitor import decision


class CheckNodeOnline(actions.Action):
    """``host``: the Nova host; ``node``: its Pacemaker node (None: named
    like the host).  Reads Pacemaker here, on the executor, as the fencing
    check does (fence_gate.read_cluster), and fails with the reason unless
    the partition has quorum and the node's decision is ``online``: not
    fenced and still down, lost, unclean, reconnecting, in standby or in
    maintenance.  Reads and changes nothing else."""

    def __init__(self, host, node=None):
        self.host = host
        self.node = node

    def run(self, context):
        node = self.node or self.host
        try:
            status = fence_gate.read_cluster()
        except Exception as exc:  # ClusterReadError, a missing tool, ...
            return _refused(self.host, f"cannot read Pacemaker on this "
                                       f"executor ({exc})")
        policy = hostmonitor.Policy(computes=(node,), threshold_percent=100)
        assessment = hostmonitor.assess(status, policy)
        if not assessment.quorum:
            return _refused(self.host, "this cluster partition has no "
                                       "quorum")
        verdict = assessment.verdict(node)
        if verdict is None:
            return _refused(self.host, f"Pacemaker has no node named "
                                       f"{node}")
        if verdict.decision != decision.ONLINE:
            return _refused(self.host, f"Pacemaker does not show {node} "
                                       f"online ({verdict.decision}: "
                                       f"{verdict.reason})")
        return {"checked_by": "pacemaker", "node": node,
                "decision": verdict.decision, "reason": verdict.reason}


def _refused(host, why):
    return actions.Result(error={
        "reason": f"refusing to return {host} to service: {why}; nothing "
                  "was changed"})
