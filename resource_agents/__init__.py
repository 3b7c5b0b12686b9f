"""The Pacemaker OCF resource agent and alert agent shipped with the pack."""
