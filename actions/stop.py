"""Stop a server and wait until Nova reports it stopped."""

from instance_ha.actions import power


class Stop(power.PowerAction):
    """A stopped server is success (already_stopped), not a 409; a stop
    already under way is waited for, not sent again."""

    nova_action = "os-stop"
    target = "stopped"
    task_state = "powering-off"
    done_outcome = "stopped"
    already_outcome = "already_stopped"
