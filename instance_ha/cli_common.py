"""Options and error handling shared by the commands that talk to Mistral,
and the check of the commands that need the simulated cloud."""

import contextlib
import importlib

import click

from instance_ha import mistral_client


def mistral_options(command):
    """Where Mistral is: a plain URL, or Keystone from clouds.yaml / OS_*."""
    command = click.option(
        "--clouds-yaml", type=click.Path(dir_okay=False),
        help="clouds.yaml file to read instead of the standard locations.",
    )(command)
    command = click.option(
        "--os-cloud", envvar="OS_CLOUD", metavar="NAME",
        help="Cloud in clouds.yaml whose Keystone finds Mistral "
             "[env: OS_CLOUD; without it, OS_* variables].",
    )(command)
    command = click.option(
        "--mistral-url", envvar="INSTANCE_HA_MISTRAL_URL", metavar="URL",
        help="Mistral API URL, e.g. http://127.0.0.1:8989/v2.  Alone it "
             "means no authentication (the embedded server); with "
             "--os-cloud it overrides the catalog's endpoint.",
    )(command)
    return command


def connect(mistral_url, os_cloud, clouds_yaml):
    try:
        return mistral_client.connect(mistral_url=mistral_url, cloud=os_cloud,
                                      clouds_yaml=clouds_yaml)
    except mistral_client.MistralError as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.contextmanager
def mistral_errors():
    """Mistral unreachable or refusing: one line, exit 1, no traceback."""
    try:
        yield
    except mistral_client.TRANSPORT_ERRORS as exc:
        raise click.ClickException(
            f"Mistral: {mistral_client.describe(exc)}") from exc


SIMCLOUD_MISSING = (
    "the simulated cloud is not installed here: pip install ./simcloud "
    "from instance-ha's source tree (instance-ha-simcloud, for the demo "
    "and the tests; production needs only 'instance-ha')")


def simcloud_command():
    """``instance-ha simcloud``'s click command, or None when the
    instance-ha-simcloud distribution is not installed (its command module
    imports click only)."""
    try:
        module = importlib.import_module("instance_ha.simcloud.command")
    except ModuleNotFoundError as exc:
        if exc.name in ("instance_ha_simcloud",
                        "instance_ha.simcloud.command"):
            return None
        raise
    return module.simcloud


def require_simcloud():
    """One line, exit 1, unless instance-ha-simcloud is installed."""
    if simcloud_command() is None:
        raise click.ClickException(SIMCLOUD_MISSING)
