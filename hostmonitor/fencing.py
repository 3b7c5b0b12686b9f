"""Pacemaker's fence history: who was fenced, how, and when it completed.

Two sources give the same ``<fence_event>`` elements:

* ``crm_mon --include=fencing-succeeded --output-as=xml`` puts them in a
  ``<fence_history>`` element of its status document (read by crm_mon.py);
* ``stonith_admin --history NODE --verbose --output-as=xml`` lists them for
  one node.  Without ``--verbose`` Pacemaker 2.1.5 shows one, stale, event
  (measured), so ``--verbose`` is always given.

Both need a running fencer; the history lives in its memory (it is lost on a
full cluster restart), never in the CIB.
"""

import dataclasses
import datetime

from instance_ha.hostmonitor import pcmk

STONITH_ADMIN = "stonith_admin"

SUCCESS = "success"
FAILED = "failed"
PENDING = "pending"
# Actions after which the target is known to be powered off or rebooted.
# "on" is unfencing: it proves nothing about the host being down.
FENCING_ACTIONS = frozenset({"reboot", "off"})


@dataclasses.dataclass(frozen=True)
class FenceEvent:
    target: str
    action: str
    status: str  # success | failed | pending
    completed: datetime.datetime | None  # None while pending
    delegate: str = ""
    origin: str = ""
    client: str = ""

    @property
    def fenced(self):
        """A completed, successful reboot or power-off of the target."""
        return (self.status == SUCCESS and self.action in FENCING_ACTIONS
                and self.completed is not None)


def parse_events(root):
    """Every ``<fence_event>`` under ``root`` (an lxml element)."""
    events = []
    for element in root.iter("fence_event"):
        target = element.get("target")
        status = element.get("status")
        if not target or status not in (SUCCESS, FAILED, PENDING):
            raise pcmk.ClusterReadError(
                f"fence_event without a target or a known status: "
                f"{dict(element.attrib)}")
        completed = pcmk.parse_time(element.get("completed"))
        if status == SUCCESS and completed is None:
            raise pcmk.ClusterReadError(
                f"successful fence_event for {target} without a completion "
                "time")
        events.append(FenceEvent(
            target=target, action=element.get("action", ""), status=status,
            completed=completed, delegate=element.get("delegate", ""),
            origin=element.get("origin", ""),
            client=element.get("client", "")))
    return tuple(events)


def parse_history(text, what="fence history"):
    """Fence events from a stonith_admin or crm_mon XML document."""
    root = pcmk.parse_xml(text, what)
    pcmk.check_result_status(root, what)
    history = root.find("fence_history")
    if history is not None and history.get("status", "0") != "0":
        raise pcmk.ClusterReadError(
            f"{what}: the fencer did not give its history (status "
            f"{history.get('status')})")
    if root.tag == "pacemaker-result" and history is None and \
            root.find("list") is None:
        raise pcmk.ClusterReadError(f"{what}: no fence history in it")
    return parse_events(root)


def read_history(node, stonith_admin=STONITH_ADMIN,
                 timeout=pcmk.DEFAULT_TIMEOUT, env=None):
    """The fence history of ``node`` (``'*'`` for all) from the fencer."""
    argv = [stonith_admin, "--history", node, "--verbose",
            "--output-as=xml"]
    result = pcmk.run(argv, timeout=timeout, env=env)
    return parse_history(result.stdout, " ".join(argv))


def last_fenced(events, target):
    """The latest successful fencing of ``target``, or None."""
    done = [e for e in events if e.target == target and e.fenced]
    return max(done, key=lambda e: e.completed, default=None)


def pending_for(events, target):
    """Whether a fencing action against ``target`` is under way."""
    return any(e.target == target and e.status == PENDING for e in events)


def failed_after(events, target, moment):
    """The latest failed fencing of ``target`` after ``moment``, or None."""
    failed = [e for e in events if e.target == target
              and e.status == FAILED and e.completed is not None
              and (moment is None or e.completed > moment)]
    return max(failed, key=lambda e: e.completed, default=None)
