"""Which libvirt domain lifecycle events and states are a crash: the table
the instance monitor reads.

A crash is a VM that stopped without anyone asking: its qemu process died
(``kill -9``, the OOM killer, a qemu fault) or the guest crashed.  A stop
that Nova or a user asked for is never one: Nova's stop, delete, resize and
migration end in SHUTDOWN, DESTROYED or MIGRATED, and a guest that shuts
itself down is, for Nova, the user's stop (its power-state sync then calls
the stop API).  Names are libvirt's own (``VIR_DOMAIN_EVENT_<EVENT>_<DETAIL>``
and ``VIR_DOMAIN_<STATE>_<REASON>``), so that the table reads like
libvirt's documentation and needs no libvirt to be read.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Meaning:
    crash: bool
    running: bool
    why: str


CRASH = "crash"
RUNNING = "running"
OTHER = "other"

# Lifecycle events: (event, detail) -> what it means.  "*" is any detail.
EVENTS = {
    ("STOPPED", "FAILED"): (CRASH, "its qemu process died (killed, or "
                                   "qemu failed)"),
    ("STOPPED", "CRASHED"): (CRASH, "the guest crashed (on_crash "
                                    "destroy)"),
    ("CRASHED", "*"): (CRASH, "the guest crashed or panicked (on_crash "
                              "preserve)"),
    ("STOPPED", "SHUTDOWN"): (OTHER, "the guest shut down: Nova's stop, or "
                                     "the guest's own, which Nova treats "
                                     "as the user's stop"),
    ("STOPPED", "DESTROYED"): (OTHER, "destroyed on request: Nova's stop, "
                                      "delete or hard reboot, or an "
                                      "operator's virsh destroy"),
    ("STOPPED", "MIGRATED"): (OTHER, "migrated away"),
    ("STOPPED", "SAVED"): (OTHER, "saved (suspended to disk)"),
    ("STOPPED", "FROM_SNAPSHOT"): (OTHER, "reverted to a snapshot"),
    ("STARTED", "*"): (RUNNING, "started"),
    ("RESUMED", "*"): (RUNNING, "resumed"),
}

# Current states, for the reconciliation at start and after a reconnect:
# (state, reason) -> what it means.  The reasons of a crash are the ones
# libvirt records for the events above.
STATES = {
    ("SHUTOFF", "CRASHED"): (CRASH, "shut off: crashed"),
    ("SHUTOFF", "FAILED"): (CRASH, "shut off: failed to start or qemu "
                                   "died"),
    ("CRASHED", "*"): (CRASH, "crashed"),
    ("RUNNING", "*"): (RUNNING, "running"),
    ("PAUSED", "*"): (RUNNING, "paused"),
    ("BLOCKED", "*"): (RUNNING, "blocked"),
}


def _lookup(table, first, second):
    kind, why = table.get((first, second)) or table.get((first, "*")) or (
        OTHER, "not a crash")
    return Meaning(crash=kind == CRASH, running=kind == RUNNING, why=why)


def of_event(event, detail):
    """What lifecycle event ``event``/``detail`` (names) means."""
    return _lookup(EVENTS, event, detail)


def of_state(state, reason):
    """What the current state ``state``/``reason`` (names) means."""
    return _lookup(STATES, state, reason)


def triggering_events():
    """``EVENT_DETAIL`` of every event that starts a restart, for docs and
    logs."""
    return sorted(f"{event}_{detail}".replace("_*", "")
                  for (event, detail), (kind, _) in EVENTS.items()
                  if kind == CRASH)


# -- libvirt's numbers to the names above --------------------------------

def _names(module, prefix):
    return {getattr(module, name): name[len(prefix):]
            for name in dir(module) if name.startswith(prefix)
            and isinstance(getattr(module, name), int)}


class Names:
    """libvirt's integer constants as the names of the tables above."""

    def __init__(self, libvirt):
        self._events = {getattr(libvirt, f"VIR_DOMAIN_EVENT_{name}"): name
                        for name in ("DEFINED", "UNDEFINED", "STARTED",
                                     "SUSPENDED", "RESUMED", "STOPPED",
                                     "SHUTDOWN", "PMSUSPENDED", "CRASHED")}
        self._libvirt = libvirt
        self._states = {getattr(libvirt, f"VIR_DOMAIN_{name}"): name
                        for name in ("NOSTATE", "RUNNING", "BLOCKED",
                                     "PAUSED", "SHUTDOWN", "SHUTOFF",
                                     "CRASHED", "PMSUSPENDED")}

    def event(self, event, detail):
        name = self._events.get(event, str(event))
        details = _names(self._libvirt, f"VIR_DOMAIN_EVENT_{name}_")
        return name, details.get(detail, str(detail))

    def state(self, state, reason):
        name = self._states.get(state, str(state))
        reasons = _names(self._libvirt, f"VIR_DOMAIN_{name}_")
        return name, reasons.get(reason, str(reason))
