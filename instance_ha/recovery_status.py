"""The progress of a host recovery, read back from Mistral.

A recovery is one ``instance_ha.host_evacuate`` execution; the VMs it plans
to move are the ``servers`` its ``list_servers_on_host`` task published, and
each VM's progress is one ``instance_ha.instance_evacuate`` child execution
(its input names the server, its output is the VM's record).
"""

import dataclasses
import json

HOST_WORKFLOW = "instance_ha.host_evacuate"
VM_WORKFLOW = "instance_ha.instance_evacuate"
FENCING_TASK = "confirm_fencing"
LIST_TASK = "list_servers_on_host"
PAGE = 500
CHILD_FIELDS = ["id", "state", "input", "output"]  # a list omits in/output


@dataclasses.dataclass
class VMProgress:
    id: str
    name: str
    outcome: str  # pending | running | moved | failed | skipped
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
        counts = {"moved": 0, "failed": 0, "skipped": 0, "pending": 0}
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
    planned, fencing = _from_tasks(client, root.id)
    vms = {s["id"]: VMProgress(s["id"], s.get("name"), "pending")
           for s in planned}
    for child in _children(client, root.id):
        server = _json(child.input).get("server") or {}
        vm = vms.setdefault(server.get("id"),
                            VMProgress(server.get("id"), server.get("name"),
                                       "pending"))
        if child.state == "SUCCESS":
            record = _json(child.output)
            vm.outcome = record.get("outcome")
            vm.host, vm.vm_state = record.get("host"), record.get("vm_state")
            vm.reason = record.get("reason")
        else:
            vm.outcome = "running"
    return Recovery(root.id, host, root.state, root.state_info,
                    list(vms.values()), fencing)


def _from_tasks(client, execution_id):
    """(the VMs the listing planned to evacuate, confirm_fencing's
    summary), from one read of the run's tasks."""
    planned, fencing = [], None
    for task in client.tasks.list(execution_id):
        if task.state != "SUCCESS":
            continue
        if task.name == LIST_TASK:
            servers = _json(task.published).get("servers") or []
            planned = [s for s in servers if s.get("plan") == "evacuate"]
        elif task.name == FENCING_TASK:
            fencing = (_json(task.published).get("fenced") or {}).get(
                "summary")
    return planned, fencing


def _children(client, root_id):
    marker = ""
    while True:
        page = client.executions.list(
            root_execution_id=root_id, workflow_name=VM_WORKFLOW,
            marker=marker, limit=PAGE, sort_keys="created_at,id",
            sort_dirs="asc,asc", fields=CHILD_FIELDS)
        yield from page
        if len(page) < PAGE:
            return
        marker = page[-1].id


def _json(value):
    if not value:
        return {}
    return json.loads(value) if isinstance(value, str) else value
