"""The agent's parameters (``OCF_RESKEY_<name>``), parsed and validated.

Inherently bad values (a typo, a URL that is not one, neither Mistral
URL nor cloud) are ConfigError with OCF_ERR_CONFIGURED; a credentials
file missing on this host is OCF_ERR_ARGS.  Standard library only.
"""

import dataclasses
import json
import os
import re

from instance_ha.agent.returncodes import OCF_ERR_ARGS
from instance_ha.agent.returncodes import OCF_ERR_CONFIGURED

DEFAULT_WORKFLOW = "instance_ha.host_evacuate"
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_WORKFLOW_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class ConfigError(Exception):
    def __init__(self, message, code=OCF_ERR_CONFIGURED):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    mistral_url: str = ""
    cloud: str = ""
    clouds_yaml: str = ""
    workflow: str = DEFAULT_WORKFLOW
    on_shared_storage: bool = True
    computes: tuple = ()
    controllers: tuple = ()
    threshold: int = 50
    evacuation_delay: int = 0
    debounce: int = 1
    infer_fencing: bool = False
    watchdog_timeout: int = 900
    max_attempts: int = 3
    request_timeout: int = 10
    # Pacemaker node name -> Nova host name: the map first, else the node
    # name with host_suffix appended.
    host_map: tuple = ()
    host_suffix: str = ""
    # More inputs of every run the agent starts (recovery_method,
    # reserved_hosts, policy, concurrency, restart_groups), as the
    # workflow takes them.
    recovery: tuple = ()
    # A recovered host online again: start instance_ha.host_return for
    # it (agent.hostreturn); false: only say so.
    return_hosts: bool = False

    def nova_host(self, node):
        """The Nova host name of Pacemaker node ``node``."""
        return dict(self.host_map).get(node, node + self.host_suffix)

    def workflow_input(self, node, inferred=False):
        """The input of a run for the failure of ``node``.  The workflow
        checks with Pacemaker that ``node`` is fenced; a fencing this
        agent only inferred (``infer_fencing``) cannot be checked so, and
        goes as an override that says so (Nova's disabled reason too)."""
        from instance_ha.hostmonitor import trigger

        wf_input = trigger.workflow_input(self.nova_host(node),
                                          self.on_shared_storage, node)
        if inferred:
            wf_input["fencing"] = {"override": (
                f"fencing of {node} inferred by the agent (seen lost, "
                "then clean; no fence history)")}
        wf_input.update({k: json.loads(v) for k, v in self.recovery})
        return wf_input

    def policy(self):
        from instance_ha.hostmonitor import decision

        return decision.Policy(computes=self.computes,
                               controllers=self.controllers,
                               threshold_percent=float(self.threshold),
                               debounce=self.debounce,
                               infer_fencing=self.infer_fencing)


def _patterns(text):
    return tuple(p for p in re.split(r"[,\s]+", text or "") if p)


def _boolean(name, text):
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={text!r} is not a boolean (true or false)")


def _integer(name, text, low, high=None):
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name}={value} is out of range ({bounds})")
    return value


def from_environ(environ=None):
    """AgentConfig from ``OCF_RESKEY_*``; raises ConfigError."""
    environ = os.environ if environ is None else environ

    def get(name, default=""):
        value = environ.get(f"OCF_RESKEY_{name}")
        return default if value is None or value == "" else value

    mistral_url = get("mistral_url").strip()
    cloud = get("cloud").strip()
    if not mistral_url and not cloud:
        raise ConfigError("set mistral_url (Mistral API URL) or cloud (a "
                          "clouds.yaml cloud whose Keystone finds Mistral)")
    if mistral_url and not re.match(r"^https?://[^/\s]+", mistral_url):
        raise ConfigError(f"mistral_url={mistral_url!r} is not an http(s) "
                          "URL")
    clouds_yaml = get("clouds_yaml").strip()
    if clouds_yaml and not os.path.isabs(clouds_yaml):
        raise ConfigError(f"clouds_yaml={clouds_yaml!r} is not an absolute "
                          "path")
    workflow = get("workflow", DEFAULT_WORKFLOW).strip()
    if not _WORKFLOW_RE.match(workflow):
        raise ConfigError(f"workflow={workflow!r} is not a workflow name")
    return AgentConfig(
        mistral_url=mistral_url, cloud=cloud, clouds_yaml=clouds_yaml,
        workflow=workflow,
        on_shared_storage=_boolean("on_shared_storage",
                                   get("on_shared_storage", "true")),
        computes=_patterns(get("computes")),
        controllers=_patterns(get("controllers")),
        threshold=_integer("threshold", get("threshold", "50"), 0, 100),
        evacuation_delay=_integer("evacuation_delay",
                                  get("evacuation_delay", "0"), 0, 86400),
        debounce=_integer("debounce", get("debounce", "1"), 1, 100),
        infer_fencing=_boolean("infer_fencing", get("infer_fencing",
                                                    "false")),
        watchdog_timeout=_integer("watchdog_timeout",
                                  get("watchdog_timeout", "900"), 10),
        max_attempts=_integer("max_attempts", get("max_attempts", "3"), 1,
                              100),
        request_timeout=_integer("request_timeout",
                                 get("request_timeout", "10"), 1, 300),
        host_map=_host_map(get("host_map")),
        host_suffix=_host_suffix(get("host_suffix")),
        recovery=_recovery(get, workflow),
        return_hosts=_boolean("return_hosts", get("return_hosts", "false")),
    )


def _host_map(text):
    pairs = []
    for item in _patterns(text):
        node, sep, host = item.partition("=")
        if not sep or not node or not host:
            raise ConfigError(f"host_map item {item!r} is not NODE=HOST")
        pairs.append((node, host))
    if len({node for node, _ in pairs}) != len(pairs):
        raise ConfigError("host_map names a node twice")
    return tuple(pairs)


def _host_suffix(text):
    text = text.strip()
    if text and not re.match(r"^[A-Za-z0-9.-]+$", text):
        raise ConfigError(f"host_suffix={text!r} is not a domain suffix "
                          "(e.g. .localdomain)")
    return text


# Agent parameter -> how its text becomes the workflow's input value.
RECOVERY_PARAMETERS = {
    "recovery_method": lambda text: text.strip(),
    "reserved_hosts": lambda text: list(_patterns(text)),
    "policy": json.loads,
    "concurrency": int,
    "restart_groups": lambda text: list(_patterns(text)),
}


def _recovery(get, workflow):
    """The recovery parameters given, checked as host_evacuate checks its
    input (instance_ha.workflow_inputs): a bad one fails validate-all, not
    the first real failure."""
    from instance_ha import workflow_inputs

    given = {}
    for name, parse in RECOVERY_PARAMETERS.items():
        text = get(name)
        if not text:
            continue
        try:
            given[name] = parse(text)
        except ValueError:
            raise ConfigError(f"{name}={text!r} cannot be read") from None
    if given and workflow == DEFAULT_WORKFLOW:
        found = workflow_inputs.problems(
            DEFAULT_WORKFLOW, dict(given, search_opts={"host": "node"}))
        if found:
            raise ConfigError("; ".join(found))
    return tuple((k, json.dumps(v, sort_keys=True))
                 for k, v in sorted(given.items()))


def check_local(config):
    """Checks of this host (OCF_ERR_ARGS): the credentials file is there
    and readable.  Returns warnings (a file others may read)."""
    warnings = []
    if not config.clouds_yaml:
        return warnings
    try:
        st = os.stat(config.clouds_yaml)
    except OSError as exc:
        raise ConfigError(f"clouds_yaml {config.clouds_yaml}: "
                          f"{exc.strerror}", OCF_ERR_ARGS) from None
    if not os.access(config.clouds_yaml, os.R_OK):
        raise ConfigError(f"clouds_yaml {config.clouds_yaml}: not readable",
                          OCF_ERR_ARGS)
    if st.st_mode & 0o077:
        warnings.append(f"clouds_yaml {config.clouds_yaml} has mode "
                        f"{st.st_mode & 0o777:04o}: it holds credentials, "
                        "make it 0600")
    return warnings


def check_workflow(config):
    """The workflow is one of the pack's and declares every input the
    agent gives a host's run (Mistral refuses a run whose input names one
    its workflow does not declare): found by validate-all, from the pack
    installed here, without asking Mistral."""
    from instance_ha import pack

    declared = {wf.workflow: _input_names(wf.text, wf.workflow)
                for wf in pack.workflow_files()}
    if config.workflow not in declared:
        raise ConfigError(f"workflow={config.workflow!r} is not a workflow "
                          "of the instance-ha pack (" +
                          ", ".join(sorted(declared)) + ")")
    missing = sorted(set(config.workflow_input("node"))
                     - declared[config.workflow])
    if missing:
        raise ConfigError(
            f"workflow={config.workflow} does not take the input the agent "
            f"gives a failed host's run ({', '.join(missing)}); the pack's "
            f"host workflow is {DEFAULT_WORKFLOW}")


def _input_names(text, workflow):
    import yaml

    body = yaml.safe_load(text)[workflow]
    return {item if isinstance(item, str) else next(iter(item))
            for item in body.get("input") or ()}


def check_request_timeout(config, monitor_timeout, source):
    """One request of ``request_timeout`` fits into a monitor pass (its
    budget: agent.budget.SHARE of ``monitor_timeout`` seconds, which
    ``source`` says where it comes from); else a ConfigError that says
    what to change."""
    import math

    from instance_ha.agent import budget

    work = budget.pass_seconds(monitor_timeout)
    if config.request_timeout <= work:
        return
    needed = math.ceil(round(config.request_timeout / budget.SHARE, 6))
    raise ConfigError(
        f"request_timeout={config.request_timeout:g} does not fit the "
        f"monitor timeout of {monitor_timeout:g} s ({source}): a monitor "
        f"pass works for at most {work:g} s; lower request_timeout or make "
        f"the monitor timeout at least {needed} s")
