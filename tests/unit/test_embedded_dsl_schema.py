"""embedded.check_each_dsl_schema_once: the embedded server's validation of
workflow definitions gives Mistral's own verdicts and messages, for the
pack's workflows and for broken ones."""

import pytest
from mistral.lang import base as lang_base
from mistral.lang import parser

from instance_ha import embedded
from instance_ha import pack

BROKEN_TASK = """\
---
version: '2.0'
wf:
  tasks:
    one:
      action: std.noop
      {field}
"""
BROKEN = [
    BROKEN_TASK.format(field="no-such-keyword: 1"),
    BROKEN_TASK.format(field="retry: {count: many, delay: 1}"),
    BROKEN_TASK.format(field="workflow: other"),
    BROKEN_TASK.format(field="publish: [1, 2]"),
    BROKEN_TASK.format(field="on-success: {a: 1}"),
    "---\nversion: '2.0'\nwf:\n  type: sideways\n  tasks:\n"
    "    one:\n      action: std.noop\n",
    "---\nversion: '2.0'\nwf:\n  input: 3\n  tasks:\n"
    "    one:\n      action: std.noop\n",
    "---\nversion: '2.0'\nwf:\n  tasks: {}\n",
]


def verdict(text):
    try:
        specs = parser.get_workflow_list_spec_from_yaml(text)
    except Exception as exc:  # the verdict is the exception
        return type(exc).__name__, str(exc)
    return "valid", sorted(s.get_name() for s in specs.get_items())


def definitions():
    return [f.text for f in pack.workflow_files()] + BROKEN


@pytest.fixture
def mistrals_validation(monkeypatch):
    """Mistral's own validate_schema, put back after the test."""
    monkeypatch.setattr(lang_base.BaseSpec, "validate_schema",
                        lang_base.BaseSpec.validate_schema)


def test_the_same_verdicts_and_messages_as_mistral(mistrals_validation):
    texts = definitions()
    expected = [verdict(text) for text in texts]
    assert {v[0] for v in expected[:-len(BROKEN)]} == {"valid"}
    broken = [v for v in expected[-len(BROKEN):]]
    assert "valid" not in {v[0] for v in broken}, broken
    assert sum(v[0] == "InvalidModelException" and
               v[1].startswith("Invalid DSL: ") for v in broken) == 7
    embedded.check_each_dsl_schema_once()
    assert lang_base.BaseSpec.validate_schema.checks_once
    # Twice: the second time from the kept validators.
    assert [verdict(text) for text in texts] == expected
    assert [verdict(text) for text in texts] == expected


def test_applied_once(mistrals_validation):
    embedded.check_each_dsl_schema_once()
    patched = lang_base.BaseSpec.validate_schema
    embedded.check_each_dsl_schema_once()
    assert lang_base.BaseSpec.validate_schema is patched
