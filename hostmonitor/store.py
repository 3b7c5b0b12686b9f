"""The durable record of failures already handed to Mistral.

One node attribute per handed-off host, with lifetime forever (the
``configuration/nodes`` section of the CIB, written by ``crm_attribute``):
it survives a restart of the monitor, of the agent and of every
controller, and is replicated by the CIB like the rest of the
configuration.  Not attrd memory: private attrd values are lost on restart
and may be purged when a node is fenced.  Works on a CIB file too
(``CIB_file=...`` in ``env``), which is how it is tested.

The value is ``<execution id> <failure key>``; the failure key
(trigger.failure_key) says which failure it was, so a later failure of the
same host is never mistaken for one already handled.  Mistral itself is the
second record: find_execution() finds the execution of a failure by its
deterministic id, or the latest one of a host by its description.
"""

import dataclasses

from lxml import etree

from instance_ha.hostmonitor import pcmk
from instance_ha.hostmonitor import trigger

ATTRIBUTE = "instance-ha-evacuation"
CRM_ATTRIBUTE = "crm_attribute"
CIBADMIN = "cibadmin"


class StoreError(Exception):
    """The CIB could not be read or written."""


@dataclasses.dataclass(frozen=True)
class Handoff:
    host: str
    execution_id: str
    failure: str

    def value(self):
        return f"{self.execution_id} {self.failure}"

    @classmethod
    def from_value(cls, host, value):
        execution_id, _, failure = value.strip().partition(" ")
        if not execution_id or not failure:
            raise StoreError(f"{host}: unreadable {ATTRIBUTE} value "
                             f"{value!r}")
        return cls(host=host, execution_id=execution_id, failure=failure)


class CibStore:
    """``timeout``: seconds per command, or a function giving them at
    each command (the agent's pass budget: the time left)."""

    def __init__(self, crm_attribute=CRM_ATTRIBUTE, cibadmin=CIBADMIN,
                 timeout=pcmk.DEFAULT_TIMEOUT, env=None):
        self.crm_attribute = crm_attribute
        self.cibadmin = cibadmin
        self.timeout = timeout
        self.env = env

    def _run(self, argv):
        timeout = self.timeout() if callable(self.timeout) else self.timeout
        try:
            return pcmk.run(argv, timeout=timeout, env=self.env)
        except pcmk.ClusterReadError as exc:
            raise StoreError(str(exc)) from exc

    def get(self, host):
        """The Handoff recorded for ``host``, or None."""
        return self.all().get(host)

    def record(self, handoff):
        self._run([self.crm_attribute, "--node", handoff.host, "--name",
                   ATTRIBUTE, "--lifetime", "forever", "--update",
                   handoff.value()])

    def clear(self, host):
        """Forget ``host``'s handoff; nothing to forget is fine."""
        self._run([self.crm_attribute, "--node", host, "--name", ATTRIBUTE,
                   "--lifetime", "forever", "--delete"])

    def all(self):
        """host -> Handoff, for every host with a record (one CIB query).

        Reads the whole nodes section: crm_attribute and an XPath query
        both exit 105 for "no such attribute" and for "cannot connect to
        the CIB", which must never read as "nothing was handed over".
        """
        result = self._run([self.cibadmin, "--query", "--scope", "nodes"])
        try:
            root = etree.fromstring(result.stdout.encode())
        except etree.XMLSyntaxError as exc:
            raise StoreError(f"cibadmin --query: not XML: {exc}") from exc
        if root.tag != "nodes":
            raise StoreError(f"cibadmin --query --scope nodes: got "
                             f"<{root.tag}>")
        records = {}
        for node in root.findall("node"):
            host = node.get("uname") or node.get("id")
            for nvpair in node.iter("nvpair"):
                if nvpair.get("name") == ATTRIBUTE:
                    records[host] = Handoff.from_value(
                        host, nvpair.get("value", ""))
        return records


class NoStore:
    """No record at all (``instance-ha hostmonitor --no-store``): only the
    process's own state and the execution ids prevent a second run."""

    def all(self):
        return {}

    def get(self, host):
        return None

    def record(self, handoff):
        pass

    def clear(self, host):
        pass


def find_execution(client, host, fenced_at=None,
                   workflow=trigger.WORKFLOW):
    """The Mistral execution already started for a failure of ``host``.

    With ``fenced_at``, by its deterministic id; otherwise the newest
    execution of the workflow whose description names the host.  None when
    there is none.
    """
    from mistralclient.api import base as mistral_base

    if fenced_at is not None:
        try:
            return client.executions.get(
                trigger.execution_id(host, fenced_at))
        except mistral_base.APIException as exc:
            if getattr(exc, "error_code", None) == 404:
                return None
            raise
    prefix = f"{trigger.DESCRIPTION_PREFIX}{host} ("
    executions = client.executions.list(
        workflow_name=workflow, sort_keys="created_at", sort_dirs="desc",
        limit=100)
    for execution in executions:
        if (execution.description or "").startswith(prefix):
            return execution
    return None
