"""The OCF return codes of the agent, by their names in resource-agents'
``ocf-returncodes`` (which the shell front sources where it is
installed)."""

OCF_SUCCESS = 0
OCF_ERR_GENERIC = 1
OCF_ERR_ARGS = 2
OCF_ERR_UNIMPLEMENTED = 3
OCF_ERR_INSTALLED = 5
OCF_ERR_CONFIGURED = 6
OCF_NOT_RUNNING = 7
