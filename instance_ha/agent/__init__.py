"""The OCF resource agent's logic (``resource_agents/instance-ha`` runs
``python -m instance_ha.agent.ocf ACTION``).

Modules, one concern each: config (OCF_RESKEY_* parameters and their
validation), statefile (the state file under HA_RSCTMP), handoff (start a
failure's workflow run under a deterministic id, exactly once), watchdog
(follow a run, fail a stalled one, start the next attempt), hostreturn
(a recovered host online again: said, or returned with return_hosts),
monitor (one monitor pass), ocf (actions and exit codes), command
(``instance-ha install-agent``).  Importing this package imports nothing else.
"""
