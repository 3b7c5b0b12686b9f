"""One monitor pass of the agent: read, decide, hand over, watch.

1. Read Pacemaker (``hostmonitor.read_cluster``: crm_mon XML with the fence
   history) and decide per node with hostmonitor's Memory and Debounce,
   kept in the state file between two monitors.
2. For each stable ``failed_fenced`` host the gate lets through (quorum,
   mass-failure threshold) and whose evacuation delay has passed: unless
   the CIB record (``instance-ha-evacuation``, lifetime forever) already
   names this failure, start the workflow under the failure's
   deterministic id and record it.  Never anything for a host whose
   fencing is not confirmed: that is hostmonitor's ``failed_unfenced``.
3. Watch every failure handed over (watchdog.Watchdog).  A failure known
   only from the CIB record (the agent moved to this controller) is
   picked up from it.  The watchdog starts a new run only when this
   pass's read shows the host failed and fenced for that same failure,
   with the gate open (``fenced_now``); after a cluster read error it
   only observes.
4. A host online again (stable): the watch of its failure stops (logged,
   with the state of its last run) and its record is cleared, so its
   next failure is a new one.
5. Such a host's return to service (agent.hostreturn): said once; with
   ``return_hosts``, instance_ha.host_return started under the failure's
   return id after a successful recovery, and followed to its end.

Nothing here fails the resource: a cluster that cannot be read, an
unreachable Mistral or CIB is logged and the next monitor tries again.

A pass works within ``deps.budget`` (agent.budget: 80 % of the monitor's
timeout): each Pacemaker command and Mistral request gets at most the
time left, and once it is spent the pass starts nothing more.  The
failures it could not hand over or watch are logged; the next pass
hands over first and watches first those it left out.

Two front ends run this same pass: the OCF agent's monitor (one pass per
process, state in the state file) and the ``instance-ha hostmonitor``
daemon (hostmonitor.daemon: a pass every ``interval`` seconds).
"""

import datetime
import logging
import socket

from instance_ha.agent import budget as budget_module
from instance_ha.agent import handoff
from instance_ha.agent import hostreturn
from instance_ha.agent import watchdog as watchdog_module
from instance_ha.hostmonitor import crm_mon as crm_mon_module
from instance_ha.hostmonitor import decision
from instance_ha.hostmonitor import pcmk
from instance_ha.hostmonitor import store as store_module
from instance_ha.hostmonitor import trigger

# instance_ha.mistral_client (python-mistralclient, keystoneauth1) is
# imported by the two functions that need it, client() and _describe(): a
# pass with nothing to hand over or watch never talks to Mistral, and the
# OCF agent runs a new process for every monitor.

FAILED_FENCED = "failed_fenced"
ONLINE = "online"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class Dependencies:
    """What one monitor pass talks to; tests replace parts of it.

    ``budget``: the pass's agent.budget.Budget (default: no limit);
    ``crm_mon``, ``stonith_admin``: the Pacemaker tools to run (default:
    from PATH).
    """

    def __init__(self, config, log, clock=utcnow, read=None, store=None,
                 connect=None, origin=None, budget=None, crm_mon=None,
                 stonith_admin=None):
        self.config = config
        self.log = log
        self.clock = clock
        self._read = read
        self._store = store
        self._connect = connect
        self._client = None
        self.origin = origin or (f"ocf:openstack:instance-ha on "
                                 f"{socket.gethostname()}")
        self.budget = budget or budget_module.Budget()
        self.tools = {name: path for name, path in (
            ("crm_mon", crm_mon), ("stonith_admin", stonith_admin)) if path}

    def timeout(self):
        """Seconds the next command or request may take: request_timeout,
        or the time left if less; OutOfTime when none is left."""
        return self.budget.timeout(self.config.request_timeout)

    def read(self):
        if self._read is not None:
            return self._read()
        return crm_mon_module.read_cluster(timeout=self.timeout(),
                                           **self.tools)

    @property
    def store(self):
        if self._store is None:
            self._store = store_module.CibStore(timeout=self.timeout)
        return self._store

    def client(self):
        """A Mistral client whose every request is cut to the time left;
        raises mistral_client.MistralError (or OutOfTime)."""
        if self._client is None:
            if self._connect is not None:
                client = self._connect()
            else:
                from instance_ha import mistral_client

                client = mistral_client.connect(
                    mistral_url=self.config.mistral_url or None,
                    cloud=self.config.cloud or None,
                    clouds_yaml=self.config.clouds_yaml or None,
                    timeout=self.timeout())
            budget_module.bind(client, self.budget)
            self._client = client
        return self._client


def run(state, deps):
    """One pass; updates ``state`` (the state file's dict) in place."""
    config, log = deps.config, deps.log
    policy = config.policy()
    memory = decision.Memory.from_dict(state.get("memory") or {})
    debounce = decision.Debounce.from_dict(policy.debounce,
                                           state.get("debounce") or {})
    state["passes"] = state.get("passes", 0) + 1
    try:
        status = deps.read()
    except (pcmk.ClusterReadError, budget_module.OutOfTime) as exc:
        log.error("cannot read the cluster, deciding nothing this time: %s",
                  exc)
        _one_instant(deps)
        _watch(state, deps, None)
        return None
    # Stamped after the read: for "last seen online" the later bound is
    # the safe one.
    now = _one_instant(deps)
    assessment = decision.assess(status, policy, memory, now)
    memory.observe(status, now)
    state["memory"] = memory.as_dict()
    _log_verdicts(state, assessment, log)
    if assessment.held:
        log.error("MASS FAILURE, NOTHING TRIGGERED: %s", assessment.held)
    if state.get("quorum", True) != assessment.quorum:
        if assessment.quorum:
            log.warning("quorum is back")
        else:
            log.warning("no quorum: nothing is triggered")
    state["quorum"] = assessment.quorum
    stable = debounce.update(assessment)
    state["debounce"] = debounce.as_dict()
    allowed = {v.name for v in assessment.to_trigger}

    records = _records(deps)
    left_out = []
    for verdict in stable:
        if verdict.decision == FAILED_FENCED and verdict.name in allowed:
            if deps.budget.spent():
                left_out.append(verdict.name)
                continue
            _hand_over(state, deps, verdict, records)
        elif verdict.decision == ONLINE:
            _forget(state, deps, verdict.name, records)
    if left_out:
        log.warning("%s; not handed over this pass (the next one starts "
                    "with them): %s", _spent(deps), ", ".join(left_out))
    _adopt(state, assessment, records, deps)
    _watch(state, deps, assessment)
    hostreturn.follow(state, deps, describe=_describe)
    return assessment


def _one_instant(deps):
    """Read the clock once: the whole pass (its records, the watchdog's
    ages and times) is at that instant."""
    now = deps.clock()
    deps.clock = lambda: now
    return now


def _spent(deps):
    return (f"the monitor's budget of {deps.budget.seconds:g} s is spent"
            if deps.budget.seconds is not None else "out of time")


def _records(deps):
    try:
        return deps.store.all()
    except (store_module.StoreError, budget_module.OutOfTime) as exc:
        deps.log.error("cannot read the handoff records in the CIB (the "
                       "execution ids still prevent a second run): %s", exc)
        return None


def _log_verdicts(state, assessment, log):
    """A decision that changed at INFO, an unchanged one at DEBUG."""
    logged = state.setdefault("logged", {})
    for verdict in assessment.verdicts:
        current = [verdict.decision, verdict.reason]
        changed = logged.get(verdict.name) != current
        logged[verdict.name] = current
        log.log(logging.INFO if changed else logging.DEBUG, "%s %s: %s: %s",
                verdict.type, verdict.name, verdict.decision, verdict.reason)


def _hand_over(state, deps, verdict, records):
    config, log = deps.config, deps.log
    host, fenced_at = verdict.name, verdict.fenced_at
    failure = trigger.failure_key(host, fenced_at)
    watch = state.setdefault("watch", {})
    previous = (records or {}).get(host)
    if previous is not None and previous.failure == failure:
        if failure not in watch:
            _adopt_one(state, deps, host, fenced_at, previous)
        return
    if failure in watch:
        # Started by us; its record could not be written then.
        if records is not None:
            _record(deps, watch[failure])
        return
    waited = (deps.clock() - fenced_at).total_seconds()
    if config.evacuation_delay and waited < config.evacuation_delay:
        log.info("%s: fenced %d s ago; evacuation starts after %d s "
                 "(evacuation_delay)", host, waited, config.evacuation_delay)
        return
    try:
        client = deps.client()
        execution = handoff.start(client, host, fenced_at, 0,
                                  config.workflow, config.on_shared_storage,
                                  deps.origin,
                                  config.workflow_input(host,
                                                        verdict.inferred))
    except Exception as exc:  # noqa: BLE001 - any client error: next time
        log.error("%s: could not start the evacuation workflow, will retry "
                  "at the next monitor: %s", host, _describe(exc))
        return
    log.warning("%s: failed and fenced (%s); evacuation handed to Mistral: "
                "execution %s (%s)", host, verdict.reason, execution.id,
                execution.state)
    watch[failure] = watchdog_module.new_entry(
        host, fenced_at, failure, 0, execution.id, deps.clock())
    if verdict.inferred:
        # Its next attempts go with the same override (watchdog._start).
        watch[failure]["inferred"] = True
    _record(deps, watch[failure])


def _record(deps, entry):
    handoff_record = store_module.Handoff(
        host=entry["host"], execution_id=entry["execution_id"],
        failure=entry["failure"])
    try:
        deps.store.record(handoff_record)
    except (store_module.StoreError, budget_module.OutOfTime) as exc:
        deps.log.error("%s: execution %s not recorded in the CIB (a repeat "
                       "lands on the same execution; the next monitor "
                       "writes it): %s", entry["host"],
                       entry["execution_id"], exc)


def _adopt(state, assessment, records, deps):
    """Failures recorded in the CIB by another controller's agent (or
    before this one restarted) and not yet watched here."""
    for host, record in (records or {}).items():
        verdict = assessment.verdict(host)
        if verdict is None or verdict.decision == ONLINE:
            continue
        watch = state.setdefault("watch", {})
        if any(entry["host"] == host for entry in watch.values()):
            continue
        fenced_at = _fenced_at(record.failure, host)
        if fenced_at is not None:
            _adopt_one(state, deps, host, fenced_at, record)


def _adopt_one(state, deps, host, fenced_at, record):
    attempt = handoff.attempt_of(host, fenced_at, record.execution_id)
    if attempt is None:
        deps.log.warning("%s: CIB record names execution %s, not one of "
                         "this failure's ids; not watched", host,
                         record.execution_id)
        return
    state.setdefault("watch", {})[record.failure] = watchdog_module.new_entry(
        host, fenced_at, record.failure, attempt, record.execution_id,
        deps.clock())
    deps.log.info("%s: watching execution %s (attempt %d) recorded in the "
                  "CIB", host, record.execution_id, attempt + 1)


def _fenced_at(failure, host):
    prefix = f"{host}@"
    if not failure.startswith(prefix):
        return None
    try:
        return datetime.datetime.fromisoformat(failure[len(prefix):])
    except ValueError:
        return None


def _forget(state, deps, host, records):
    watch = state.setdefault("watch", {})
    for failure, entry in list(watch.items()):
        if entry["host"] != host:
            continue
        if entry.get("outcome") != "SUCCESS":
            deps.log.warning(
                "%s: back online while its recovery was not finished "
                "(execution %s, run %d, last outcome %s): the watch stops "
                "and nothing more is started for this failure; check the "
                "VMs Nova still has on %s", host, entry["execution_id"],
                entry["attempt"] + 1, entry.get("outcome") or "running",
                host)
        hostreturn.note(state, deps.config, entry)
        del watch[failure]
    if records is None or host not in records:
        return
    try:
        deps.store.clear(host)
    except (store_module.StoreError, budget_module.OutOfTime) as exc:
        deps.log.error("%s: back online, but its handoff record could not "
                       "be cleared: %s", host, exc)
        return
    deps.log.info("%s: back online; handoff record cleared (a new failure "
                  "will be a new recovery)", host)


def fenced_now(assessment):
    """The watchdog's gate: (True, why) when this read shows the entry's
    host failed and fenced for the entry's own failure and the safety
    gate (quorum, mass failure) lets it through; else (False, why not).
    ``assessment`` None: the cluster could not be read."""

    def check(entry):
        host = entry["host"]
        if assessment is None:
            return False, "the cluster could not be read this time"
        verdict = assessment.verdict(host)
        if verdict is None:
            return False, f"Pacemaker shows no node {host}"
        if verdict.decision != FAILED_FENCED:
            return False, (f"{host} is not failed and fenced now "
                           f"({verdict.decision}: {verdict.reason})")
        if trigger.failure_key(host, verdict.fenced_at) != entry["failure"]:
            return False, (f"{host} was fenced again since (another "
                           "failure)")
        if verdict not in assessment.to_trigger:
            return False, ("the safety gate holds every trigger: "
                           + (assessment.held or "no quorum"))
        return True, verdict.reason

    return check


def _watch(state, deps, assessment):
    watch = state.setdefault("watch", {})
    pending = [e for e in watch.values() if e.get("outcome") != "SUCCESS"]
    if not pending:
        return
    # Those a spent budget left out (or cut short) last time come first.
    pending.sort(key=lambda e: e.get("checked_in", 0))
    if deps.budget.spent():
        _left_unchecked(deps, pending)
        return
    try:
        client = deps.client()
    except Exception as exc:  # noqa: BLE001
        deps.log.error("cannot reach Mistral to watch %d recoveries, will "
                       "retry at the next monitor: %s", len(pending),
                       _describe(exc))
        if deps.budget.spent():
            _left_unchecked(deps, pending)
        return
    dog = watchdog_module.Watchdog(
        client, deps.config, deps.log, deps.origin,
        record=lambda entry: _record(deps, entry),
        clock=deps.clock, fenced_now=fenced_now(assessment))
    for index, entry in enumerate(pending):
        if deps.budget.spent():
            _left_unchecked(deps, pending[index:])
            return
        entry["checked_in"] = state.get("passes", 0)
        try:
            dog.check(entry)
        except Exception as exc:  # noqa: BLE001 - next monitor again
            deps.log.error("%s: cannot follow execution %s, will retry at "
                           "the next monitor: %s", entry["host"],
                           entry["execution_id"], _describe(exc))
            if deps.budget.spent():
                _left_unchecked(deps, pending[index + 1:])
                return


def _left_unchecked(deps, entries):
    if entries:
        deps.log.warning(
            "%s; %d watched failure(s) not checked this pass (the next one "
            "checks them first): %s", _spent(deps), len(entries),
            ", ".join(f"{e['host']} (execution {e['execution_id']})"
                      for e in entries))


def _describe(exc):
    try:
        from instance_ha import mistral_client
    except ImportError:  # pragma: no cover
        return str(exc)
    return mistral_client.describe(exc)
