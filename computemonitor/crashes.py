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

One JSON file, written whole to a temporary file and renamed over the old
one: a crash of the monitor mid-write leaves the old record or the new.
"""

import json
import os
import tempfile
import uuid

# Namespace of the execution ids of instance restarts (uuid5).
EXECUTION_NAMESPACE = uuid.UUID("3a6c1f0e-5b7d-5e2a-8c41-9d0e7b2f6a13")


class Record:
    def __init__(self, path):
        self.path = path
        data = self._load()
        self.nonce = data.get("nonce") or str(uuid.uuid4())
        self.domains = data.get("domains", {})
        if not data:
            self.save()

    def _load(self):
        try:
            with open(self.path, encoding="utf-8") as stream:
                data = json.load(stream)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RecordError(f"{self.path}: unreadable ({exc}); move it "
                              "away to start a new record") from exc
        if not isinstance(data, dict) or not isinstance(
                data.get("domains", {}), dict):
            raise RecordError(f"{self.path}: not an instance monitor "
                              "record; move it away to start a new one")
        return data

    def save(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".crashes.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump({"nonce": self.nonce, "domains": self.domains},
                          stream, indent=1, sort_keys=True)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

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


class RecordError(Exception):
    """The record file cannot be read."""
