"""Pacemaker's view of the compute hosts (crm_mon XML) and the safety gate.

For callers such as the resource agent::

    from instance_ha import hostmonitor

    status = hostmonitor.read_cluster()          # ClusterReadError if not
    assessment = hostmonitor.assess(status, hostmonitor.Policy())
    for verdict in assessment.to_trigger:        # gate applied
        ...

Modules: pcmk (running the tools), crm_mon (status), fencing (fence
history), decision (decisions, gate, debounce), store (CIB record, Mistral
lookup), trigger (a failure's execution id and input), daemon (the
agent's monitor pass in a loop), command (CLI).
The names below import their module on first use, so that importing the
package (the CLI does) stays cheap.
"""

_EXPORTS = {
    "read_cluster": "crm_mon",
    "read_file": "crm_mon",
    "parse": "crm_mon",
    "ClusterStatus": "crm_mon",
    "ClusterReadError": "pcmk",
    "assess": "decision",
    "Policy": "decision",
    "Memory": "decision",
    "Debounce": "decision",
    "CibStore": "store",
    "Handoff": "store",
    "find_execution": "store",
}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute "
                             f"{name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
