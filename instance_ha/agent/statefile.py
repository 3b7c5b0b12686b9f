"""The agent's local state: one JSON file under HA_RSCTMP.

Its existence means "started" (HA_RSCTMP is emptied at boot, as a
resource's state must be).  Its content is what the monitor remembers
between two runs: hostmonitor's Memory and Debounce, the last decision
logged per node, the failures being watched (with the pass that last
checked each: one the budget left out comes first next time), the
returns of recovered hosts seen online again (agent.hostreturn), and the
last request_timeout warning.  None of it is needed for safety (the CIB
record and the deterministic execution ids are the durable record);
losing it costs at most a restart of the watchdog's clocks.
Written atomically (temporary file + rename).
"""

import json
import os

DEFAULT_DIR = "/run/resource-agents"
VERSION = 1


def path(environ=None):
    """Same path as the shell front of resource_agents/instance-ha."""
    environ = os.environ if environ is None else environ
    directory = environ.get("HA_RSCTMP") or DEFAULT_DIR
    instance = environ.get("OCF_RESOURCE_INSTANCE") or "default"
    return os.path.join(directory, f"instance-ha-{instance}.state")


def exists(file_path):
    return os.path.isfile(file_path)


def empty():
    return {"version": VERSION, "memory": {}, "debounce": {}, "logged": {},
            "quorum": True, "watch": {}, "returns": {}, "passes": 0,
            "timeout_warning": None}


def load(file_path):
    """The state, or None when the file does not exist (stopped).  An
    unreadable content is an empty state: the file still says started."""
    try:
        with open(file_path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        data = {}
    state = empty()
    state.update({k: v for k, v in data.items() if k in state})
    return state


def save(file_path, state):
    directory = os.path.dirname(file_path)
    os.makedirs(directory, exist_ok=True)
    tmp = f"{file_path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, file_path)


def remove(file_path):
    try:
        os.unlink(file_path)
    except FileNotFoundError:
        pass
