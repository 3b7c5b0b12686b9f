"""Nova's instance states, the status a client sees, and which actions each
state allows (nova/compute/vm_states.py, task_states.py, power_state.py,
nova/api/openstack/common.py and the check_instance_state decorators of
nova/compute/api.py)."""

# vm_state
ACTIVE = "active"
BUILDING = "building"
STOPPED = "stopped"
PAUSED = "paused"
SUSPENDED = "suspended"
RESCUED = "rescued"
RESIZED = "resized"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"

VM_STATES = (ACTIVE, BUILDING, STOPPED, PAUSED, SUSPENDED, RESCUED, RESIZED,
             ERROR, SHELVED, SHELVED_OFFLOADED, SOFT_DELETED, DELETED)

# task_state
REBUILDING = "rebuilding"
REBUILD_SPAWNING = "rebuild_spawning"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
RESIZE_PREP = "resize_prep"
MIGRATING = "migrating"

# power_state (nova/compute/power_state.py)
NOSTATE = 0
RUNNING = 1
PAUSED_POWER = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED_POWER = 7

# As Nova 34 reports them on its fake virt driver, the driver the contract
# suite (tests/realnova) runs real Nova on: its pause and suspend leave the
# power state as it was, and Nova powers a guest off before the driver's
# rescue, which does not power it on again.  libvirt would report 3, 7 and
# 1; the state table reads power_state only for resized and error servers,
# where the drivers agree (a stopped guest is 4).
POWER_STATE_FOR_VM_STATE = {
    ACTIVE: RUNNING,
    BUILDING: NOSTATE,
    STOPPED: SHUTDOWN,
    PAUSED: RUNNING,
    SUSPENDED: RUNNING,
    RESCUED: SHUTDOWN,
    RESIZED: RUNNING,
    ERROR: NOSTATE,
    SHELVED: SHUTDOWN,
    SHELVED_OFFLOADED: SHUTDOWN,
    SOFT_DELETED: SHUTDOWN,
    DELETED: NOSTATE,
}

_REBUILD = {REBUILDING: "REBUILD", "rebuild_block_device_mapping": "REBUILD",
            REBUILD_SPAWNING: "REBUILD"}
_RESIZE = {RESIZE_PREP: "RESIZE", "resize_migrating": "RESIZE",
           "resize_migrated": "RESIZE", "resize_finish": "RESIZE"}

# nova/api/openstack/common.py _STATE_MAP: vm_state -> task_state -> status.
STATUS_MAP = {
    ACTIVE: {"default": "ACTIVE", "rebooting": "REBOOT",
             "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
             "rebooting_hard": "HARD_REBOOT",
             "reboot_pending_hard": "HARD_REBOOT",
             "reboot_started_hard": "HARD_REBOOT",
             "updating_password": "PASSWORD", MIGRATING: "MIGRATING",
             **_REBUILD, **_RESIZE},
    BUILDING: {"default": "BUILD"},
    STOPPED: {"default": "SHUTOFF", **_RESIZE, **_REBUILD},
    RESIZED: {"default": "VERIFY_RESIZE",
              "resize_reverting": "REVERT_RESIZE"},
    PAUSED: {"default": "PAUSED", MIGRATING: "MIGRATING"},
    SUSPENDED: {"default": "SUSPENDED"},
    RESCUED: {"default": "RESCUE"},
    ERROR: {"default": "ERROR", **_REBUILD},
    DELETED: {"default": "DELETED"},
    SOFT_DELETED: {"default": "SOFT_DELETED"},
    SHELVED: {"default": "SHELVED"},
    SHELVED_OFFLOADED: {"default": "SHELVED_OFFLOADED"},
}


def status(vm_state, task_state):
    task_map = STATUS_MAP.get(vm_state, {"default": "UNKNOWN"})
    return task_map.get(task_state, task_map["default"])


def states_for_statuses(statuses):
    """The vm_states and task_states a list of status filters selects
    (common.task_and_vm_state_from_status)."""
    wanted = {s.lower() for s in statuses}
    vm_states, task_states = set(), set()
    for vm_state, task_map in STATUS_MAP.items():
        for task_state, mapped in task_map.items():
            if mapped.lower() in wanted:
                vm_states.add(vm_state)
                task_states.add(task_state)
    return vm_states, task_states


ANY = None


class ActionRule:
    """What nova/compute/api.py checks before an action: the decorators
    check_instance_lock, check_instance_host and check_instance_state."""

    def __init__(self, vm_states, task_states=(None,), lock=False,
                 host=False):
        self.vm_states = None if vm_states is ANY else frozenset(vm_states)
        self.task_states = (None if task_states is ANY
                            else frozenset(task_states))
        self.lock = lock
        self.host = host


ACTION_RULES = {
    # compute.api.API.evacuate: check_instance_state(vm_state=[ACTIVE,
    # STOPPED, ERROR], task_state=None) -- task_state None means "any", so
    # a second evacuate while rebuilding is accepted, as measured.
    "evacuate": ActionRule([ACTIVE, STOPPED, ERROR], task_states=ANY),
    # compute.api.API.stop: lock, host, vm_state [ACTIVE, ERROR], no task.
    "stop": ActionRule([ACTIVE, ERROR], lock=True, host=True),
    # compute.api.API.start: lock, host, vm_state [STOPPED], no task.
    "start": ActionRule([STOPPED], lock=True, host=True),
}
