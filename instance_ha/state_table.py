"""The recovery state table (seeds: evacuation_patterns.txt,
resized_evacuation_mail.txt) as data, and the classifier of host_servers.

Each row: an event, the VM's state before it, the steps that recover it
and the vm_state expected after.  Step names: ``evacuate``, ``stop``,
``start``, ``reset_error`` (os-resetState to error), ``reset_stopped``
(see actions/reset_state.py: Nova cannot set stopped directly) and
``service_disable``.

Decisions beyond the seed table (host_down):

* error: policy ``error_servers`` -- ``skip`` (default) or ``evacuate``
  then ``reset_error`` so that it ends in error, as before, on a live host.
* paused, suspended, rescued: Nova refuses to evacuate them (only active,
  stopped, error), and their memory or rescue disk died with the host:
  ``reset_error`` then ``evacuate``; they come back active.
* shelved (not offloaded): powered off and still on the host:
  ``reset_error``, ``evacuate``, ``stop``; expected stopped.
* shelved_offloaded: not on any host; nothing to do.
* building, soft-deleted, deleted: nothing to do (Nova refuses).
* resized: Nova keeps a stopped VM powered off through a resize, so
  power_state SHUTDOWN means it was stopped before: ``reset_error``,
  ``evacuate``, ``stop`` -> stopped; otherwise ``reset_error``,
  ``evacuate`` -> active.
* error while locked by instance-ha: a recovery that was interrupted
  after its ``reset_error``: evacuate it (and stop it again when it is
  powered off) instead of treating it as an error VM.
* a task_state in progress does not change the row: Nova's evacuate
  ignores task_state, and the evacuate action itself detects a rebuild
  already under way.
"""

import dataclasses

HOST_DOWN = "host_down"
INSTANCE_DOWN = "instance_down"
PROCESS_DOWN = "process_down"

EVACUATE = "evacuate"
STOP = "stop"
START = "start"
RESET_ERROR = "reset_error"
RESET_STOPPED = "reset_stopped"
SERVICE_DISABLE = "service_disable"

ACTIVE = "active"
STOPPED = "stopped"
ERROR = "error"

POWER_SHUTDOWN = 4
LOCK_MARK = "instance-ha"


@dataclasses.dataclass(frozen=True)
class Row:
    event: str
    before: str
    steps: tuple
    after: str | None
    note: str

    @property
    def plan(self):
        return EVACUATE if EVACUATE in self.steps else "skip"


TABLE = (
    # The seed table.
    Row(HOST_DOWN, "active", (EVACUATE,), ACTIVE,
        "evacuate; stays active"),
    Row(HOST_DOWN, "stopped", (EVACUATE,), STOPPED,
        "evacuate; Nova keeps it stopped"),
    Row(HOST_DOWN, "resized_was_active", (RESET_ERROR, EVACUATE), ACTIVE,
        "resized: Nova refuses to evacuate it; reset to error, evacuate"),
    Row(HOST_DOWN, "resized_was_stopped", (RESET_ERROR, EVACUATE, STOP),
        STOPPED,
        "resized while stopped (power_state SHUTDOWN): reset to error, "
        "evacuate, stop again"),
    Row(INSTANCE_DOWN, "active", (STOP, START), ACTIVE, "stop, start"),
    Row(INSTANCE_DOWN, "stopped", (RESET_STOPPED,), STOPPED,
        "reset to stopped"),
    Row(INSTANCE_DOWN, "resized", (RESET_ERROR, STOP, START), ACTIVE,
        "reset to error, stop, start"),
    Row(PROCESS_DOWN, "any", (SERVICE_DISABLE,), None,
        "disable the service; VMs are left alone"),
    # Decisions (see the module docstring).
    Row(HOST_DOWN, "error_skip", (), None,
        "in error: skipped (policy error_servers=skip)"),
    Row(HOST_DOWN, "error_evacuate", (EVACUATE, RESET_ERROR), ERROR,
        "in error: evacuate, reset to error (policy error_servers="
        "evacuate)"),
    Row(HOST_DOWN, "error_reset_by_us", (EVACUATE,), ACTIVE,
        "in error under an instance-ha lock: an interrupted recovery; "
        "evacuate"),
    Row(HOST_DOWN, "error_reset_by_us_stopped", (EVACUATE, STOP), STOPPED,
        "in error and powered off under an instance-ha lock: an "
        "interrupted recovery; evacuate, stop again"),
    Row(HOST_DOWN, "paused", (RESET_ERROR, EVACUATE), ACTIVE,
        "paused: Nova refuses to evacuate it; reset to error, evacuate"),
    Row(HOST_DOWN, "suspended", (RESET_ERROR, EVACUATE), ACTIVE,
        "suspended: Nova refuses to evacuate it; reset to error, "
        "evacuate"),
    Row(HOST_DOWN, "rescued", (RESET_ERROR, EVACUATE), ACTIVE,
        "rescued: Nova refuses to evacuate it; reset to error, evacuate "
        "(rebuilt from its own image, not the rescue image)"),
    Row(HOST_DOWN, "shelved", (RESET_ERROR, EVACUATE, STOP), STOPPED,
        "shelved, not offloaded: reset to error, evacuate, stop"),
    Row(HOST_DOWN, "shelved_offloaded", (), None,
        "shelved_offloaded: not on a host"),
    Row(HOST_DOWN, "building", (), None,
        "still building: Nova refuses to evacuate it"),
    Row(HOST_DOWN, "deleted", (), None, "deleted or soft-deleted"),
    Row(HOST_DOWN, "unknown", (), None, "unknown vm_state"),
)

_ROWS = {(row.event, row.before): row for row in TABLE}


def row(event, before):
    return _ROWS[(event, before)]


def host_down_case(vm_state, power_state, error_servers="skip",
                   locked_reason=None):
    """The ``before`` key of the host_down row a server falls in."""
    if vm_state in (ACTIVE, STOPPED, "paused", "suspended", "rescued",
                    "shelved", "shelved_offloaded", "building"):
        return vm_state
    if vm_state == "resized":
        if power_state == POWER_SHUTDOWN:
            return "resized_was_stopped"
        return "resized_was_active"
    if vm_state == ERROR:
        if (locked_reason or "").startswith(LOCK_MARK):
            if power_state == POWER_SHUTDOWN:
                return "error_reset_by_us_stopped"
            return "error_reset_by_us"
        return "error_evacuate" if error_servers == EVACUATE else \
            "error_skip"
    if vm_state in ("soft-delete", "deleted"):
        return "deleted"
    return "unknown"


def classify(vm_state, power_state, task_state=None, error_servers="skip",
             locked_reason=None):
    """(row, reason) for a server on a host that went down."""
    found = row(HOST_DOWN, host_down_case(vm_state, power_state,
                                          error_servers, locked_reason))
    reason = f"{vm_state}: {found.note}" if found.before == "unknown" \
        else found.note
    if task_state and found.steps:
        reason += f" (task_state {task_state} was under way)"
    return found, reason


def evacuated_vm_state(row, power_state, stops_powered_off):
    """The vm_state an evacuation leaves the server in, before the row's
    later steps: a powered-off server stays stopped when the evacuation
    keeps it off (microversion >= 2.95), else Nova boots what is not
    stopped."""
    if EVACUATE not in row.steps:
        return None
    if row.before == "stopped":
        return STOPPED
    if stops_powered_off and power_state == POWER_SHUTDOWN:
        return STOPPED
    return ACTIVE
