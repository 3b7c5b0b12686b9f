"""What the instance-ha pack ships: its workflows and its actions.

The installed package is the source of truth: the workflow YAML files are
package data of ``instance_ha.workflows`` and the actions are the
``mistral.actions`` entry points of this distribution, so an installed wheel
can register itself without the source tree.
"""

import dataclasses
from importlib import metadata
from importlib import resources

import yaml

DISTRIBUTION = "instance-ha"
ACTION_ENTRY_POINTS = "mistral.actions"
WORKFLOW_PACKAGE = "instance_ha.workflows"
EXPRESSION_MARKERS = ("<%", "{{")


class PackError(Exception):
    """A workflow file of the pack is malformed."""


@dataclasses.dataclass(frozen=True)
class WorkflowFile:
    """One YAML file of the pack, holding exactly one workflow."""

    filename: str
    text: str
    workflow: str
    actions: frozenset
    subworkflows: frozenset


def version():
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def action_entry_points():
    """The ``mistral.actions`` entry points this distribution registers."""
    return [
        ep for ep in metadata.entry_points(group=ACTION_ENTRY_POINTS)
        if ep.dist is not None and ep.dist.name == DISTRIBUTION
    ]


def action_names():
    return {ep.name for ep in action_entry_points()}


def workflow_files():
    """Every workflow file of the pack, in file-name order."""
    root = resources.files(WORKFLOW_PACKAGE)
    files = sorted(
        (entry for entry in root.iterdir() if entry.name.endswith(".yaml")),
        key=lambda entry: entry.name,
    )
    return [parse_workflow_file(f.name, f.read_text(encoding="utf-8"))
            for f in files]


def parse_workflow_file(filename, text):
    """Read the workflow a file defines and the names it depends on."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PackError(f"{filename}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or str(document.get("version")) != "2.0":
        raise PackError(f"{filename}: not a Mistral v2 workflow file "
                        "(needs version: '2.0')")
    workflows = {k: v for k, v in document.items() if k != "version"}
    if len(workflows) != 1:
        raise PackError(f"{filename}: defines {len(workflows)} workflows; "
                        "the pack keeps exactly one workflow per file")
    (name, body), = workflows.items()
    if not isinstance(body, dict):
        raise PackError(f"{filename}: workflow {name} has no body")
    used_actions, used_workflows = set(), set()
    for task in (body.get("tasks") or {}).values():
        task = task or {}
        if "workflow" in task:
            target, names = task["workflow"], used_workflows
        else:
            target, names = task.get("action", "std.noop"), used_actions
        target = str(target).split()[0] if str(target).strip() else ""
        if target and not any(m in target for m in EXPRESSION_MARKERS):
            names.add(target)
    return WorkflowFile(filename=filename, text=text, workflow=name,
                        actions=frozenset(used_actions),
                        subworkflows=frozenset(used_workflows))
