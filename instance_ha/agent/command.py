"""``instance-ha install-agent``: put the OCF agent and the alert agent
where Pacemaker finds them.

* the resource agent as ``OCF_ROOT/resource.d/PROVIDER/instance-ha``
  (``/usr/lib/ocf/resource.d/openstack/instance-ha``: its class, provider
  and type in the CIB are ``ocf:openstack:instance-ha``), with its
  ``PYTHON=`` line set to this environment's interpreter;
* the alert agent as ``/usr/libexec/instance-ha/instance-ha-alert`` (the
  ``path`` of the CIB's ``<alert>``).

Both mode 0755, written atomically, parents created 0755.  Run it again
after upgrading instance-ha.  Only click at module level.
"""

import os
import re
import subprocess
import sys

import click

DEFAULT_OCF_ROOT = "/usr/lib/ocf"
DEFAULT_PROVIDER = "openstack"
DEFAULT_ALERT_PATH = "/usr/libexec/instance-ha/instance-ha-alert"
AGENT = "instance-ha"
ALERT = "instance-ha-alert"
_PYTHON_LINE = re.compile(r'^PYTHON=.*$', re.MULTILINE)


def packaged(name):
    from importlib import resources

    return resources.files("instance_ha.resource_agents").joinpath(
        name).read_text(encoding="utf-8")


def agent_text(python):
    text = packaged(AGENT)
    if "'" in python:
        raise click.BadParameter(f"unusable interpreter path {python!r}")
    text, count = _PYTHON_LINE.subn(f"PYTHON='{python}'", text, count=1)
    if count != 1:
        raise click.ClickException("the packaged agent has no PYTHON= line")
    return text


def _makedirs(directory):
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        os.mkdir(path, 0o755)
        os.chmod(path, 0o755)


def write(path, text):
    _makedirs(os.path.dirname(path))
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


def check_python(python):
    """The interpreter can import the agent's logic, or a ClickException."""
    try:
        proc = subprocess.run(
            [python, "-c", "import instance_ha.agent.ocf"],
            capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise click.ClickException(f"cannot run {python}: {exc.strerror}") \
            from exc
    if proc.returncode:
        raise click.ClickException(
            f"{python} cannot import instance_ha.agent.ocf: "
            f"{proc.stderr.strip().splitlines()[-1:]}")


@click.command("install-agent")
@click.option("--ocf-root", default=DEFAULT_OCF_ROOT, show_default=True,
              type=click.Path(file_okay=False),
              help="OCF root; the agent goes to OCF_ROOT/resource.d/"
                   "PROVIDER/instance-ha.")
@click.option("--provider", default=DEFAULT_PROVIDER, show_default=True,
              help="OCF provider (the 'openstack' of "
                   "ocf:openstack:instance-ha).")
@click.option("--alert-path", default=DEFAULT_ALERT_PATH, show_default=True,
              type=click.Path(dir_okay=False),
              help="Where the alert agent goes (the path of the CIB's "
                   "<alert>).")
@click.option("--python", "python", default=sys.executable,
              show_default="this interpreter",
              type=click.Path(dir_okay=False),
              help="Interpreter the agent runs its actions with; it must "
                   "import instance_ha.")
@click.option("--destdir", default="", type=click.Path(file_okay=False),
              help="Prefix every path with this staging directory (for "
                   "packaging); the interpreter is not checked then.")
def install_agent(ocf_root, provider, alert_path, python, destdir):
    """Install the OCF resource agent ocf:PROVIDER:instance-ha and the
    Pacemaker alert agent.

    Run as root on every cluster node (controllers) after installing or
    upgrading instance-ha; the configuration to give Pacemaker is in
    README.rst, "Pacemaker configuration".
    """
    if not re.match(r"^[A-Za-z0-9_.-]+$", provider):
        raise click.BadParameter(f"bad provider name {provider!r}")
    python = os.path.abspath(python)
    if not destdir:
        check_python(python)
    agent_path = os.path.join(ocf_root, "resource.d", provider, AGENT)
    for path, text in ((agent_path, agent_text(python)),
                       (alert_path, packaged(ALERT))):
        target = os.path.join(destdir, path.lstrip("/")) if destdir \
            else path
        try:
            write(target, text)
        except OSError as exc:
            raise click.ClickException(
                f"cannot write {target}: {exc.strerror}") from exc
        click.echo(f"installed {target}")
    click.echo(f"resource agent: ocf:{provider}:{AGENT} (actions run with "
               f"{python})")
    click.echo(f"alert agent: {alert_path}")
