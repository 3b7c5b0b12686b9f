"""The pack's own files: every workflow parses, validates and resolves."""

import pytest

from instance_ha import pack

WORKFLOW = """\
---
version: '2.0'
{name}:
  tasks:
{tasks}
"""


def wf_text(tasks, name="x.wf"):
    return WORKFLOW.format(name=name, tasks=tasks)


def test_dependencies_are_read_from_every_task_form():
    text = wf_text("""\
    inline:
      action: x.act1 a=1 b='two'
      on-success: sub
    dict_input:
      action: x.act2
      input: {a: 1}
    sub:
      workflow: x.child
    dynamic:
      action: <% $.which %>
    default_noop:
      on-complete: inline
""")
    parsed = pack.parse_workflow_file("f.yaml", text)
    assert parsed.workflow == "x.wf"
    assert parsed.actions == {"x.act1", "x.act2", "std.noop"}
    assert parsed.subworkflows == {"x.child"}


@pytest.mark.parametrize("text, message", [
    ("version: '2.0'\nx: [unclosed\n", "not valid YAML"),
    ("x.wf:\n  tasks: {}\n", "needs version: '2.0'"),
    ("version: '1.0'\nx.wf:\n  tasks: {}\n", "needs version: '2.0'"),
    ("version: '2.0'\na: {tasks: {}}\nb: {tasks: {}}\n",
     "defines 2 workflows"),
    ("version: '2.0'\n", "defines 0 workflows"),
    ("version: '2.0'\nx.wf: oops\n", "has no body"),
])
def test_malformed_files_are_refused_with_the_file_name(text, message):
    with pytest.raises(pack.PackError) as err:
        pack.parse_workflow_file("bad.yaml", text)
    assert "bad.yaml" in str(err.value)
    assert message in str(err.value)


def test_the_installed_pack_has_workflows_and_actions():
    files = pack.workflow_files()
    assert files, "no workflow YAML shipped in instance_ha.workflows"
    assert "instance_ha.pack_info" in pack.action_names()
    names = [f.workflow for f in files]
    assert len(names) == len(set(names)), "a workflow name is defined twice"
    assert all(name.startswith("instance_ha.") for name in names)


def test_every_action_entry_point_loads_a_mistral_lib_action():
    from mistral_lib import actions

    for ep in pack.action_entry_points():
        assert ep.name.startswith("instance_ha."), ep.name
        assert issubclass(ep.load(), actions.Action), ep.name


@pytest.mark.parametrize("wf", pack.workflow_files(),
                         ids=lambda wf: wf.filename)
def test_workflow_validates_offline_with_mistral_parser(wf):
    from mistral.lang import parser

    specs = parser.get_workflow_list_spec_from_yaml(wf.text, validate=True)
    assert [spec.get_name() for spec in specs] == [wf.workflow]


@pytest.mark.parametrize("wf", pack.workflow_files(),
                         ids=lambda wf: wf.filename)
def test_every_action_and_subworkflow_resolves(wf):
    # Mistral's parser does not check names; a typo fails only at run time.
    from importlib import metadata

    known = {ep.name for ep in metadata.entry_points(group="mistral.actions")}
    assert wf.actions <= known, sorted(wf.actions - known)
    workflows = {f.workflow for f in pack.workflow_files()}
    assert wf.subworkflows <= workflows
