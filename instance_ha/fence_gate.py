"""Safety rule 1 for a manual evacuation: Pacemaker must show the host
offline AND fenced after it went down, in a partition with quorum."""

from instance_ha import hostmonitor


def refusal(host, status):
    """Why ``host`` must not be evacuated now, or None when it may be.

    The operator named the host, so it counts as a managed compute
    whatever its node type, and the mass-failure hold (which exists for
    automatic action) does not apply; quorum and fencing do."""
    policy = hostmonitor.Policy(computes=(host,), threshold_percent=100)
    assessment = hostmonitor.assess(status, policy)
    if not assessment.quorum:
        return "this cluster partition has no quorum"
    verdict = assessment.verdict(host)
    if verdict is None:
        return f"Pacemaker has no node named {host}"
    if verdict.decision != "failed_fenced":
        return (f"Pacemaker does not show {host} fenced "
                f"({verdict.decision}: {verdict.reason})")
    return None
