"""The instance monitor's decisions: a crashed VM of this host gets one
run of ``instance_ha.instance_restart``, followed until it ends.

Fed by libvirt (domains.py): lifecycle events as they come, and the
current states at start, after a reconnect and every ``reconcile_every``
seconds, which find what happened while the monitor was away.  What it
has seen is in a durable record (crashes.py); every pass it makes sure the
execution of each crash on record exists in Mistral and follows it:

- ended with the VM recovered, or left alone by the workflow (a crash
  loop, a VM not in a recoverable state): done;
- ended in error (Nova unreachable, a step that failed) while libvirt
  still shows the VM crashed: a new attempt after ``retry_after`` seconds,
  at most ``max_attempts`` in all;
- Mistral unreachable: asked again at the next pass, the crash kept.
"""

import dataclasses
import logging
import queue
import time

from instance_ha.computemonitor import lifecycle
from instance_ha.computemonitor import reporter as reporter_

LOG = logging.getLogger(__name__)
WORKFLOW = "instance_ha.instance_restart"
ORIGIN = "instance-ha instancemonitor"


@dataclasses.dataclass(frozen=True)
class Domain:
    """A libvirt domain as the monitor needs it: ``server`` is the Nova
    instance uuid (the domain's uuid), None for a domain Nova did not
    create."""
    uuid: str
    name: str
    server: str | None


class InstanceMonitor:
    def __init__(self, host, record, reporter, max_attempts=3,
                 retry_after=30.0, clock=time.monotonic):
        self.host = host
        self.record = record
        self.reporter = reporter
        self.max_attempts = max_attempts
        self.retry_after = retry_after
        self.clock = clock
        self._ignored = set()
        # server -> what the monitor knows of its current crash's run.
        self._runs = {}

    # -- what libvirt says ---------------------------------------------------

    def event(self, domain, event, detail):
        """A lifecycle event, by libvirt's names (lifecycle.Names)."""
        meaning = lifecycle.of_event(event, detail)
        self._observe(domain, meaning, f"libvirt event {event}_{detail}",
                      from_event=True)

    def reconcile(self, states):
        """``states``: (Domain, state name, reason name) of every domain
        libvirt has now."""
        present = set()
        for domain, state, reason in states:
            present.add(domain.server)
            self._observe(domain, lifecycle.of_state(state, reason),
                          f"libvirt state {state} ({reason})",
                          from_event=False)
        for server in list(self.record.domains):
            if server not in present and server not in self._runs:
                self.record.forget(server)
        LOG.info("reconciled with libvirt's %d domains", len(present))

    def _observe(self, domain, meaning, seen, from_event):
        if domain.server is None:
            # Once at warning level, then at debug: it stays what it is.
            LOG.log(logging.DEBUG if domain.uuid in self._ignored
                    else logging.WARNING,
                    "domain %s (%s) has no Nova instance metadata: not a "
                    "Nova instance, %s ignored", domain.name, domain.uuid,
                    seen)
            self._ignored.add(domain.uuid)
            return
        if from_event and not meaning.crash:
            LOG.info("instance %s (%s): %s: %s, nothing to do",
                     domain.server, domain.name, seen, meaning.why)
        if meaning.running:
            self.record.seen_running(domain.server)
        if not meaning.crash:
            return
        crash = self.record.seen_crashed(
            domain.server, domain.name,
            previous_recovered=not from_event and self._recovered_since(
                domain.server))
        if crash is None:
            return
        LOG.warning("instance %s (%s) crashed: %s: %s", domain.server,
                    domain.name, seen, meaning.why)
        self._runs[domain.server] = {"name": domain.name, "why":
                                     f"{seen}: {meaning.why}",
                                     "started": False, "not_before": 0.0}

    def _recovered_since(self, server):
        """The run of ``server``'s crash on record ended with the VM active:
        a crashed domain now is a second crash."""
        current = self.record.current_crash(server)
        if current is None:
            return False
        execution = self.reporter.get(self.record.execution_id(
            self.host, server, *current))
        return bool(execution and execution["state"] == "SUCCESS"
                    and execution["output"].get("vm_state") == "active")

    # -- what Mistral is asked ---------------------------------------------

    def step(self):
        """Start or follow the run of every crash on record."""
        for server in self._pending_servers():
            self._advance(server)

    def _pending_servers(self):
        pending = [server for server, entry in self.record.domains.items()
                   if entry.get("last_seen") == "crashed"
                   and not entry.get("done")]
        for server in pending:
            self._runs.setdefault(server, {
                "name": self.record.domains[server].get("name", server),
                "why": "crashed (on record from before the monitor "
                       "started)",
                "started": False, "not_before": 0.0})
        return pending

    def _advance(self, server):
        run = self._runs[server]
        if self.clock() < run["not_before"]:
            return
        crash, attempt = self.record.current_crash(server)
        execution_id = self.record.execution_id(self.host, server, crash,
                                                attempt)
        if not run["started"]:
            execution = self.reporter.start(
                execution_id, WORKFLOW, {"server": server,
                                         "host": self.host},
                f"instance-ha: restart instance {server} ({run['name']}) "
                f"on {self.host}: {run['why']}, reported by {ORIGIN}"
                + (f", attempt {attempt + 1}" if attempt else ""))
            if execution is None:
                return
            run["started"] = True
            LOG.info("instance %s: %s %s started", server, WORKFLOW,
                     execution["id"])
        else:
            execution = self.reporter.get(execution_id)
            if execution is None:
                return
            if execution["state"] == "MISSING":
                run["started"] = False
                return
        if execution["state"] in reporter_.TERMINAL:
            self._ended(server, run, execution, attempt)

    def _ended(self, server, run, execution, attempt):
        output = execution["output"]
        if execution["state"] == "SUCCESS" or output.get("outcome") \
                == "skipped" or attempt + 1 >= self.max_attempts:
            level = logging.INFO if execution["state"] == "SUCCESS" \
                else logging.ERROR
            LOG.log(level, "instance %s: %s %s ended %s: %s", server,
                    WORKFLOW, execution["id"], execution["state"],
                    output.get("outcome") or execution.get("state_info"))
            self._finish(server)
            return
        LOG.warning("instance %s: %s %s ended %s (%s); attempt %d in "
                    "%.0f s", server, WORKFLOW, execution["id"],
                    execution["state"], execution.get("state_info"),
                    attempt + 2, self.retry_after)
        self.record.next_attempt(server)
        run.update(started=False, not_before=self.clock() + self.retry_after)

    def _finish(self, server):
        self.record.done(server)
        self._runs.pop(server, None)


def run(monitor, source, stop, reconcile_every=60.0, pass_every=2.0,
        reconnect_after=5.0, settle=10.0, clock=time.monotonic):
    """Watch ``source`` (domains.LibvirtDomains) for ``monitor`` until
    ``stop`` (a threading.Event) is set.  Reconciles at each (re)connect,
    again ``settle`` seconds later (a libvirtd that has just started is
    still reconnecting to its running domains: a qemu that dies meanwhile
    may never be an event), then every ``reconcile_every`` seconds; starts
    and follows runs every ``pass_every`` seconds, also while libvirt is
    unreachable."""
    next_reconcile = 0.0
    settling = False
    while not stop.is_set():
        if not source.connected:
            source.close()
            try:
                source.connect()
                next_reconcile, settling = 0.0, True
            except Exception as exc:  # libvirt.libvirtError, not importable
                LOG.warning("cannot connect to libvirt at %s: %s; again "
                            "in %.0f s", source.uri, exc, reconnect_after)
                _pass(monitor)
                stop.wait(reconnect_after)
                continue
        if clock() >= next_reconcile:
            try:
                monitor.reconcile(source.states())
            except Exception:
                LOG.exception("reading libvirt's domains failed")
                source.close()
                continue
            next_reconcile = clock() + (min(settle, reconcile_every)
                                        if settling else reconcile_every)
            settling = False
        _drain(monitor, source, pass_every)
        _pass(monitor)


def _drain(monitor, source, wait):
    """The events that arrive within ``wait`` seconds."""
    try:
        item = source.events.get(timeout=wait)
    except queue.Empty:
        return
    while True:
        if item is None:
            source.close()
            return
        uuid, name, event, detail = item
        try:
            monitor.event(source.domain(uuid, name), event, detail)
        except Exception:
            # The reconciliation at the reconnect finds what was missed.
            LOG.exception("handling libvirt event %s_%s of %s failed",
                          event, detail, name)
            source.close()
            return
        try:
            item = source.events.get_nowait()
        except queue.Empty:
            return


def _pass(monitor):
    try:
        monitor.step()
    except Exception:  # a bug must not end the monitoring
        LOG.exception("instance monitor pass failed")
