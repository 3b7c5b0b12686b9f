"""Safety rule 1 for any evacuation: Pacemaker must show the host offline
AND fenced after it went down, in a partition with quorum, now.

The same gate for every path that reaches Mistral (the agent, the CLI,
the Mistral API), on the executor: host_evacuate's confirm_fencing step
(actions/check_fencing.py), and again the one action that evacuates
(actions/recover_servers.py) before it touches a server, so that running
it alone through the Mistral API is no way around the rule.  The agent's
own decision (hostmonitor.decision) applies the same rule before it
starts a run."""

import os

from instance_ha import hostmonitor

# On the executor, where the workflow reads Pacemaker: the tools' paths
# come from the executor's environment, never from an execution's input.
CRM_MON_ENV = "INSTANCE_HA_CRM_MON"
STONITH_ADMIN_ENV = "INSTANCE_HA_STONITH_ADMIN"


class Refused(Exception):
    """Fencing is not confirmed; the message says why, in one line."""


def confirm(node, status):
    """The failed_fenced Verdict of ``node`` in ``status``; Refused when
    it must not be evacuated now.

    The node is named by the caller, so it counts as a managed compute
    whatever its node type, and the mass-failure hold (which exists for
    automatic action) does not apply; quorum and fencing do."""
    policy = hostmonitor.Policy(computes=(node,), threshold_percent=100)
    assessment = hostmonitor.assess(status, policy)
    if not assessment.quorum:
        raise Refused("this cluster partition has no quorum")
    verdict = assessment.verdict(node)
    if verdict is None:
        raise Refused(f"Pacemaker has no node named {node}")
    if verdict.decision != "failed_fenced":
        raise Refused(f"Pacemaker does not show {node} fenced "
                      f"({verdict.decision}: {verdict.reason})")
    return verdict


def refusal(node, status):
    """Why ``node`` must not be evacuated now, or None when it may be."""
    try:
        confirm(node, status)
    except Refused as exc:
        return str(exc)
    return None


def check(host, fencing, read=None):
    """What the ``fencing`` input of an evacuation says of ``host`` now:
    ``{}`` or ``{"node": N}``: Pacemaker is read (``read()``, default the
    live cluster through this executor's tools) and node N (default
    ``host``) must be offline and fenced after it went down, with quorum;
    ``{"override": WHY}``: nothing is checked, and the result says so.

    Returns the record that goes into the output and Nova's disabled
    reason (its ``summary`` says "fenced" only when Pacemaker said so);
    Refused, with the whole one-line reason, when it must not go on."""
    if "override" in fencing:
        why = fencing["override"].strip()
        return {"checked_by": "operator override", "node": None,
                "fenced_at": None, "override": why,
                "summary": f"fencing NOT checked, operator override: {why}"}
    node = fencing.get("node") or host
    try:
        verdict = confirm(node, (read or read_cluster)())
    except Refused as exc:
        raise _refusal(host, str(exc)) from None
    except Exception as exc:  # ClusterReadError, a missing tool, ...
        raise _refusal(host, f"cannot read Pacemaker on this executor "
                             f"({exc})") from None
    fenced_at = verdict.fenced_at.isoformat() if verdict.fenced_at else None
    return {"checked_by": "pacemaker", "node": node, "fenced_at": fenced_at,
            "override": None,
            "summary": f"Pacemaker: {node} fenced at {fenced_at}"}


def _refusal(host, why):
    return Refused(f"refusing to evacuate {host}: {why}; nothing was "
                   "changed (give fencing.override only for a host known "
                   "to be powered off)")


def read_cluster(environ=os.environ):
    """The live cluster, read with the tools this process is configured
    for (ClusterReadError when it cannot be read)."""
    from instance_ha.hostmonitor import crm_mon
    from instance_ha.hostmonitor import fencing

    return crm_mon.read_cluster(
        crm_mon=environ.get(CRM_MON_ENV) or crm_mon.CRM_MON,
        stonith_admin=environ.get(STONITH_ADMIN_ENV)
        or fencing.STONITH_ADMIN)
