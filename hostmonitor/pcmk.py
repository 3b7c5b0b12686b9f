"""Running Pacemaker's command-line tools, and reading their times."""

import datetime
import re
import subprocess

from lxml import etree

DEFAULT_TIMEOUT = 15.0


class ClusterReadError(Exception):
    """Pacemaker's state could not be read.

    Callers must treat it as "unknown": never as "all hosts are fine" and
    never as "all hosts are down".
    """


def run(argv, timeout=DEFAULT_TIMEOUT, env=None, ok_codes=(0,)):
    """Run a Pacemaker tool; its CompletedProcess, or ClusterReadError."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=timeout, env=env, check=False)
    except FileNotFoundError as exc:
        raise ClusterReadError(f"{argv[0]}: not found (is Pacemaker's "
                               "command-line package installed?)") from exc
    except PermissionError as exc:
        raise ClusterReadError(f"{argv[0]}: permission denied") from exc
    except subprocess.TimeoutExpired as exc:
        raise ClusterReadError(f"{' '.join(argv)}: no answer within "
                               f"{timeout:g} s") from exc
    if result.returncode not in ok_codes:
        raise ClusterReadError(f"{' '.join(argv)}: exit status "
                               f"{result.returncode}: {_why(result)}")
    return result


def _why(result):
    """The tool's own explanation, in one line."""
    message = _result_message(result.stdout)
    if message:
        return message
    lines = [line.strip() for line in result.stderr.splitlines()
             if line.strip()]
    return lines[-1] if lines else "no message"


def _result_message(text):
    """The status message and errors of a ``<pacemaker-result>``."""
    try:
        root = etree.fromstring(text.encode())
    except etree.XMLSyntaxError:
        return None
    status = root.find("status")
    if status is None:
        return None
    parts = [status.get("message", "")]
    parts += [e.text.strip() for e in status.iter("error") if e.text]
    return ": ".join(p for p in parts if p)


def parse_xml(text, what):
    """An lxml root element, or ClusterReadError naming ``what``."""
    if isinstance(text, str):
        text = text.encode()
    if not text.strip():
        raise ClusterReadError(f"{what}: empty output")
    try:
        return etree.fromstring(
            text, parser=etree.XMLParser(resolve_entities=False,
                                         no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ClusterReadError(f"{what}: not XML: {exc}") from exc


def check_result_status(root, what):
    """Refuse a ``<pacemaker-result>`` whose status says it failed."""
    status = root.find("status")
    if root.tag == "pacemaker-result" and status is not None:
        code = status.get("code", "0")
        if code != "0":
            raise ClusterReadError(
                f"{what}: status {code}: "
                f"{_result_message(etree.tostring(root).decode())}")


def flag(element, name, default=False):
    """A Pacemaker boolean attribute ("true"/"false")."""
    value = element.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes", "on")


_ISO = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d{1,9})?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text):
    """A timezone-aware datetime from any time format crm_mon and
    stonith_admin print, or None when ``text`` is empty.

    * ``2026-11-21 06:06:09Z``, ``2026-11-21 06:06:09.123456 +01:00``
      (failures, fence events; ISO 8601 with a zone);
    * ``Sat Nov 21 06:06:10 2026`` (operation history; ctime, local time);
    * an integer: seconds since the epoch (the CIB).
    """
    text = (text or "").strip()
    if not text:
        return None
    if text.isdigit():
        return datetime.datetime.fromtimestamp(int(text),
                                               tz=datetime.timezone.utc)
    match = _ISO.match(text)
    if match:
        day, clock, fraction, zone = match.groups()
        micro = ((fraction or ".")[1:] + "000000")[:6]
        stamp = datetime.datetime.fromisoformat(f"{day}T{clock}.{micro}")
        if not zone:
            return stamp.astimezone()
        if zone == "Z":
            return stamp.replace(tzinfo=datetime.timezone.utc)
        zone = zone.replace(":", "")
        offset = datetime.timedelta(hours=int(zone[1:3]),
                                    minutes=int(zone[3:5]))
        if zone[0] == "-":
            offset = -offset
        return stamp.replace(tzinfo=datetime.timezone(offset))
    try:
        stamp = datetime.datetime.strptime(text, "%a %b %d %H:%M:%S %Y")
    except ValueError as exc:
        raise ClusterReadError(f"unknown time format: {text!r}") from exc
    return stamp.astimezone()
