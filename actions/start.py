"""Start a server and wait until Nova reports it active."""

from instance_ha.actions import power


class Start(power.PowerAction):
    """An active server is success (already_active); a start already under
    way is waited for, not sent again."""

    nova_action = "os-start"
    target = "active"
    task_state = "powering-on"
    done_outcome = "started"
    already_outcome = "already_active"
