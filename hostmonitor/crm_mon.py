"""The cluster as crm_mon shows it, as plain data.

Reads ``crm_mon --output-as=xml`` (Pacemaker >= 2.0.3, root
``<pacemaker-result>``) and the older ``crm_mon --as-xml`` (root
``<crm_mon>``; still accepted by 2.1.5).  Both carry the same body.
"""

import dataclasses
import datetime
import logging

from instance_ha.hostmonitor import fencing
from instance_ha.hostmonitor import pcmk

LOG = logging.getLogger(__name__)
CRM_MON = "crm_mon"
MEMBER = "member"
REMOTE = "remote"
STARTED = "Started"
# rc of an operation still in flight in the history (PCMK_OCF_UNKNOWN,
# recorded with record-pending, call="-1").
PENDING_RC = 193


@dataclasses.dataclass(frozen=True)
class Operation:
    """One entry of the operation history of a resource on a node."""
    task: str
    rc: int
    last_rc_change: datetime.datetime | None
    on_node: str
    interval_ms: int = 0  # 0: not recurring (start, stop, probe)


@dataclasses.dataclass(frozen=True)
class Connection:
    """The connection resource (ocf:pacemaker:remote) of a remote node."""
    resource: str
    role: str  # Started, Starting, Stopped, Stopping, ...
    failed: bool
    operations: tuple[Operation, ...] = ()

    @property
    def healthy(self):
        """Started, not failed, and no start still in flight: while the
        cluster retries the connection to a dead remote daemon, crm_mon
        2.1.5 shows it Started with the start pending (rc 193, measured;
        tests/unit/agent_fixtures/crm_mon_rn1_reconnecting_started.xml)."""
        return self.role == STARTED and not self.failed and not any(
            op.task == "start" and op.rc == PENDING_RC
            for op in self.operations)

    def last_up(self):
        """The latest time the connection is known to have worked: a
        successful start or monitor, or a failed recurring monitor (the
        host was up until the monitor noticed).  Stops, failed starts and
        failed probes say nothing about the host being up.  None when the
        history has nothing."""
        times = [op.last_rc_change for op in self.operations
                 if op.last_rc_change is not None and (
                     (op.task in ("start", "monitor") and op.rc == 0)
                     or (op.task == "monitor" and op.interval_ms > 0))]
        return max(times, default=None)


@dataclasses.dataclass(frozen=True)
class Node:
    name: str
    type: str  # member | remote (crm_mon also knows ping, unknown)
    online: bool
    standby: bool = False
    maintenance: bool = False
    pending: bool = False
    unclean: bool = False
    shutdown: bool = False
    expected_up: bool = False
    is_dc: bool = False
    connection: Connection | None = None  # remote nodes only

    @property
    def healthy(self):
        """Online in a way that can be trusted.

        A remote node reads online="true" while its connection is only
        Starting, or has failed (measured on 2.1.5); a joining member is
        online="true" pending="true".
        """
        if not self.online or self.unclean or self.pending:
            return False
        if self.type == REMOTE:
            return self.connection is not None and self.connection.healthy
        return True

    def state(self):
        """crm_mon's view in a few words, for people."""
        words = ["online" if self.online else "offline"]
        for name in ("unclean", "pending", "standby", "maintenance",
                     "shutdown"):
            if getattr(self, name):
                words.append(name)
        if self.connection is not None:
            words.append(f"connection {self.connection.role}"
                         + (" failed" if self.connection.failed else ""))
        return ", ".join(words)


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    quorum: bool
    dc: str | None
    nodes: tuple[Node, ...]
    # None: this read did not include the fence history (unknown), as
    # opposed to () (known: nothing was fenced).
    fence_events: tuple[fencing.FenceEvent, ...] | None = None
    format: str = "pacemaker-result"
    # The cluster option; with it false Pacemaker calls a lost node clean
    # without fencing it.
    stonith_enabled: bool = True

    def node(self, name):
        for node in self.nodes:
            if node.name == name:
                return node
        return None

    def with_fence_events(self, events):
        return dataclasses.replace(self, fence_events=tuple(events))


def parse(text, what="crm_mon XML"):
    """A ClusterStatus from either XML format; ClusterReadError if the
    document is not a complete, successful crm_mon status."""
    root = pcmk.parse_xml(text, what)
    if root.tag not in ("pacemaker-result", "crm_mon"):
        raise pcmk.ClusterReadError(
            f"{what}: root element <{root.tag}>, expected <pacemaker-result> "
            "or <crm_mon>")
    pcmk.check_result_status(root, what)
    nodes_element = root.find("nodes")
    summary = root.find("summary")
    if nodes_element is None or summary is None:
        # crm_mon 2.1.5 exits 0, status "OK", when it cannot reach the CIB.
        errors = "; ".join(e.text.strip() for e in root.iter("error")
                           if e.text and e.text.strip())
        raise pcmk.ClusterReadError(f"{what}: no <summary> or <nodes>: not "
                                    "a cluster status"
                                    + (f" ({errors})" if errors else ""))
    dc = summary.find("current_dc")
    present = dc is not None and pcmk.flag(dc, "present")
    quorum = present and pcmk.flag(dc, "with_quorum")
    history = _operation_history(root)
    nodes = tuple(_node(element, root, history, what)
                  for element in nodes_element.findall("node"))
    fence_events = None
    fence_history = root.find("fence_history")
    if fence_history is not None and \
            fence_history.get("status", "0") == "0":
        fence_events = fencing.parse_events(fence_history)
    options = summary.find("cluster_options")
    return ClusterStatus(
        quorum=quorum, dc=dc.get("name") if present else None, nodes=nodes,
        fence_events=fence_events, format=root.tag,
        stonith_enabled=options is None
        or pcmk.flag(options, "stonith-enabled", default=True))


def _node(element, root, history, what):
    name = element.get("name")
    if not name or element.get("online") is None:
        raise pcmk.ClusterReadError(f"{what}: a <node> without a name or "
                                    f"online attribute: "
                                    f"{dict(element.attrib)}")
    node_type = element.get("type", "unknown")
    connection = None
    if node_type == REMOTE:
        connection = _connection(root, element.get("id_as_resource") or name,
                                 history)
    return Node(
        name=name, type=node_type, online=pcmk.flag(element, "online"),
        standby=pcmk.flag(element, "standby"),
        maintenance=pcmk.flag(element, "maintenance"),
        pending=pcmk.flag(element, "pending"),
        unclean=pcmk.flag(element, "unclean"),
        shutdown=pcmk.flag(element, "shutdown"),
        expected_up=pcmk.flag(element, "expected_up"),
        is_dc=pcmk.flag(element, "is_dc"), connection=connection)


def _connection(root, resource_id, history):
    resources = root.find("resources")
    element = None
    if resources is not None:
        for candidate in resources.iter("resource"):
            if candidate.get("id") == resource_id:
                element = candidate
                break
    if element is None:
        # Not in the resource list: crm_mon lists inactive resources only
        # with --inactive.  Unknown role: never healthy.
        return Connection(resource=resource_id, role="unknown",
                          failed=False,
                          operations=history.get(resource_id, ()))
    return Connection(resource=resource_id,
                      role=element.get("role", "unknown"),
                      failed=pcmk.flag(element, "failed"),
                      operations=history.get(resource_id, ()))


def _operation_history(root):
    """resource id -> its operations on every node, from <node_history>."""
    history = {}
    section = root.find("node_history")
    if section is None:
        return history
    for node in section.findall("node"):
        for resource in node.findall("resource_history"):
            operations = history.setdefault(resource.get("id"), [])
            for op in resource.findall("operation_history"):
                try:
                    rc = int(op.get("rc", ""))
                except ValueError:
                    continue
                operations.append(Operation(
                    task=op.get("task", ""), rc=rc,
                    last_rc_change=pcmk.parse_time(op.get("last-rc-change")),
                    on_node=node.get("name", ""),
                    interval_ms=_milliseconds(op.get("interval"))))
    return {rsc: tuple(ops) for rsc, ops in history.items()}


def _milliseconds(text):
    """crm_mon's "5000ms" (absent for non-recurring operations)."""
    text = (text or "0").strip().removesuffix("ms")
    return int(text) if text.isdigit() else 0


def read(crm_mon=CRM_MON, fence_history=True, legacy=False,
         timeout=pcmk.DEFAULT_TIMEOUT, env=None):
    """The live cluster's status (one crm_mon run).

    With ``fence_history`` the successful fence events come in the same
    document (``--include=fencing-succeeded``); ``fence_events`` stays None
    when the fencer could not give them.
    """
    argv = [crm_mon, "-1"]
    argv += ["--as-xml"] if legacy else ["--output-as=xml"]
    if fence_history and not legacy:
        argv.append("--include=fencing-succeeded")
    result = pcmk.run(argv, timeout=timeout, env=env)
    return parse(result.stdout, " ".join(argv))


def read_cluster(crm_mon=CRM_MON, stonith_admin=fencing.STONITH_ADMIN,
                 timeout=pcmk.DEFAULT_TIMEOUT, env=None):
    """The live cluster's status with its fence history.

    The history comes with crm_mon; when crm_mon could not give it, from
    ``stonith_admin --history NODE --verbose`` for each node that is not
    healthy.  If that fails too, ``fence_events`` stays None: no node can
    then be found fenced (unknown is never "fenced").
    """
    status = read(crm_mon, fence_history=True, timeout=timeout, env=env)
    if status.fence_events is not None:
        return status
    events = []
    try:
        for node in status.nodes:
            if not node.healthy:
                events += fencing.read_history(node.name, stonith_admin,
                                               timeout=timeout, env=env)
    except pcmk.ClusterReadError as exc:
        LOG.warning("no fence history: %s", exc)
        return status
    return status.with_fence_events(events)


def read_file(path):
    """A ClusterStatus from a saved crm_mon XML file."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as exc:
        raise pcmk.ClusterReadError(f"{path}: {exc.strerror}") from exc
    return parse(text, path)
