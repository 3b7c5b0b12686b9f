"""Report which instance-ha pack an executor runs."""

from mistral_lib import actions

from instance_ha import pack


class PackInfo(actions.Action):
    """The pack version and action names installed where this action runs.

    ``instance-ha install`` and the smoke workflow use it to prove that the
    executors, not only the API, have the pack the workflows were written for.
    """

    def run(self, context):
        return {
            "pack": pack.DISTRIBUTION,
            "version": pack.version(),
            "actions": sorted(pack.action_names()),
        }
