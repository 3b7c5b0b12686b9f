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
same host is never mistaken for one already handled.
"""

import dataclasses

from lxml import etree

from instance_ha.hostmonitor import pcmk

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
    def __init__(self, crm_attribute=CRM_ATTRIBUTE, cibadmin=CIBADMIN,
                 timeout=pcmk.DEFAULT_TIMEOUT, env=None):
        self.crm_attribute = crm_attribute
        self.cibadmin = cibadmin
        self.timeout = timeout
        self.env = env

    def _run(self, argv):
        try:
            return pcmk.run(argv, timeout=self.timeout, env=self.env)
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
