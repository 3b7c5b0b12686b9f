"""Pacemaker's view of the compute hosts (crm_mon XML) and the safety gate."""
