"""``instance-ha server`` and ``demo`` where the ``server`` extra (Mistral)
is not installed: one line that says what to install, no traceback."""

import pytest
from click.testing import CliRunner

from instance_ha import cli
from instance_ha import embedded


@pytest.mark.parametrize("args", [["server"], ["demo"]])
def test_without_mistral_the_command_says_what_to_install(monkeypatch,
                                                          args):
    monkeypatch.setattr(embedded, "mistral_installed", lambda: False)
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 1
    assert result.output == ("Error: " + embedded.SERVER_EXTRA_MISSING
                             + "\n")


def test_with_mistral_installed_nothing_is_refused():
    embedded.require_mistral()
