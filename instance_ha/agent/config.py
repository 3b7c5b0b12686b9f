"""The agent's parameters (``OCF_RESKEY_<name>``), parsed and validated.

Inherently bad values (a typo, a URL that is not one, neither Mistral
URL nor cloud) are ConfigError with OCF_ERR_CONFIGURED; a credentials
file missing on this host is OCF_ERR_ARGS.  Standard library only.
"""

import dataclasses
import os
import re

OCF_ERR_ARGS = 2
OCF_ERR_CONFIGURED = 6

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
    )


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
