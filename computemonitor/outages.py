"""The process monitor's side of Mistral: a process down for good starts
``instance_ha.process_down`` for this host, once per outage.

An outage lasts from the report until the process is seen running again.
Its execution id is derived from the host, the process, the outage number
and the record's nonce (as crashes.py does for VMs), and the record is on
disk: reported again after a restart of the monitor, the same outage names
the same execution, which Mistral returns instead of starting a second.
"""

import logging
import uuid

from instance_ha.computemonitor import jsonfile

LOG = logging.getLogger(__name__)
WORKFLOW = "instance_ha.process_down"
ORIGIN = "instance-ha processmonitor"
EXECUTION_NAMESPACE = uuid.UUID("b8e2d4c6-7a1f-5c3e-9b0d-4f6a2e8c1d57")
# Nova keeps 255 characters of a service's disabled reason.
MAX_REASON = 255


class ProcessDown:
    """``report`` and ``running`` for processes.ProcessMonitor."""

    def __init__(self, host, path, reporter, is_running):
        self.host = host
        self.path = path
        self.reporter = reporter
        self.is_running = is_running
        data = jsonfile.load(path, "a process monitor record")
        self.nonce = data.get("nonce") or str(uuid.uuid4())
        self.outages = data.get("outages", {})
        if not data:
            self._save()

    def _save(self):
        jsonfile.save(self.path, {"nonce": self.nonce,
                                  "outages": self.outages})

    def running(self, name):
        """Whether ``name`` runs; seen running, its outage has ended."""
        runs = self.is_running(name)
        outage = self.outages.get(name)
        if runs and outage and outage.get("open"):
            outage["open"] = False
            self._save()
            LOG.info("%s runs again: outage %d of %s has ended", name,
                     outage["number"], self.host)
        return runs

    def __call__(self, name, reason):
        """Start (or find) the run of this outage; False when Mistral
        cannot be asked now."""
        outage = self.outages.setdefault(name, {"number": 0, "open": False})
        if not outage["open"]:
            outage.update(number=outage["number"] + 1, open=True)
            self._save()
        key = f"{self.host}/{name}/{self.nonce}/{outage['number']}"
        execution_id = str(uuid.uuid5(EXECUTION_NAMESPACE, key))
        why = f"instance-ha: {name} down on {self.host}: {reason}"
        execution = self.reporter.start(
            execution_id, WORKFLOW,
            {"host": self.host, "reason": why[:MAX_REASON]},
            f"instance-ha: {name} down on {self.host} ({reason}), reported "
            f"by {ORIGIN}")
        if execution is None:
            return False
        LOG.info("%s: %s %s (%s)", name, WORKFLOW, execution["id"],
                 execution["state"])
        return True
