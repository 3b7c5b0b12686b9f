"""The recovery state table as data (doc/state-table.rst), and the
classifier of host_servers.

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
* error under an instance-ha lock: a recovery of this host that was
  interrupted after its ``reset_error``, or whose evacuation failed
  (NoValidHost leaves the server in error on the source host, and the
  per-VM workflow then keeps its lock).  The lock reason names the case
  the server was in before the host failed (``lock_reason``), so the
  server is evacuated again and brought to that case's state after:
  the ``resume_to_*`` rows.  A lock reason without a case (an older
  lock) falls back on the power state.
* error, not locked by instance-ha, with an evacuation from this host
  that failed since the host's service was forced down (the VM was locked
  by someone else, so ours could not hold it): evacuated again, to
  stopped when it is powered off, else to active
  (``after_failed_evacuation*``).  Never skipped as an operator's error VM.
* a task_state in progress does not change the row: Nova's evacuate
  ignores task_state, and recover_servers itself detects a rebuild
  already under way.

What an evacuation leaves (``evacuated_vm_state``): Nova 34 rebuilds the
server on the new host and keeps it stopped only when its vm_state was
``stopped`` when the rebuild began; every other vm_state it may evacuate
(active, error) comes back active (``compute/manager.py``,
``_do_rebuild_instance``).  A stopped server is spawned on the new host
and then powered off at once (vm_state active with task_state
powering-off is seen on the way): with the libvirt driver its guest boots
for that moment.  recover_servers evacuates below microversion 2.95,
where Nova would stop every evacuated server, and where it would still
boot a server reset to error (the 2.95 target state is ignored for
vm_state error).  Rows after a ``reset_error`` that must end stopped
therefore have a ``stop`` step.
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
EVACUATION_LOCK = LOCK_MARK + " evacuation from {host}"
CASE_MARK = "; case "


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

    @property
    def before_evacuation(self):
        """The steps carried out before the evacuation (host down)."""
        return self.steps[:self.steps.index(EVACUATE)] \
            if EVACUATE in self.steps else ()

    @property
    def after_evacuation(self):
        """The steps carried out once it runs elsewhere (host down)."""
        return self.steps[self.steps.index(EVACUATE) + 1:] \
            if EVACUATE in self.steps else ()


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
    Row(HOST_DOWN, "resume_to_active", (EVACUATE,), ACTIVE,
        "in error under an instance-ha lock (an interrupted or failed "
        "recovery of a VM that ends active): evacuate"),
    Row(HOST_DOWN, "resume_to_stopped", (EVACUATE, STOP), STOPPED,
        "in error under an instance-ha lock (an interrupted or failed "
        "recovery of a VM that ends stopped): evacuate, stop again"),
    Row(HOST_DOWN, "resume_to_error", (EVACUATE, RESET_ERROR), ERROR,
        "in error under an instance-ha lock (a failed recovery of an "
        "error VM, policy error_servers=evacuate): evacuate, reset to "
        "error"),
    Row(HOST_DOWN, "after_failed_evacuation", (EVACUATE,), ACTIVE,
        "in error after its evacuation from this host failed: evacuate "
        "again"),
    Row(HOST_DOWN, "after_failed_evacuation_stopped", (EVACUATE, STOP),
        STOPPED,
        "in error and powered off after its evacuation from this host "
        "failed: evacuate again, stop"),
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

# The steps each event's recovery knows how to carry out (host down:
# actions/recover_servers.py; instance down:
# actions/instance_restart_steps.py; process down: process_down.yaml).  A
# row with any other step is refused here, at import, instead of failing
# a recovery.
KNOWN_STEPS = {
    HOST_DOWN: {"before": {RESET_ERROR}, "after": {STOP, RESET_ERROR}},
    INSTANCE_DOWN: {"steps": {STOP, START, RESET_ERROR, RESET_STOPPED}},
    PROCESS_DOWN: {"steps": {SERVICE_DISABLE}},
}


def _check(rows):
    for checked in rows:
        known = KNOWN_STEPS[checked.event]
        if checked.event == HOST_DOWN:
            if checked.steps.count(EVACUATE) > 1 or (
                    checked.steps and EVACUATE not in checked.steps):
                raise ValueError(f"row {checked.before}: a host-down row "
                                 "evacuates once, or has no steps")
            unknown = (set(checked.before_evacuation) - known["before"]) | (
                set(checked.after_evacuation) - known["after"])
        else:
            unknown = set(checked.steps) - known["steps"]
        if unknown:
            raise ValueError(f"row {checked.event}/{checked.before}: no "
                             f"recovery knows the steps {sorted(unknown)}")


_check(TABLE)


def row(event, before):
    return _ROWS[(event, before)]


def is_case(event, before):
    """Whether the table has a row of ``event`` for case ``before``."""
    return isinstance(before, str) and (event, before) in _ROWS


RESUME_BY_AFTER = {ACTIVE: "resume_to_active", STOPPED: "resume_to_stopped",
                   ERROR: "resume_to_error"}
# The vm_state when the evacuation begins -> after it; any other: active.
EVACUATED = {STOPPED: STOPPED}


def lock_reason(host, case):
    """The locked_reason of a VM whose evacuation from ``host`` began in
    state-table case ``case``."""
    return EVACUATION_LOCK.format(host=host) + CASE_MARK + case


def is_evacuation_lock(reason, host):
    """Whether ``reason`` is the lock a recovery of ``host`` set."""
    ours = EVACUATION_LOCK.format(host=host)
    return reason == ours or (reason or "").startswith(ours + CASE_MARK)


def case_in_lock(reason):
    """The case a lock_reason() names, or None."""
    if not (reason or "").startswith(LOCK_MARK) or CASE_MARK not in reason:
        return None
    case = reason.rsplit(CASE_MARK, 1)[1].strip()
    return case if (HOST_DOWN, case) in _ROWS else None


def host_down_case(vm_state, power_state, error_servers="skip",
                   locked_reason=None, failed_evacuation=False):
    """The ``before`` key of the host_down row a server falls in.
    ``failed_evacuation``: Nova shows an evacuation of it from this host
    that failed since the host went down."""
    if vm_state in (ACTIVE, STOPPED, "paused", "suspended", "rescued",
                    "shelved", "shelved_offloaded", "building"):
        return vm_state
    if vm_state == "resized":
        if power_state == POWER_SHUTDOWN:
            return "resized_was_stopped"
        return "resized_was_active"
    if vm_state == ERROR:
        return _error_case(power_state, error_servers, locked_reason,
                           failed_evacuation)
    if vm_state in ("soft-delete", "deleted"):
        return "deleted"
    return "unknown"


def _error_case(power_state, error_servers, locked_reason,
                failed_evacuation):
    powered_off = power_state == POWER_SHUTDOWN
    if (locked_reason or "").startswith(LOCK_MARK):
        case = case_in_lock(locked_reason)
        if case is not None and _ROWS[(HOST_DOWN, case)].after:
            return RESUME_BY_AFTER[_ROWS[(HOST_DOWN, case)].after]
        return RESUME_BY_AFTER[STOPPED if powered_off else ACTIVE]
    if failed_evacuation:
        return "after_failed_evacuation_stopped" if powered_off else \
            "after_failed_evacuation"
    return "error_evacuate" if error_servers == EVACUATE else "error_skip"


def classify(vm_state, power_state, task_state=None, error_servers="skip",
             locked_reason=None, failed_evacuation=False):
    """(row, reason) for a server on a host that went down."""
    found = row(HOST_DOWN, host_down_case(vm_state, power_state,
                                          error_servers, locked_reason,
                                          failed_evacuation))
    reason = f"{vm_state}: {found.note}" if found.before == "unknown" \
        else found.note
    if task_state and found.steps:
        reason += f" (task_state {task_state} was under way)"
    return found, reason


def evacuated_vm_state(row, vm_state):
    """The vm_state Nova leaves a server in when it evacuates it (below
    microversion 2.95), before the row's later steps: stopped when it was
    stopped as the evacuation began, else active.  ``vm_state``: the
    server's vm_state now; a row that starts with ``reset_error``
    evacuates it from error."""
    if EVACUATE not in row.steps:
        return None
    if row.steps[0] == RESET_ERROR:
        vm_state = ERROR
    return EVACUATED.get(vm_state, ACTIVE)
