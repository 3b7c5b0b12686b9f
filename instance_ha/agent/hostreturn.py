"""A recovered host online again: say so once, and with ``return_hosts``
return it to service through ``instance_ha.host_return``.

host_evacuate leaves the nova-compute of the host it recovered forced
down and disabled.  When the monitor sees a host whose failure it
watched stably online again in Pacemaker (the crm_mon read of the pass),
``note`` keeps a return for that failure in the state (``returns``,
keyed by the failure), with the outcome of the failure's last
host_evacuate run as the watch last saw it.  ``follow``, later in the
same pass and in the next ones until the return is concluded:

* ``return_hosts`` false (the default): one warning that the host is
  back and that an operator returns it (``instance-ha host-return HOST``,
  ``--pacemaker-node NODE`` where the names differ).  Nothing is sent.
* ``return_hosts`` true: when the failure's last run ended SUCCESS (a
  run the watch had not seen end is looked up in Mistral once), it
  starts host_return for the host under the failure's deterministic
  return id (agent.handoff: one per failure, whoever starts it, however
  often) and says so; then it follows that execution at each monitor and
  logs its end once: SUCCESS, or Mistral's one-line reason (host_return
  refuses an unsafe return itself: the node not online in Pacemaker,
  nova-compute not up, an evacuation not completed).  A last run still
  running, failed or given up: nothing is started, the warning says why
  and what the operator does.

Each step is one Mistral request within the pass's budget; a return
the budget leaves out is named and comes first in the next pass.  One
return is a JSON-able dict::

    {"host" (the Pacemaker node), "nova_host", "failure", "fenced_at"
     (ISO), "evacuation_id" (the last host_evacuate run), "evacuation"
     (its outcome as watched: None while running), "execution_id" (the
     host_return run, once started), "outcome" (None until concluded;
     SUCCESS, ERROR or CANCELLED: host_return's end; TOLD: left to the
     operator), "checked_in" (the pass that last looked at it)}

A host's concluded returns are dropped when it returns again.
"""

import datetime
import json

from instance_ha.agent import handoff

RUNNING_STATES = ("RUNNING", "IDLE", "PAUSED")
ENDED_STATES = ("SUCCESS", "ERROR", "CANCELLED")
# Concluded without a host_return run of the agent's.
TOLD = "TOLD"


def command(entry):
    """The operator's command for this return."""
    text = f"instance-ha host-return {entry['nova_host']}"
    if entry["host"] != entry["nova_host"]:
        text += f" --pacemaker-node {entry['host']}"
    return text


def note(state, config, entry):
    """Keep a return for watched failure ``entry`` (its host is stably
    online again); once per failure."""
    returns = state.setdefault("returns", {})
    failure = entry["failure"]
    if failure in returns:
        return
    for key, old in list(returns.items()):
        if old["host"] == entry["host"] and old.get("outcome") is not None:
            del returns[key]
    returns[failure] = {
        "host": entry["host"], "nova_host": config.nova_host(entry["host"]),
        "failure": failure, "fenced_at": entry["fenced_at"],
        "evacuation_id": entry["execution_id"],
        "evacuation": entry.get("outcome"), "execution_id": None,
        "outcome": None, "checked_in": 0}


def follow(state, deps, describe=str):
    """One look at every return not concluded, within the budget.
    ``describe``: a client error as one line."""
    returns = state.setdefault("returns", {})
    pending = [r for r in returns.values() if r.get("outcome") is None]
    if not pending:
        return
    if not deps.config.return_hosts:
        for entry in pending:
            _tell(entry, deps.log)
        return
    pending.sort(key=lambda r: r.get("checked_in", 0))
    for index, entry in enumerate(pending):
        if deps.budget.spent():
            _left_out(deps, pending[index:])
            return
        entry["checked_in"] = state.get("passes", 0)
        try:
            _step(entry, deps)
        except Exception as exc:  # noqa: BLE001 - any client error: next time
            deps.log.error("%s: cannot follow its return to service, will "
                           "retry at the next monitor: %s", entry["host"],
                           describe(exc))


def _tell(entry, log):
    """return_hosts false: the operator returns the host."""
    entry["outcome"] = TOLD
    host = entry["host"]
    if entry["evacuation"] == "SUCCESS":
        log.warning("%s: back online after its recovery (execution %s "
                    "SUCCESS); its nova-compute stays forced down and "
                    "disabled until it is returned to service: run '%s' "
                    "(return_hosts=false: the agent does not)", host,
                    entry["evacuation_id"], command(entry))
        return
    log.warning("%s: back online, its recovery not finished (execution "
                "%s, last outcome %s); its nova-compute stays forced down "
                "and disabled: check the VMs Nova still has on %s, then "
                "run '%s'", host, entry["evacuation_id"],
                entry["evacuation"] or "running", entry["nova_host"],
                command(entry))


def _step(entry, deps):
    client = deps.client()
    if entry["execution_id"] is None:
        evacuation = entry["evacuation"] or _evacuation_state(client, entry)
        entry["evacuation"] = evacuation
        if evacuation != "SUCCESS":
            entry["outcome"] = TOLD
            deps.log.warning(
                "%s: back online, but its recovery did not end in SUCCESS "
                "(execution %s: %s): NOT returning it to service "
                "(return_hosts starts host_return only after a successful "
                "recovery); check the VMs Nova still has on %s, then run "
                "'%s'", entry["host"], entry["evacuation_id"],
                evacuation.lower() if evacuation in RUNNING_STATES
                else evacuation, entry["nova_host"], command(entry))
            return
        execution = _start(client, entry, deps)
        deps.log.warning(
            "%s: back online after its recovery (execution %s SUCCESS): "
            "returning it to service (return_hosts=true): host_return "
            "execution %s (%s)", entry["host"], entry["evacuation_id"],
            execution.id, execution.state)
    else:
        from mistralclient.api import base as mistral_base

        try:
            execution = client.executions.get(entry["execution_id"])
        except mistral_base.APIException as exc:
            if getattr(exc, "error_code", None) != 404:
                raise
            deps.log.warning("%s: host_return execution %s is gone from "
                             "Mistral; starting it again under the same id",
                             entry["host"], entry["execution_id"])
            execution = _start(client, entry, deps)
    if execution.state in ENDED_STATES:
        _ended(entry, execution, deps.log)


def _evacuation_state(client, entry):
    """The state of the failure's last run, which the watch stopped
    following before it ended: Mistral's word now."""
    from mistralclient.api import base as mistral_base

    try:
        return client.executions.get(entry["evacuation_id"]).state
    except mistral_base.APIException as exc:
        if getattr(exc, "error_code", None) != 404:
            raise
        return "gone from Mistral"


def _start(client, entry, deps):
    fenced_at = datetime.datetime.fromisoformat(entry["fenced_at"])
    execution = handoff.start_return(client, entry["host"], fenced_at,
                                     entry["nova_host"], deps.origin)
    entry["execution_id"] = execution.id
    return execution


def _ended(entry, execution, log):
    entry["outcome"] = execution.state
    host = entry["host"]
    if execution.state == "SUCCESS":
        log.info("%s: returned to service: host_return execution %s "
                 "SUCCESS (%s)", host, execution.id,
                 _changed(execution.output))
        return
    reason = (execution.state_info or "no reason given").splitlines()
    log.error("%s: NOT returned to service: host_return execution %s "
              "ended in %s: %s; once that is fixed run '%s'", host,
              execution.id, execution.state,
              (reason[0] if reason else "")[:500], command(entry))


def _changed(output):
    """What host_return changed, in a few words."""
    try:
        output = json.loads(output or "{}") if isinstance(output, str) \
            else (output or {})
    except ValueError:
        output = {}
    changed = (output.get("changed") if isinstance(output, dict)
               else None) or {}
    done = [words for key, words in (("forced_down_unset",
                                      "forced_down unset"),
                                     ("enabled", "enabled"))
            if changed.get(key)]
    return ", ".join(done) or "nothing to change"


def _left_out(deps, entries):
    deps.log.warning(
        "%s; %d return(s) to service not followed this pass (the next one "
        "starts with them): %s",
        (f"the monitor's budget of {deps.budget.seconds:g} s is spent"
         if deps.budget.seconds is not None else "out of time"),
        len(entries), ", ".join(e["host"] for e in entries))
