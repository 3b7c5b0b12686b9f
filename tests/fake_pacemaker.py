"""Pacemaker as a test shows it to an executor: ``crm_mon`` and
``stonith_admin`` scripts that print XML captured from a live cluster
(tests/unit/hostmonitor/fixtures/live), with the failed node renamed to
the simulated cloud's host.  The embedded Mistral gets them through
fence_gate's environment variables, so host_evacuate's confirm_fencing
step runs its real check on real Pacemaker output."""

import os
import re
import stat

from instance_ha import fence_gate

LIVE = os.path.join(os.path.dirname(__file__), "unit", "hostmonitor",
                    "fixtures", "live")
FENCED = "crm_mon_rn1_fenced.xml"       # rn1 offline, rebooted by cn1
ONLINE = "crm_mon_all_online.xml"       # nothing failed
UNCLEAN = "crm_mon_rn1_unclean.xml"     # rn1 lost, not fenced yet

CRM_MON = """#!/bin/sh
# crm_mon as a test set it: the XML in crm_mon.xml beside this script.
exec cat "$(dirname "$0")/crm_mon.xml"
"""
STONITH_ADMIN = """#!/bin/sh
echo "stonith_admin: the fencer of this test does not answer" >&2
exit 102
"""


class FakePacemaker:
    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.crm_mon = self._script("crm_mon", CRM_MON)
        self.stonith_admin = self._script("stonith_admin", STONITH_ADMIN)

    @property
    def env(self):
        """The environment of the executor that reads this cluster."""
        return {fence_gate.CRM_MON_ENV: self.crm_mon,
                fence_gate.STONITH_ADMIN_ENV: self.stonith_admin}

    def show(self, fixture=FENCED, node="compute1"):
        """From now on crm_mon prints ``fixture`` with rn1 as ``node``."""
        with open(os.path.join(LIVE, fixture), encoding="utf-8") as f:
            text = re.sub(r"\brn1\b", node, f.read())
        self._write("crm_mon.xml", text)

    def show_two_fenced(self, first, second):
        """From now on crm_mon prints two computes offline and fenced:
        crm_mon/rn1-rn2-fenced.xml (a simulated CIB, not live) with rn1
        as ``first`` and rn2 as ``second``, plus the fence events that
        ``crm_mon --include=fencing-succeeded`` prints for them, one
        second after their failure (as in crm_mon/rn1-fenced+history)."""
        path = os.path.join(os.path.dirname(LIVE), "crm_mon",
                            "rn1-rn2-fenced.xml")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        events = "".join(
            f'    <fence_event action="reboot" target="{node}" '
            'client="pacemaker-controld.1234" origin="cn1" '
            'status="success" delegate="cn1" '
            'completed="2026-11-21 06:28:53Z"/>\n' for node in ("rn1", "rn2"))
        status = '  <status code="0"'
        text = text.replace(status, "  <fence_history>\n" + events
                            + "  </fence_history>\n" + status, 1)
        text = re.sub(r"\brn2\b", second, re.sub(r"\brn1\b", first, text))
        self._write("crm_mon.xml", text)

    def unreadable(self):
        """crm_mon fails (no cluster answers)."""
        path = os.path.join(self.directory, "crm_mon.xml")
        if os.path.exists(path):
            os.unlink(path)

    def _script(self, name, text):
        path = self._write(name, text)
        os.chmod(path, stat.S_IRWXU)
        return path

    def _write(self, name, text):
        path = os.path.join(self.directory, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        return path


class CibRecords:
    """The agent's handoff records (hostmonitor.store.CibStore's
    interface), in memory instead of the CIB."""

    def __init__(self):
        self.records = {}

    def all(self):
        return dict(self.records)

    def record(self, handoff_record):
        self.records[handoff_record.host] = handoff_record

    def clear(self, host):
        self.records.pop(host, None)
