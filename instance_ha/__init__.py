"""instance-ha: keep OpenStack VMs alive when a compute host dies.

Pacemaker fences a lost compute host; the OCF agent starts a Mistral workflow;
the workflow's actions drive Nova to evacuate the host's VMs.
"""

from importlib import metadata

try:
    __version__ = metadata.version("instance-ha")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"
