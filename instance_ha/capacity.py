"""Capacity, without any cloud: the placement resources a VM needs on a
new host, the greedy estimate of where a failed host's VMs go, and the
per-aggregate limit of failed hosts (doc/capacity.rst).

resources_from_flavor follows Nova 34's scheduler
(nova.scheduler.utils.ResourceRequest.from_request_spec, as
resources_from_flavor calls it): the flavor's ``resources[$S]:$RC``
extra specs first (summed over their groups; an amount that is not a
non-negative integer is ignored, as Nova ignores it), ``hw:cpu_policy``
``dedicated`` asks for PCPU instead of VCPU (one more with
``hw:emulator_threads_policy`` ``isolate``); then VCPU = vcpus,
MEMORY_MB = ram and DISK_GB = ephemeral + swap (MB, rounded up to GB) +
root disk (none for a server booted from volume), each only where the
extra specs did not name that class; amounts of 0 are dropped.  Not
counted: image properties, ``hw:cpu_policy`` ``mixed`` (counted as
VCPU), PCI, vPMEM, vTPM and port resources.

fit follows placement's capacity check
(placement.objects.allocation._check_capacity_exceeded): an amount fits
a provider whose inventory of the class has min_unit <= amount <=
max_unit, amount a multiple of step_size, and used + amount <=
(total - reserved) * allocation_ratio.
"""

import math
import re

VCPU = "VCPU"
PCPU = "PCPU"
MEMORY_MB = "MEMORY_MB"
DISK_GB = "DISK_GB"
# nova.scheduler.utils.ResourceRequest.XS_KEYPAT
_RESOURCE_SPEC = re.compile(r"^resources([a-zA-Z0-9_-]{1,64})?:(.*)$")
_CLASS_NAME = re.compile(r"^[A-Z0-9_]+$")
MAX_FAILURES_KEY = "instance_ha:max_failures"


def _amount(value):
    """A non-negative integer amount, or None (Nova: 'Resource amounts
    must be nonnegative integers', the spec is skipped)."""
    if isinstance(value, bool):
        return None
    try:
        amount = int(str(value).strip())
    except ValueError:
        return None
    return amount if amount >= 0 else None


def _int(value):
    """A flavor field as an integer; "" (Nova's swap 0 below 2.75) and
    None are 0."""
    if value in (None, ""):
        return 0
    return int(value)


def resources_from_flavor(flavor, boot_from_volume):
    """{resource class: amount} a server of ``flavor`` (a dict with
    vcpus, ram, disk, ephemeral, swap, extra_specs) allocates on its host;
    ``boot_from_volume``: its root disk is a volume (no DISK_GB for it)."""
    specs = flavor.get("extra_specs") or {}
    merged = {}
    for key, value in specs.items():
        match = _RESOURCE_SPEC.match(str(key))
        if not match:
            continue
        name, amount = match.group(2), _amount(value)
        if amount is None or not _CLASS_NAME.match(name):
            continue
        merged[name] = merged.get(name, 0) + amount
    vcpus = _int(flavor.get("vcpus"))
    if specs.get("hw:cpu_policy") == "dedicated":
        pcpus = vcpus + (
            1 if specs.get("hw:emulator_threads_policy") == "isolate" else 0)
        merged[PCPU] = merged.get(PCPU, 0) + pcpus
    if VCPU not in merged and PCPU not in merged:
        merged[VCPU] = vcpus
    if MEMORY_MB not in merged:
        merged[MEMORY_MB] = _int(flavor.get("ram"))
    if DISK_GB not in merged:
        disk = _int(flavor.get("ephemeral"))
        swap = _int(flavor.get("swap"))
        disk += int(math.ceil(swap / 1024.0)) if swap else 0
        if not boot_from_volume:
            disk += _int(flavor.get("disk"))
        merged[DISK_GB] = disk
    return {name: amount for name, amount in sorted(merged.items())
            if amount}


# -- the greedy estimate ----------------------------------------------------

def capacity(inventory):
    """(total - reserved) * allocation_ratio of one inventory record."""
    return ((inventory.get("total", 0) - inventory.get("reserved", 0))
            * inventory.get("allocation_ratio", 1.0))


def _number(value):
    """An integral float as an int (JSON reads better)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def free_of(inventories, usages):
    """{resource class: free amount} of a provider."""
    return {name: _number(capacity(inventory) - (usages.get(name) or 0))
            for name, inventory in sorted(inventories.items())}


def room_for(resources, inventories, free):
    """None when ``resources`` fit a provider with these inventories and
    this much free; else why not (one phrase)."""
    for name, amount in sorted(resources.items()):
        inventory = inventories.get(name)
        if inventory is None:
            return f"no {name} inventory"
        if (amount < inventory.get("min_unit", 1)
                or amount > inventory.get("max_unit", amount)
                or amount % (inventory.get("step_size") or 1)):
            return (f"{name} {amount} outside min_unit "
                    f"{inventory.get('min_unit', 1)}, max_unit "
                    f"{inventory.get('max_unit')}, step_size "
                    f"{inventory.get('step_size', 1)}")
        if amount > free.get(name, 0):
            return f"{name} {amount} > free {free.get(name, 0)}"
    return None


def describe(resources):
    return ", ".join(f"{name} {amount}"
                     for name, amount in sorted(resources.items())) \
        or "nothing"


def greedy_fit(servers, hosts):
    """Place ``servers`` ({id, name, priority, resources}, in evacuation
    order) on ``hosts`` ({name: {"inventories": {...}, "usages": {...}}}):
    each on the host with the most free MEMORY_MB that has room for all
    its resources (ties: the earlier host), that room then taken.
    Returns (fit ids, no_room records, {host: free before}, {host: free
    after}).  A server without resources takes nothing and fits."""
    before = {name: free_of(h["inventories"], h["usages"])
              for name, h in hosts.items()}
    left = {name: dict(free) for name, free in before.items()}
    fit, no_room = [], []
    for server in servers:
        resources = server.get("resources") or {}
        best, reasons = None, {}
        for name, host in hosts.items():
            why = room_for(resources, host["inventories"], left[name])
            if why is not None:
                reasons[name] = why
                continue
            if best is None or left[name].get(MEMORY_MB, 0) > \
                    left[best].get(MEMORY_MB, 0):
                best = name
        if best is None:
            no_room.append({"id": server["id"], "name": server.get("name"),
                            "priority": server.get("priority", 0),
                            "reason": _no_room_reason(resources, reasons)})
            continue
        for name, amount in resources.items():
            left[best][name] = _number(left[best][name] - amount)
        fit.append(server["id"])
    return fit, no_room, before, left


def _no_room_reason(resources, reasons):
    if not reasons:
        return f"needs {describe(resources)}: no candidate host"
    return (f"needs {describe(resources)}: no candidate host has room ("
            + "; ".join(f"{host}: {why}" for host, why in reasons.items())
            + ")")


# -- the failure limit ------------------------------------------------------

def max_failures(metadata):
    """(limit, problem): the aggregate's instance_ha:max_failures as an
    integer >= 1, or (None, why it is malformed); (None, None) without
    the key."""
    if MAX_FAILURES_KEY not in (metadata or {}):
        return None, None
    value = metadata[MAX_FAILURES_KEY]
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        return None, (f"{MAX_FAILURES_KEY}={value!r} is not an integer "
                      ">= 1")
    return int(text), None


def failure_limit(host, aggregates, failed_hosts):
    """The limit rule.  ``aggregates``: [{name, hosts, metadata}] (those
    holding ``host`` are looked at); ``failed_hosts``: the hosts whose
    nova-compute is down or forced down.  Returns (refused: None or one
    line, [{name, max_failures, failed}] of the host's aggregates with
    the key)."""
    failed_hosts = set(failed_hosts) | {host}
    checked, refusals = [], []
    for aggregate in aggregates:
        if host not in (aggregate.get("hosts") or ()):
            continue
        metadata = aggregate.get("metadata") or {}
        limit, problem = max_failures(metadata)
        if limit is None and problem is None:
            continue
        failed = sorted(h for h in aggregate.get("hosts") or ()
                        if h in failed_hosts)
        checked.append({"name": aggregate.get("name"),
                        "max_failures": limit if problem is None
                        else metadata[MAX_FAILURES_KEY],
                        "failed": failed})
        if problem is not None:
            refusals.append(
                f"aggregate {aggregate.get('name')}: {problem}; not "
                "guessing a limit")
        elif len(failed) > limit:
            refusals.append(
                f"aggregate {aggregate.get('name')} allows "
                f"{MAX_FAILURES_KEY}={limit} failed hosts and has "
                f"{len(failed)}: {', '.join(failed)}")
    return ("; ".join(refusals) or None), checked
