"""Compute API microversions: parsing the request headers as Nova does
(microversion_parse with the legacy X-OpenStack-Nova-API-Version header)
and echoing the chosen version in the response."""

import re

from instance_ha.simcloud.errors import NovaError

MIN_VERSION = (2, 1)
# Measured on real Nova 34.0.0 (nova-behaviour.md).
MAX_VERSION = (2, 104)

HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


def to_string(version):
    return f"{version[0]}.{version[1]}"


def parse(text):
    match = _VERSION_RE.match(text)
    if not match:
        raise NovaError(
            400, f"API Version String {text} is of invalid format. Must be "
                 "of format MajorNum.MinorNum.")
    return int(match.group(1)), int(match.group(2))


def _requested(headers):
    """The version string asked for, or None (microversion_parse: the
    service-type header wins over the legacy one)."""
    for value in headers.get_all(HEADER) or ():
        for item in value.split(","):
            parts = item.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "compute":
                return parts[1].strip()
    legacy = headers.get(LEGACY_HEADER)
    return legacy.strip() if legacy is not None else None


def negotiate(headers):
    """The (major, minor) a request runs at; NovaError if unacceptable."""
    text = _requested(headers)
    if text is None:
        return MIN_VERSION
    if text.lower() == "latest":
        return MAX_VERSION
    version = parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise NovaError(
            406, f"Version {to_string(version)} is not supported by the "
                 f"API. Minimum is {to_string(MIN_VERSION)} and maximum is "
                 f"{to_string(MAX_VERSION)}.")
    return version


def response_headers(version):
    text = to_string(version)
    return [(HEADER, "compute " + text), (LEGACY_HEADER, text),
            ("Vary", HEADER), ("Vary", LEGACY_HEADER)]
