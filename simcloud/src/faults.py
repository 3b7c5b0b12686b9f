"""Injected failures: which calls fail, and how.

A rule matches an operation name (the names are listed in nova.ROUTES and
keystone.py; "evacuate", "os-stop", "servers.detail", "services.update",
"keystone.token", ... or "*") and optionally one server (id or name).
Its effect is one of:

* ``status``: answer with that HTTP status in Nova's error format
  (500, 503, 409, ...) without carrying out the request;
* ``timeout``: hold the request that many seconds, then close the
  connection without an answer; with ``apply=True`` the request is carried
  out first (the client never learns that it succeeded);
* ``outcome="error"`` (evacuate only): the request is accepted (200) and
  the rebuild then fails on the destination: the server ends in ERROR and
  its migration ``failed``.

``times`` limits how many matching calls the rule hits (None: all)."""

import dataclasses
import threading

from instance_ha.simcloud import errors

DEFAULT_MESSAGES = {
    500: errors.UNEXPECTED,
    503: "The server is currently unavailable. Please try again at a "
         "later time.",
    409: "There was a conflict when trying to complete your request.",
}


@dataclasses.dataclass
class FaultRule:
    operation: str
    server: str | None = None
    status: int | None = None
    message: str | None = None
    timeout: float | None = None
    apply: bool = False
    outcome: str | None = None
    times: int | None = None
    hits: int = 0

    def __post_init__(self):
        effects = [self.status is not None, self.timeout is not None,
                   self.outcome is not None]
        if sum(effects) != 1:
            raise ValueError("a fault rule needs exactly one of status, "
                             "timeout, outcome")
        if self.outcome not in (None, "error"):
            raise ValueError(f"unknown outcome {self.outcome!r}")
        if self.outcome and self.operation != "evacuate":
            raise ValueError("outcome applies to evacuate only")

    def matches(self, operation, server_ids):
        if self.operation not in ("*", operation):
            return False
        if self.server is not None and self.server not in server_ids:
            return False
        return self.times is None or self.hits < self.times

    def error(self):
        message = self.message or DEFAULT_MESSAGES.get(
            self.status, "Injected failure.")
        return errors.NovaError(self.status, message)


class FaultPlan:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []

    def add(self, operation, **effect):
        rule = FaultRule(operation, **effect)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            self._rules.clear()

    def _take(self, operation, server_ids, kind):
        with self._lock:
            for rule in self._rules:
                if (getattr(rule, kind) is not None
                        and rule.matches(operation, server_ids)):
                    rule.hits += 1
                    return rule
        return None

    def for_request(self, operation, server_ids=()):
        """The status or timeout rule this call hits, if any."""
        return (self._take(operation, server_ids, "status")
                or self._take(operation, server_ids, "timeout"))

    def evacuation_outcome(self, server_ids):
        rule = self._take("evacuate", server_ids, "outcome")
        return rule.outcome if rule else None
