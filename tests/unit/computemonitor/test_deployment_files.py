"""The files an operator installs on a compute: the systemd units start
the commands with options those commands accept, and the example process
table is one the process monitor loads."""

import configparser
import pathlib
import shlex
import shutil

import pytest

from instance_ha import cli
from instance_ha.computemonitor import processes

DIRECTORY = pathlib.Path(__file__).parents[3] / "computemonitor"
UNITS = sorted((DIRECTORY / "systemd").glob("*.service"))


def test_both_monitors_have_a_unit():
    assert [u.name for u in UNITS] == ["instance-ha-instancemonitor.service",
                                       "instance-ha-processmonitor.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_a_unit_starts_its_command_with_options_it_accepts(unit):
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(unit)
    argv = shlex.split(parser["Service"]["ExecStart"])
    assert pathlib.Path(argv[0]).name == "instance-ha"
    command = cli.main.commands[argv[1]]
    assert unit.name == f"instance-ha-{argv[1]}.service"
    context = command.make_context(argv[1], argv[2:])
    assert context.params["state_file"].startswith("/var/lib/instance-ha/")
    assert parser["Service"]["Restart"] == "always"
    assert "password" not in unit.read_text().lower()


@pytest.mark.skipif(shutil.which("systemctl") is None,
                    reason="the example's restart commands use systemctl")
def test_the_example_process_table_loads():
    config = processes.load(str(DIRECTORY / "processmonitor.yaml"))
    assert [p.name for p in config.processes] == ["nova-compute",
                                                  "libvirtd"]
    assert all(p.restart[:2] == ("systemctl", "restart")
               for p in config.processes)
