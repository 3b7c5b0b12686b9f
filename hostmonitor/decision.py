"""From Pacemaker's view to one decision per node, and the safety gate.

A node is ``failed_fenced`` (safe to evacuate) only when every one of these
holds; the first that does not gives the decision and its reason:

==================  =========================================================
managed compute     matches the configured computes (default: every remote
                    node); never a configured controller, never the DC
not in maintenance  Pacemaker does not manage it: not a failure
not in standby      drained on purpose: not a failure
offline             not online-and-healthy (a remote node whose connection
                    is Starting or failed is not online, whatever
                    ``online`` says)
clean               ``unclean="true"`` means fencing is pending or failed
quorum              a partition without quorum cannot trust its view
fenced after down   a successful reboot/off whose completion is later than
                    (or in the same second as) the last time the host was
                    known up: seen online by this monitor, or a connection
                    operation in the CIB; or, when there is no fence history
                    to read, seen by this monitor lost (unclean) then clean,
                    with fencing enabled
==================  =========================================================

Then, cluster-wide: when more than ``threshold_percent`` of the managed
computes are down (failed_fenced or failed_unfenced), nothing is triggered
and a loud message says why (a partition looks like a mass failure).
"""

import dataclasses
import datetime
import fnmatch

from instance_ha.hostmonitor import fencing

ONLINE = "online"
FAILED_FENCED = "failed_fenced"
FAILED_UNFENCED = "failed_unfenced"
STANDBY = "standby"
MAINTENANCE = "maintenance"
IGNORED = "ignored"
DECISIONS = (ONLINE, FAILED_FENCED, FAILED_UNFENCED, STANDBY, MAINTENANCE,
             IGNORED)
DOWN = (FAILED_FENCED, FAILED_UNFENCED)

DEFAULT_THRESHOLD_PERCENT = 50.0
DEFAULT_DEBOUNCE = 2


@dataclasses.dataclass(frozen=True)
class Policy:
    """Which nodes are computes we manage, and how careful to be.

    ``computes`` and ``controllers`` are shell patterns (fnmatch) on node
    names.  With no ``computes``, every Pacemaker Remote node is a compute
    and no member node is.
    """
    computes: tuple[str, ...] = ()
    controllers: tuple[str, ...] = ()
    threshold_percent: float = DEFAULT_THRESHOLD_PERCENT
    debounce: int = DEFAULT_DEBOUNCE
    # Without a fence history to read, take "seen lost (unclean), then
    # clean" as Pacemaker's proof of fencing.  Off unless asked for: a
    # history that cannot be read is then never taken as fencing.
    infer_fencing: bool = False

    def __post_init__(self):
        if not 0 <= self.threshold_percent <= 100:
            raise ValueError("threshold_percent must be within 0..100")
        if self.debounce < 1:
            raise ValueError("debounce must be at least 1 read")

    def not_managed(self, node, dc):
        """Why ``node`` is not a compute we manage, or None if it is."""
        if any(fnmatch.fnmatchcase(node.name, p) for p in self.controllers):
            return "a controller (configured): never evacuated"
        if node.name == dc:
            return "the DC: a working cluster node, never evacuated"
        if self.computes:
            if not any(fnmatch.fnmatchcase(node.name, p)
                       for p in self.computes):
                return ("not a configured compute host ("
                        + ", ".join(self.computes) + ")")
            return None
        if node.type != "remote":
            return (f"a cluster {node.type} node, not a Pacemaker Remote "
                    "compute (no computes configured)")
        return None


@dataclasses.dataclass
class Memory:
    """What earlier reads saw.  A monitor that runs in a loop keeps one;
    a one-shot read starts with an empty one and knows less."""
    last_seen_online: dict = dataclasses.field(default_factory=dict)
    seen_lost: dict = dataclasses.field(default_factory=dict)
    seen_clean_down: dict = dataclasses.field(default_factory=dict)

    def as_dict(self):
        """JSON-able, for a caller that runs once per read (the resource
        agent) and keeps its memory in a state file."""
        return {field: {name: moment.isoformat()
                        for name, moment in getattr(self, field).items()}
                for field in ("last_seen_online", "seen_lost",
                              "seen_clean_down")}

    @classmethod
    def from_dict(cls, data):
        return cls(**{
            field: {name: datetime.datetime.fromisoformat(moment)
                    for name, moment in (data.get(field) or {}).items()}
            for field in ("last_seen_online", "seen_lost",
                          "seen_clean_down")})

    def observe(self, status, now):
        for node in status.nodes:
            if node.healthy:
                self.last_seen_online[node.name] = now
                self.seen_lost.pop(node.name, None)
                self.seen_clean_down.pop(node.name, None)
            elif node.unclean:
                self.seen_lost.setdefault(node.name, now)
                self.seen_clean_down.pop(node.name, None)
            elif node.name in self.seen_lost:
                self.seen_clean_down.setdefault(node.name, now)


@dataclasses.dataclass(frozen=True)
class Verdict:
    name: str
    type: str
    decision: str
    reason: str
    # failed_fenced only: when the fencing that makes it safe completed
    # (or, proven by our own reads, when we saw it clean): the identity of
    # this failure.
    fenced_at: datetime.datetime | None = None
    # failed_fenced only: fencing seen as lost-then-clean (infer_fencing),
    # not read from a fence history.
    inferred: bool = False

    def as_dict(self):
        return {"name": self.name, "type": self.type,
                "decision": self.decision, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class Assessment:
    quorum: bool
    dc: str | None
    verdicts: tuple[Verdict, ...]
    # Set when too many computes are down at once: nothing is triggered.
    held: str | None = None

    @property
    def failures(self):
        """Hosts that failed and were fenced after they went down."""
        return tuple(v for v in self.verdicts if v.decision == FAILED_FENCED)

    @property
    def to_trigger(self):
        """The failures the gate lets through (none when held)."""
        if self.held or not self.quorum:
            return ()
        return self.failures

    def verdict(self, name):
        for verdict in self.verdicts:
            if verdict.name == name:
                return verdict
        return None

    def as_dict(self):
        return {"quorum": self.quorum,
                "nodes": [v.as_dict() for v in self.verdicts]}


def assess(status, policy, memory=None, now=None):
    """One Verdict per node of ``status`` (a crm_mon.ClusterStatus)."""
    memory = memory if memory is not None else Memory()
    verdicts = tuple(_verdict(node, status, policy, memory)
                     for node in status.nodes)
    held = _mass_failure(verdicts, policy)
    if held:
        verdicts = tuple(
            dataclasses.replace(v, reason=f"{v.reason}; HELD: {held}")
            if v.decision == FAILED_FENCED else v for v in verdicts)
    return Assessment(quorum=status.quorum, dc=status.dc, verdicts=verdicts,
                      held=held)


def _verdict(node, status, policy, memory):
    def verdict(decision, reason, fenced_at=None, inferred=False):
        return Verdict(name=node.name, type=node.type, decision=decision,
                       reason=reason, fenced_at=fenced_at, inferred=inferred)

    why_not = policy.not_managed(node, status.dc)
    if why_not:
        return verdict(IGNORED, why_not)
    if node.maintenance:
        return verdict(MAINTENANCE, "in maintenance mode: Pacemaker does "
                       "not manage it, not a failure")
    if node.standby:
        return verdict(STANDBY, "in standby: drained on purpose, not a "
                       "failure")
    if node.healthy:
        return verdict(ONLINE, _online_reason(node))
    down = _down_words(node)
    if node.unclean:
        pending = status.fence_events is not None and \
            fencing.pending_for(status.fence_events, node.name)
        return verdict(FAILED_UNFENCED, f"{down}, unclean: fencing "
                       + ("under way" if pending else "not done yet")
                       + "; not safe")
    if not status.quorum:
        return verdict(FAILED_UNFENCED, f"{down}, but this partition has no "
                       "quorum: its view cannot be trusted; not safe")
    return _fencing_verdict(node, status, memory, down, verdict,
                            policy.infer_fencing)


def _fencing_verdict(node, status, memory, down, verdict, infer_fencing):
    last_up, up_source = _last_known_up(node, memory)
    events = status.fence_events
    if events is not None:
        fence = fencing.last_fenced(events, node.name)
        if fence and last_up and _after(fence.completed, last_up):
            return verdict(
                FAILED_FENCED,
                f"{down}; fenced ({fence.action}) at {_t(fence.completed)}, "
                f"after it was last known up at {_t(last_up)} "
                f"({up_source})", fenced_at=fence.completed)
    if events is None:
        # No history to read: Pacemaker's own word, lost then clean, is
        # the proof, unless fencing is disabled (then a lost node turns
        # clean without being fenced).  A history that exists and shows no
        # fencing always wins over it.
        lost_at = memory.seen_lost.get(node.name)
        clean_at = memory.seen_clean_down.get(node.name)
        if infer_fencing and lost_at and clean_at and \
                status.stonith_enabled:
            return verdict(
                FAILED_FENCED,
                f"{down}; seen lost (unclean) at {_t(lost_at)} and clean "
                f"at {_t(clean_at)}: Pacemaker fenced it (no fence history "
                "to read)", fenced_at=clean_at, inferred=True)
        return verdict(FAILED_UNFENCED, f"{down}; no fence history to "
                       "confirm fencing"
                       + ("" if infer_fencing or not (lost_at and clean_at)
                          else " (seen lost then clean, but infer_fencing "
                          "is off)")
                       + ("" if status.stonith_enabled
                          else " and fencing is disabled") + "; not safe")
    fence = fencing.last_fenced(events, node.name)
    if fence is None:
        failed = fencing.failed_after(events, node.name, last_up)
        if failed:
            return verdict(FAILED_UNFENCED, f"{down}; fencing failed at "
                           f"{_t(failed.completed)}; not safe")
        return verdict(FAILED_UNFENCED, f"{down}; never fenced: a clean "
                       "stop or shutdown is not a failure; not safe")
    if last_up is None:
        return verdict(FAILED_UNFENCED, f"{down}; fenced at "
                       f"{_t(fence.completed)} but nothing says when it was "
                       "last up (not seen online by this monitor, no "
                       "connection history): that fence may be stale; not "
                       "safe")
    return verdict(FAILED_UNFENCED, f"{down}; last fenced at "
                   f"{_t(fence.completed)}, before it was last known up at "
                   f"{_t(last_up)} ({up_source}): stale; not safe")


def _after(fenced, last_up):
    """Whether a fencing completed after the host was last known up.

    Pacemaker 2.1.5 prints both times in whole seconds, and without a fence
    delay fencing completes 30-50 ms after the failure (measured): the same
    second counts as after.  A fence completed in the second in which the
    host was still up cannot be a stale one: a fenced host is off or
    rebooting, and takes far longer than that to be seen up again.
    """
    return fenced >= last_up.replace(microsecond=0)


def _last_known_up(node, memory):
    candidates = []
    seen = memory.last_seen_online.get(node.name)
    if seen:
        candidates.append((seen, "seen online by this monitor"))
    if node.connection is not None:
        up = node.connection.last_up()
        if up:
            candidates.append((up, f"connection {node.connection.resource} "
                               "operation history"))
    if not candidates:
        return None, None
    return max(candidates, key=lambda c: c[0])


def _online_reason(node):
    if node.shutdown:
        return "online, shutting down"
    if node.type == "remote":
        return f"online, connection {node.connection.resource} Started"
    return "online"


def _down_words(node):
    if node.online and node.connection is not None:
        return (f"online in crm_mon but its connection "
                f"{node.connection.resource} is {node.connection.role}"
                + (" and failed" if node.connection.failed else ""))
    if node.online and node.pending:
        return "joining (pending), not online yet"
    if node.connection is not None and node.connection.failed:
        return f"offline (connection {node.connection.resource} failed)"
    return "offline"


def _mass_failure(verdicts, policy):
    managed = [v for v in verdicts if v.decision != IGNORED]
    down = [v for v in managed if v.decision in DOWN]
    if not managed or not down:
        return None
    share = 100.0 * len(down) / len(managed)
    if share <= policy.threshold_percent:
        return None
    return (f"{len(down)} of {len(managed)} compute hosts are down "
            f"({share:.0f}% > {policy.threshold_percent:g}%): this looks "
            "like a partition or a mass failure; no automatic evacuation, "
            "an operator must decide")


def _t(moment):
    return moment.isoformat(timespec="seconds")


class Debounce:
    """Act on a decision only after ``reads`` consecutive reads agree.

    A decision is stable once the same (decision, fenced_at) has been seen
    for ``reads`` reads in a row for that node.
    """

    def __init__(self, reads=DEFAULT_DEBOUNCE):
        if reads < 1:
            raise ValueError("reads must be at least 1")
        self.reads = reads
        self._streaks = {}

    def as_dict(self):
        """JSON-able state (see Memory.as_dict)."""
        return {name: [decision, fenced_at.isoformat() if fenced_at
                       else None, count]
                for name, ((decision, fenced_at), count)
                in self._streaks.items()}

    @classmethod
    def from_dict(cls, reads, data):
        debounce = cls(reads)
        for name, (decision, fenced_at, count) in data.items():
            key = (decision, datetime.datetime.fromisoformat(fenced_at)
                   if fenced_at else None)
            debounce._streaks[name] = (key, count)
        return debounce

    def update(self, assessment):
        """The verdicts of this read that are stable."""
        stable = []
        seen = set()
        for verdict in assessment.verdicts:
            seen.add(verdict.name)
            key = (verdict.decision, verdict.fenced_at)
            previous_key, count = self._streaks.get(verdict.name, (None, 0))
            count = count + 1 if previous_key == key else 1
            self._streaks[verdict.name] = (key, count)
            if count >= self.reads:
                stable.append(verdict)
        for gone in set(self._streaks) - seen:
            del self._streaks[gone]
        return tuple(stable)
