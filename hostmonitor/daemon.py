"""``instance-ha hostmonitor``: the agent's monitor pass, every
``interval`` seconds.

For operators who prefer a daemon to the resource agent (as with
masakari-monitors).  Each ``step()`` is one pass of
``instance_ha.agent.monitor``, the code the OCF agent's monitor runs: the
same decision, the same fenced-now gate before any run is started, the
same execution ids (instance_ha.agent.handoff), the same watchdog
(restarts of stalled or failed runs, ``max_attempts``, the operator
message), the same CIB record (node attribute ``instance-ha-evacuation``)
and the same time budget per pass.  What the agent keeps in its state
file between two monitors, the daemon keeps in memory, and in a state file
of the same format when given one.

Run it on one controller at a time (or as a Pacemaker resource, or
instead of the agent, not beside it): two copies do not double-evacuate
(same execution ids; Mistral returns the existing execution) but both
would watch and log the same runs.
"""

import datetime
import logging
import socket
import threading

from instance_ha.agent import budget as budget_module
from instance_ha.agent import config as config_module
from instance_ha.agent import monitor as monitor_module
from instance_ha.agent import statefile
from instance_ha.hostmonitor import store as store_module

LOG = logging.getLogger("instance_ha.hostmonitor")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def agent_config(policy, **settings):
    """The AgentConfig of a daemon: the nodes and gate of ``policy`` (a
    decision.Policy), the rest from ``settings`` (AgentConfig fields)."""
    return config_module.AgentConfig(
        computes=policy.computes, controllers=policy.controllers,
        threshold=policy.threshold_percent, debounce=policy.debounce,
        infer_fencing=policy.infer_fencing, **settings)


class HostMonitor:
    """One ``step()`` per pass.

    ``config``: an AgentConfig (``agent_config()``), or ``policy`` (a
    decision.Policy) for one with that policy's nodes and gate.  ``read``
    returns a crm_mon.ClusterStatus or raises pcmk.ClusterReadError
    (default: the live cluster, with ``crm_mon`` and ``stonith_admin``);
    ``cib``: record each hand-over in the CIB (a store.CibStore whose
    commands are bound to the pass's budget), else ``store`` (None: no
    record but this process's state); ``connect`` returns a Mistral client
    (default: from the config); ``state_path``: a state file to resume
    from and keep; ``pass_timeout``: seconds a pass may take, as the
    agent's monitor timeout (its budget: agent.budget.SHARE of it), None
    for no limit.
    """

    def __init__(self, config=None, read=None, store=None, connect=None,
                 clock=utcnow, log=LOG, origin=None, state_path=None,
                 cib=False,
                 pass_timeout=budget_module.DEFAULT_MONITOR_TIMEOUT,
                 crm_mon=None, stonith_admin=None, policy=None):
        if config is None:
            config = agent_config(policy)
        self.config = config
        self.read = read
        # None for Dependencies: the CIB, bound to the pass's budget.
        self.store = None if cib else (store or store_module.NoStore())
        self.connect = connect
        self.clock = clock
        self.log = log
        self.origin = origin or (f"instance-ha hostmonitor on "
                                 f"{socket.gethostname()}")
        self.state_path = state_path
        self.pass_timeout = pass_timeout
        self.tools = {"crm_mon": crm_mon, "stonith_admin": stonith_admin}
        self.state = (statefile.load(state_path) if state_path else None) \
            or statefile.empty()

    def step(self):
        """One pass; returns the Assessment, or None if the cluster could
        not be read (then nothing is decided and nothing is started)."""
        work = budget_module.Budget(
            None if self.pass_timeout is None
            else budget_module.pass_seconds(self.pass_timeout))
        deps = monitor_module.Dependencies(
            self.config, self.log, clock=self.clock, read=self.read,
            store=self.store, connect=self.connect, origin=self.origin,
            budget=work, **self.tools)
        try:
            return monitor_module.run(self.state, deps)
        finally:
            self._save()

    def _save(self):
        if not self.state_path:
            return
        try:
            statefile.save(self.state_path, self.state)
        except OSError as exc:
            self.log.error("cannot save the state file %s: %s",
                           self.state_path, exc.strerror)


def run(monitor, interval, stop=None, iterations=None):
    """Call ``monitor.step()`` every ``interval`` seconds until ``stop`` (a
    threading.Event) is set, or ``iterations`` steps were made."""
    stop = stop or threading.Event()
    done = 0
    while not stop.is_set():
        try:
            monitor.step()
        except Exception:  # a bug must not end the monitoring
            monitor.log.exception("hostmonitor step failed")
        done += 1
        if iterations is not None and done >= iterations:
            break
        stop.wait(interval)
