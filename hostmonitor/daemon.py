"""``instance-ha hostmonitor``: read the cluster, decide, hand failures to
Mistral, remember them; again every ``interval`` seconds.

For operators who prefer a daemon to the resource agent (as with
masakari-monitors).  Run it on one controller at a time (or as a Pacemaker
resource): two copies do not double-evacuate (same execution id, Mistral
returns the existing execution) but both would log the same triggers.
"""

import datetime
import logging
import threading

from instance_ha.hostmonitor import decision
from instance_ha.hostmonitor import pcmk
from instance_ha.hostmonitor import store as store_module
from instance_ha.hostmonitor import trigger as trigger_module

LOG = logging.getLogger("instance_ha.hostmonitor")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class HostMonitor:
    """One ``step()`` per read of the cluster.

    ``read`` returns a crm_mon.ClusterStatus (with its fence events) or
    raises pcmk.ClusterReadError; ``trigger`` takes a failed_fenced Verdict
    and returns the Mistral execution; ``store`` is a store.CibStore or
    None (then only this process remembers what it handed over).
    """

    def __init__(self, read, policy, trigger, store=None, clock=utcnow,
                 log=LOG):
        self.read = read
        self.policy = policy
        self.trigger = trigger
        self.store = store
        self.clock = clock
        self.log = log
        self.memory = decision.Memory()
        self.debounce = decision.Debounce(policy.debounce)
        self._last = {}  # host -> (decision, reason) last logged
        self._handed = None  # host -> store.Handoff; loaded on first use

    def step(self):
        """One read; returns the Assessment, or None if the cluster could
        not be read (then nothing is decided, nothing triggered)."""
        try:
            status = self.read()
        except pcmk.ClusterReadError as exc:
            self.log.error("cannot read the cluster, deciding nothing this "
                           "round: %s", exc)
            return None
        # Stamped after the read: for "last seen online" the later bound
        # is the safe one.
        now = self.clock()
        assessment = decision.assess(status, self.policy, self.memory, now)
        self.memory.observe(status, now)
        self._log_verdicts(assessment)
        if assessment.held:
            self.log.error("MASS FAILURE, NOTHING TRIGGERED: %s",
                           assessment.held)
        stable = self.debounce.update(assessment)
        allowed = {v.name for v in assessment.to_trigger}
        for verdict in stable:
            if verdict.decision == decision.FAILED_FENCED and \
                    verdict.name in allowed:
                self._hand_over(verdict)
            elif verdict.decision == decision.ONLINE:
                self._forget(verdict.name)
        return assessment

    def _log_verdicts(self, assessment):
        for verdict in assessment.verdicts:
            current = (verdict.decision, verdict.reason)
            level = logging.INFO if self._last.get(verdict.name) != current \
                else logging.DEBUG
            self._last[verdict.name] = current
            self.log.log(level, "%s %s: %s: %s", verdict.type, verdict.name,
                         verdict.decision, verdict.reason)

    def _handoffs(self):
        if self._handed is None:
            self._handed = {}
            if self.store is not None:
                try:
                    self._handed = self.store.all()
                except store_module.StoreError as exc:
                    self.log.error("cannot read the handoff records: %s",
                                   exc)
                    return None
        return self._handed

    def _hand_over(self, verdict):
        host = verdict.name
        failure = trigger_module.failure_key(host, verdict.fenced_at)
        # When the records cannot be read, go on: the deterministic
        # execution id makes a repeated hand-over harmless.
        handed = self._handoffs()
        previous = (handed or {}).get(host)
        if previous is not None and previous.failure == failure:
            self.log.debug("%s: already handed to Mistral (execution %s)",
                           host, previous.execution_id)
            return
        try:
            execution = self.trigger(verdict)
        except Exception as exc:  # any client error: retry next round
            self.log.error("%s: could not start the evacuation workflow, "
                           "will retry next round: %s", host,
                           _describe(exc))
            return
        handoff = store_module.Handoff(host=host, execution_id=execution.id,
                                       failure=failure)
        self.log.info("%s: handed to Mistral: execution %s (%s)", host,
                      execution.id, getattr(execution, "state", "?"))
        if self.store is not None:
            try:
                self.store.record(handoff)
            except store_module.StoreError as exc:
                self.log.error("%s: handed over but not recorded in the CIB "
                               "(a restart will re-send it; Mistral returns "
                               "the same execution): %s", host, exc)
        if handed is not None:
            handed[host] = handoff

    def _forget(self, host):
        handed = self._handoffs()
        if not handed or host not in handed:
            return
        if self.store is not None:
            try:
                self.store.clear(host)
            except store_module.StoreError as exc:
                self.log.error("%s: back online, but its handoff record "
                               "could not be cleared: %s", host, exc)
                return
        del handed[host]
        self.log.info("%s: back online; handoff record cleared", host)


def _describe(exc):
    try:
        from instance_ha import mistral_client
    except ImportError:  # pragma: no cover - the package always has it
        return str(exc)
    return mistral_client.describe(exc)


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
