"""What each workflow of the pack accepts, as a table the check_input
action reads: every input's type, range and allowed values, checked
before anything touches Nova.  ``problems(workflow, given)`` is the list
of one-line reasons, each naming its input; empty when all is well.
Mistral itself rejects input names a workflow does not declare."""

RECOVERY_METHODS = ("auto", "reserved_host", "auto_priority", "rh_priority")
POLICY_KEYS = ("evacuate", "metadata_key", "flavor_extra_spec",
               "image_property", "error_servers")
MAX_CONCURRENCY = 1000
MAX_SECONDS = 86400
# An override's reason goes into Nova's disabled reason (255 characters
# in all) after the recovery's own words.
MAX_OVERRIDE_REASON = 120
# host_return: how long to wait for one heartbeat of a forced-down
# nova-compute (Nova's report_interval: 10 s by default).
MAX_HEARTBEAT_WAIT = 600


def _text(value):
    return isinstance(value, str) and bool(value.strip())


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text(value):
    if not _text(value):
        return "must be a non-empty string"
    return None


def optional_text(value):
    if value is not None and not _text(value):
        return "must be null or a non-empty string"
    return None


def true_false_or_null(value):
    if not (value is None or isinstance(value, bool)):
        return "must be true, false or null"
    return None


def true_or_false(value):
    if not isinstance(value, bool):
        return "must be true or false"
    return None


def one_of(*allowed):
    def check(value):
        if not isinstance(value, str) or value not in allowed:
            return "must be one of " + ", ".join(allowed)
        return None
    return check


def integer(low, high):
    def check(value):
        if not isinstance(value, int) or isinstance(value, bool) or \
                not low <= value <= high:
            return f"must be an integer from {low} to {high}"
        return None
    return check


def optional(check):
    def null_or(value):
        if value is None:
            return None
        problem = check(value)
        return problem and problem + " or null"
    return null_or


def seconds(value):
    if not _number(value) or not 0 < value <= MAX_SECONDS:
        return f"must be a number of seconds above 0, at most {MAX_SECONDS}"
    return None


def seconds_or_zero(value):
    if not _number(value) or not 0 <= value <= MAX_SECONDS:
        return f"must be a number of seconds from 0 to {MAX_SECONDS}"
    return None


def seconds_from(low, high):
    def check(value):
        if not _number(value) or not low <= value <= high:
            return f"must be a number of seconds from {low} to {high}"
        return None
    return check


def host_search(value):
    if not isinstance(value, dict) or set(value) != {"host"}:
        return ('must be {"host": "<the failed compute host>"} and nothing '
                'else (the workflow recovers a whole host)')
    if not _text(value["host"]):
        return "host must be a non-empty string"
    return None


def distinct_names(kind):
    def check(value):
        if not isinstance(value, list) or not all(_text(v) for v in value):
            return f"must be a list of {kind} names"
        if len(set(value)) != len(value):
            return f"names a {kind} twice"
        return None
    return check


host_names = distinct_names("host")
group_names = distinct_names("restart group")


def policy(value):
    if not isinstance(value, dict):
        return "must be a dict"
    unknown = sorted(set(value) - set(POLICY_KEYS))
    if unknown:
        return (f"has unknown keys {', '.join(unknown)} (known: "
                f"{', '.join(POLICY_KEYS)})")
    rules = {"evacuate": one_of("all", "tagged"), "metadata_key": text,
             "flavor_extra_spec": optional_text,
             "image_property": optional_text,
             "error_servers": one_of("skip", "evacuate")}
    for key, item in sorted(value.items()):
        problem = rules[key](item)
        if problem:
            return f"{key} {problem}"
    return None


def fencing(value):
    """{} or {"node": N}: the workflow asks Pacemaker (on the executor)
    whether node N (default: the Nova host) is fenced; {"override":
    "why"}: the operator vouches for it, and it says so everywhere."""
    if not isinstance(value, dict):
        return ('must be {} or {"node": "<Pacemaker node>"} (fencing '
                'checked with Pacemaker) or {"override": "<why the host '
                'is known to be off>"}')
    unknown = sorted(set(value) - {"node", "override"})
    if unknown:
        return (f"has unknown keys {', '.join(unknown)} (known: node, "
                "override)")
    if "node" in value and "override" in value:
        return "takes node or override, not both"
    if "node" in value and not _text(value["node"]):
        return "node must be a non-empty string"
    if "override" in value:
        reason = value["override"]
        if not _text(reason) or len(reason.strip()) < 10:
            return ("override must say why the host is known to be off "
                    "(at least 10 characters)")
        if len(reason) > MAX_OVERRIDE_REASON:
            return (f"override must be at most {MAX_OVERRIDE_REASON} "
                    "characters")
    return None


# workflow -> input -> check (None: fine, else what is wrong with it).
RULES = {
    "instance_ha.host_evacuate": {
        "search_opts": host_search,
        "fencing": fencing,
        "on_shared_storage": true_false_or_null,
        "recovery_method": one_of(*RECOVERY_METHODS),
        "reserved_hosts": host_names,
        "reserved_hosts_aggregate": optional_text,
        "policy": policy,
        "concurrency": integer(1, MAX_CONCURRENCY),
        "restart_groups": group_names,
        "check_capacity": true_or_false,
        "ignore_max_failures": true_or_false,
        "report_within": seconds_or_zero,
        "evacuation_timeout": seconds,
        "poll_interval": seconds,
    },
    "instance_ha.instance_restart": {
        "server": text,
        "host": optional_text,
        "max_restarts": integer(1, 1000),
        "window": seconds,
    },
    "instance_ha.process_down": {
        "host": text,
        "reason": optional_text,
    },
    "instance_ha.host_return": {
        "host": text,
        "node": optional_text,
        "leave_disabled": true_or_false,
        "heartbeat_wait": seconds_from(1, MAX_HEARTBEAT_WAIT),
    },
}


def problems(workflow, given):
    """One line per bad input of ``workflow``, in input order."""
    rules = RULES[workflow]
    found = []
    for name, check in rules.items():
        if name not in given:
            continue
        problem = check(given[name])
        if problem:
            found.append(f"{name} {problem}, not {_shown(given[name])}")
    unknown = sorted(set(given) - set(rules))
    if unknown:
        found.append(f"unknown inputs {', '.join(unknown)}")
    if workflow == "instance_ha.host_evacuate" and not found:
        found += _host_evacuate_together(given)
    return found


def _host_evacuate_together(given):
    found = []
    interval = given.get("poll_interval", 2)
    if interval > given.get("evacuation_timeout", 600):
        found.append("poll_interval must not exceed evacuation_timeout")
    return found


def _shown(value, limit=60):
    import json

    try:
        text_value = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text_value = repr(value)
    return text_value if len(text_value) <= limit else \
        text_value[:limit - 3] + "..."
