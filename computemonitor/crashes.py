"""The instance monitor's durable record: which crash of which VM it has
seen, so that one crash starts one execution however often libvirt tells
it and however often the monitor restarts.

A VM's crashes are numbered: a crash counts as a new one only when the VM
was seen running since the previous one (a lifecycle event or the current
state), or when the previous crash's execution brought it back to active
(a restart and a second crash that both happened while the monitor was
away).  The execution id is derived from the host, the VM, the crash
number and this record's own nonce: a lost or wiped record starts a new
namespace instead of reusing the ids of finished executions (for which
Mistral would return the old execution and recover nothing).
"""

import uuid

from instance_ha.computemonitor import jsonfile

RecordError = jsonfile.RecordError

# Namespace of the execution ids of instance restarts (uuid5).
EXECUTION_NAMESPACE = uuid.UUID("3a6c1f0e-5b7d-5e2a-8c41-9d0e7b2f6a13")


class Record:
    def __init__(self, path):
        self.path = path
        data = jsonfile.load(path, "an instance monitor record")
        if not isinstance(data.get("domains", {}), dict):
            raise RecordError(f"{path}: not an instance monitor record; "
                              "move it away to start a new one")
        self.nonce = data.get("nonce") or str(uuid.uuid4())
        self.domains = data.get("domains", {})
        if not data:
            self.save()

    def save(self):
        jsonfile.save(self.path, {"nonce": self.nonce,
                                  "domains": self.domains})

    # -- what the monitor sees ---------------------------------------------

    def seen_running(self, server):
        entry = self.domains.setdefault(server, {"crash": 0})
        if entry.get("last_seen") != "running":
            entry["last_seen"] = "running"
            self.save()

    def seen_crashed(self, server, name, previous_recovered=False):
        """The crash number when this is a new crash of ``server``, else
        None.  ``previous_recovered``: the execution of the crash on
        record ended with the VM active again."""
        entry = self.domains.setdefault(server, {"crash": 0})
        if entry.get("last_seen") == "crashed" and not previous_recovered:
            return None
        entry.update(crash=entry["crash"] + 1, last_seen="crashed",
                     attempt=0, done=False, name=name)
        self.save()
        return entry["crash"]

    def current_crash(self, server):
        """(crash number, attempt) of the crash on record, or None."""
        entry = self.domains.get(server)
        if not entry or entry.get("last_seen") != "crashed":
            return None
        return entry["crash"], entry.get("attempt", 0)

    def next_attempt(self, server):
        entry = self.domains[server]
        entry["attempt"] = entry.get("attempt", 0) + 1
        self.save()
        return entry["attempt"]

    def done(self, server):
        """The run of ``server``'s current crash has ended for good."""
        self.domains[server]["done"] = True
        self.save()

    def forget(self, server):
        """``server``'s domain is gone from libvirt (deleted, or moved)."""
        if self.domains.pop(server, None) is not None:
            self.save()

    def execution_id(self, host, server, crash, attempt=0):
        key = f"{host}/{server}/{self.nonce}/{crash}"
        if attempt:
            key += f"#{attempt}"
        return str(uuid.uuid5(EXECUTION_NAMESPACE, key))
