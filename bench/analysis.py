"""What one trial did, read from the simulated cloud's call log and its
migrations: Nova calls per VM, when the first evacuation was sent, how
many evacuations were in flight at once."""

import collections
import datetime
import statistics

KEYSTONE = "keystone."
EVACUATE = "evacuate"
# Steps of a recovery, by the first call of each kind (from t0).
MILESTONES = (
    ("service_down", ("services.update", "services.force_down",
                      "services.disable", "services.disable_log_reason")),
    ("list_servers", ("servers.detail",)),
    ("first_lock", ("lock",)),
    ("first_evacuate", (EVACUATE,)),
)


def _epoch(moment):
    """A simulator datetime (naive UTC) as seconds since the epoch."""
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def max_overlap(intervals):
    """The largest number of [start, end) intervals open at one time."""
    events = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def evacuation_spans(sim, server_ids):
    """(accepted, done) wall times of each accepted evacuation of these
    servers: from the evacuate call to its migration ``done``."""
    accepted = {}
    for call in sim.cloud.calls.calls(operation=EVACUATE, status=200):
        if call.server_id in server_ids:
            accepted.setdefault(call.server_id, call.time)
    spans = []
    for migration in list(sim.cloud.migrations):
        sid = migration.instance_uuid
        if sid in accepted and migration.status in ("done", "completed"):
            spans.append((accepted[sid], _epoch(migration.updated_at)))
    return spans


def analyse(sim, server_ids, t0):
    """Metrics of one trial that started at wall time ``t0`` and was to
    recover ``server_ids``."""
    server_ids = set(server_ids)
    n = max(len(server_ids), 1)
    calls = sim.cloud.calls.calls()
    by_op = collections.Counter(c.operation for c in calls)
    keystone = sum(v for k, v in by_op.items() if k.startswith(KEYSTONE))
    per_server = collections.Counter(c.server_id for c in calls
                                     if c.server_id in server_ids)
    milestones = {}
    for name, operations in MILESTONES:
        times = [c.time for c in calls if c.operation in operations
                 and c.status is not None and c.status < 400]
        milestones[name] = round(min(times) - t0, 3) if times else None
    # Per VM, the span of the recovery's work on it: first to last call.
    work = collections.defaultdict(list)
    for c in calls:
        if c.server_id in server_ids:
            work[c.server_id].append((c.time, c.time + c.duration))
    work_spans = [(min(s for s, _ in v), max(e for _, e in v))
                  for v in work.values()]
    evac = evacuation_spans(sim, server_ids)
    accepted = sim.cloud.calls.accepted_evacuations()
    moved = [sid for sid in server_ids
             if sim.cloud.servers[sid].host not in _failed_hosts(sim)]
    errors = [sid for sid in server_ids
              if sim.cloud.servers[sid].vm_state == "error"]
    return {
        "calls_total": len(calls),
        "calls_per_vm": round(len(calls) / n, 2),
        "calls_per_vm_without_keystone": round((len(calls) - keystone) / n,
                                               2),
        "server_calls_per_vm": round(sum(per_server.values()) / n, 2),
        "server_calls_per_vm_max": max(per_server.values(), default=0),
        "polls_per_vm": round(by_op.get("servers.show", 0) / n, 2),
        "keystone_calls": keystone,
        "calls_by_operation": dict(sorted(by_op.items())),
        "milestones_s": milestones,
        "evacuations_in_flight_max": max_overlap(evac),
        "vm_work_in_flight_max": max_overlap(work_spans),
        "last_evacuation_done_s": (round(max(e for _, e in evac) - t0, 3)
                                   if evac else None),
        "evacuation_seconds_median": (
            round(statistics.median(e - s for s, e in evac), 3)
            if evac else None),
        "double_evacuations": sum(1 for v in accepted.values() if v > 1),
        "vms_moved": len(moved),
        "vms_in_error": len(errors),
        "simulator_errors": len(sim.errors),
    }


def _failed_hosts(sim):
    return {name for name, host in sim.cloud.hosts.items()
            if not host.alive}


def recovered_at(sim, server_ids):
    """{server id: wall time its recovery ended at Nova}: the answer to
    the first unlock after its move (the last step of its state-table
    row, recover_servers), the migration's ``done`` when never unlocked."""
    times = {}
    for call in sim.cloud.calls.calls(operation="unlock"):
        if (call.server_id in server_ids and call.status is not None
                and call.status < 400 and call.server_id not in times):
            times[call.server_id] = call.time + call.duration
    for migration in list(sim.cloud.migrations):
        sid = migration.instance_uuid
        if (sid in server_ids and sid not in times
                and migration.status in ("done", "completed")):
            times[sid] = _epoch(migration.updated_at)
    return times


def by_group(sim, group_of, t0):
    """Per restart group (``group_of``: {server id: group name}), from
    t0: the first evacuate answered, the last evacuation done at Nova,
    the last VM recovered (recovered_at) and how many were."""
    ids = set(group_of)
    accepted = {}
    for call in sim.cloud.calls.calls(operation=EVACUATE, status=200):
        if call.server_id in ids:
            accepted.setdefault(call.server_id, call.time)
    done = {}
    for migration in list(sim.cloud.migrations):
        if (migration.instance_uuid in ids
                and migration.status in ("done", "completed")):
            done[migration.instance_uuid] = _epoch(migration.updated_at)
    recovered = recovered_at(sim, ids)

    def rel(values, pick):
        return round(pick(values) - t0, 3) if values else None

    groups = {}
    for name in dict.fromkeys(group_of.values()):
        members = [sid for sid, g in group_of.items() if g == name]
        groups[name] = {
            "vms": len(members),
            "recovered": sum(1 for sid in members if sid in recovered),
            "first_evacuate_s": rel(
                [accepted[s] for s in members if s in accepted], min),
            "last_evacuation_done_s": rel(
                [done[s] for s in members if s in done], max),
            "last_recovered_s": rel(
                [recovered[s] for s in members if s in recovered], max),
        }
    return groups
