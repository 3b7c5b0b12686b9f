"""The progress of a host recovery, read back from Mistral.

A recovery is one ``instance_ha.host_evacuate`` execution; the VMs it plans
to move are the ``queue`` its ``list_servers_on_host`` task published,
and they are recovered by the passes of its ``evacuate_servers`` task,
one ``recover_servers`` action each: its input names its servers, its
output holds their records once it reports (a VM still ``waiting`` then
is taken up by the next pass).
"""

import dataclasses
import json

HOST_WORKFLOW = "instance_ha.host_evacuate"
FENCING_TASK = "confirm_fencing"
LIST_TASK = "list_servers_on_host"
CAPACITY_TASK = "estimate_capacity"
BATCH_TASK = "evacuate_servers"
PAGE = 500


@dataclasses.dataclass
class VMProgress:
    id: str
    name: str
    # pending | running | moved | failed | skipped | not_attempted
    outcome: str
    host: str = None
    vm_state: str = None
    reason: str = None


@dataclasses.dataclass
class Recovery:
    execution_id: str
    host: str
    state: str
    state_info: str
    vms: list
    # What confirm_fencing found (its summary), once it ran.
    fencing: str = None

    def counts(self):
        counts = {"moved": 0, "failed": 0, "skipped": 0,
                  "not_attempted": 0, "pending": 0}
        for vm in self.vms:
            key = vm.outcome if vm.outcome in counts else "pending"
            counts[key] += 1
        return counts

    @property
    def finished(self):
        return self.state in ("SUCCESS", "ERROR", "CANCELLED")


def recent(client, limit=20):
    """The newest host recoveries, newest first."""
    return client.executions.list(workflow_name=HOST_WORKFLOW, limit=limit,
                                  sort_keys="created_at", sort_dirs="desc")


def read(client, execution_id):
    root = client.executions.get(execution_id)
    wf_input = _json(root.input)
    host = (wf_input.get("search_opts") or {}).get("host")
    output = _json(root.output)
    if root.state in ("SUCCESS", "ERROR") and output.get("servers"):
        vms = [VMProgress(id=r.get("id"), name=r.get("name"),
                          outcome=r.get("outcome"), host=r.get("host"),
                          vm_state=r.get("vm_state"), reason=r.get("reason"))
               for r in output["servers"]]
        return Recovery(root.id, host, root.state, root.state_info, vms,
                        (output.get("fencing") or {}).get("summary"))
    planned, fencing, batch_tasks, no_room = _from_tasks(client, root.id)
    vms = {s["id"]: VMProgress(s["id"], s.get("name"), "pending")
           for s in planned}
    for record in no_room:  # failed by the capacity estimate, untouched
        vm = vms.setdefault(record.get("id"), VMProgress(
            record.get("id"), record.get("name"), "failed"))
        vm.outcome, vm.host, vm.vm_state, vm.reason = (
            "failed", record.get("host"), record.get("vm_state"),
            record.get("reason"))
    for batch in _batches(client, batch_tasks):
        if batch.state == "SUCCESS":
            for record in _json(batch.output).get("result", {}).get(
                    "servers", []):
                vm = vms.setdefault(record.get("id"),
                                    VMProgress(record.get("id"),
                                               record.get("name"),
                                               "pending"))
                vm.outcome = "running" if record.get("outcome") == \
                    "waiting" else record.get("outcome")
                vm.host, vm.vm_state = record.get("host"), \
                    record.get("vm_state")
                vm.reason = record.get("reason")
            continue
        for server in _json(batch.input).get("servers") or []:
            vm = vms.setdefault(server.get("id"),
                                VMProgress(server.get("id"),
                                           server.get("name"), "pending"))
            if batch.state == "RUNNING":
                vm.outcome = "running"
            else:  # lost with its executor: the next run will tell
                vm.outcome = "unknown"
                vm.reason = f"its batch ended {batch.state}: " \
                            f"{batch.state_info or 'no reason given'}"
    return Recovery(root.id, host, root.state, root.state_info,
                    list(vms.values()), fencing)


def _from_tasks(client, execution_id):
    """(the VMs the listing planned to evacuate, confirm_fencing's
    summary, the ids of the passes' tasks, oldest first, the records of
    the VMs the capacity estimate found no room for), from one read of
    the run's tasks."""
    planned, fencing, batch_tasks, no_room = [], None, [], []
    for task in sorted(client.tasks.list(execution_id),
                       key=lambda t: (t.created_at or "", t.id)):
        if task.name == BATCH_TASK:
            batch_tasks.append(task.id)
        if task.state != "SUCCESS":
            continue
        if task.name == LIST_TASK:
            planned = _json(task.published).get("queue") or []
        elif task.name == FENCING_TASK:
            fencing = (_json(task.published).get("fenced") or {}).get(
                "summary")
        elif task.name == CAPACITY_TASK:
            no_room = _json(task.published).get("results") or []
    return planned, fencing, batch_tasks, no_room


def _batches(client, task_ids):
    """The passes' action executions, oldest first, with input and
    output."""
    for task_id in task_ids:
        marker = ""
        while True:
            page = client.action_executions.list(
                task_id, marker=marker, limit=PAGE,
                sort_keys="created_at,id", sort_dirs="asc,asc",
                include_output=True)
            yield from page
            if len(page) < PAGE:
                break
            marker = page[-1].id


def _json(value):
    if not value:
        return {}
    return json.loads(value) if isinstance(value, str) else value
