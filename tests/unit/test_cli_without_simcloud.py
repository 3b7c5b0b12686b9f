"""``instance-ha simcloud`` and ``demo`` where instance-ha-simcloud (the
simulated cloud, not part of the production install) is not installed:
one line that says what to install, exit 1, no traceback; the other
commands are not affected."""

import subprocess
import sys

import pytest

from instance_ha import cli_common

# The CLI in a fresh interpreter that cannot find instance_ha_simcloud
# (importlib.util.find_spec answers None for a None in sys.modules).
WITHOUT_SIMCLOUD = """\
import sys
sys.modules["instance_ha_simcloud"] = None
from instance_ha import cli
cli.main(sys.argv[1:], prog_name="instance-ha")
"""


def run_cli(*args):
    return subprocess.run([sys.executable, "-c", WITHOUT_SIMCLOUD, *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args", [["simcloud"], ["simcloud", "--help"],
                                  ["simcloud", "--hosts", "2"], ["demo"]])
def test_without_simcloud_the_command_says_what_to_install(args):
    result = run_cli(*args)
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr == "Error: " + cli_common.SIMCLOUD_MISSING + "\n"


def test_without_simcloud_the_other_commands_work():
    result = run_cli("--help")
    assert result.returncode == 0, result
    assert "simcloud" in result.stdout
    assert "demo" in result.stdout
    result = run_cli("hosts", "--help")
    assert result.returncode == 0, result


def test_without_simcloud_its_import_says_what_to_install():
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n"
         "sys.modules['instance_ha_simcloud'] = None\n"
         "import instance_ha.simcloud"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert ("ModuleNotFoundError: No module named 'instance_ha_simcloud': "
            "the simulated cloud is the instance-ha-simcloud distribution"
            in result.stderr)


def test_with_simcloud_installed_the_real_command_is_there():
    from instance_ha.simcloud import command

    assert cli_common.simcloud_command() is command.simcloud
    cli_common.require_simcloud()
