"""Options and error handling shared by the commands that talk to Mistral."""

import contextlib

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
