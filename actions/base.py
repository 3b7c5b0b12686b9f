"""What every Nova action shares: the client from the execution's context,
input checks before any call, and expected failures returned as
``Result(error={"server", "host", "reason", "code"})`` instead of raised
(Mistral then hands the workflow the dict, not a string)."""

import logging

from mistral_lib import actions

from instance_ha import cloud_session
from instance_ha import nova_client

LOG = logging.getLogger(__name__)


class NovaAction(actions.Action):
    """Subclasses set plain attributes in __init__ (it is not re-run on a
    remote executor), and implement ``act(nova)``; ``check()`` may raise
    NovaError for bad input before anything is sent."""

    def _subject(self):
        server = getattr(self, "server", None)
        host = getattr(self, "host", None) or getattr(self, "source_host",
                                                       None)
        return (server if isinstance(server, str) else None,
                host if isinstance(host, str) else None)

    def check(self):
        """Raise NovaError on bad input."""

    def run(self, context):
        server, host = self._subject()
        try:
            self.check()
            nova = nova_client.Nova.from_context(context)
            return self.act(nova)
        except nova_client.NovaError as exc:
            error = exc.as_dict(server, host)
        except cloud_session.CredentialsError as exc:
            error = {"server": server, "host": host, "reason": str(exc),
                     "code": None}
        LOG.warning("%s failed: %s", type(self).__name__, error["reason"])
        return actions.Result(error=error)

    def act(self, nova):
        raise NotImplementedError


def require_text(name, value):
    if not isinstance(value, str) or not value.strip():
        raise nova_client.NovaError(
            f"bad input: {name} must be a non-empty string, not {value!r}")
    return value


def require_number(name, value, minimum=0):
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or value < minimum):
        raise nova_client.NovaError(
            f"bad input: {name} must be a number >= {minimum}, not "
            f"{value!r}")
    return value


def require_server_list(servers, shape):
    """A list of dicts, each with its string ``id``; ``shape`` says what
    the entries are, for the message."""
    if not isinstance(servers, list) or not all(
            isinstance(s, dict) and isinstance(s.get("id"), str)
            for s in servers):
        raise nova_client.NovaError(
            f"bad input: servers must be a list of {shape}")
    return servers


def require_targets(targets, source_host):
    """Hosts to evacuate to, in order: names and/or nulls (Nova's
    scheduler), never the source host."""
    if not isinstance(targets, list) or not all(
            t is None or (isinstance(t, str) and t.strip())
            for t in targets):
        raise nova_client.NovaError(
            "bad input: targets must be a list of host names or nulls")
    if source_host in targets:
        raise nova_client.NovaError(
            "bad input: a target is the source host")
    return targets


def host_subject(host):
    """An action's (server, host) for its error record."""
    return None, host if isinstance(host, str) else None
