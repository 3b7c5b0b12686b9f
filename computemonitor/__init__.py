"""What runs on each compute host: the instance monitor (libvirt's domain
lifecycle events: a crashed VM starts ``instance_ha.instance_restart``)
and the process monitor (nova-compute and libvirtd: a process that stays
down starts ``instance_ha.process_down``).  Both reach the controllers
through Mistral's API (reporter.py)."""
