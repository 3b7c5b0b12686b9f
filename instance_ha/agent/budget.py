"""The time one monitor pass may take, and the timeout of each call in it.

Pacemaker gives the agent's monitor ``OCF_RESKEY_CRM_meta_timeout``
milliseconds and counts a longer monitor as a failure of the resource.
A pass therefore finishes its work by ``SHARE`` (80 %) of that timeout
(the rest covers the interpreter's start and the state file): each
Pacemaker command and each Mistral request of the pass gets the smaller
of ``request_timeout`` and the time left, and once nothing is left the
pass does no more work (the next monitor goes on with it).  The
``instance-ha hostmonitor`` daemon gives each of its passes a budget the
same way.  Standard library only at module level.
"""

import math
import time

SHARE = 0.8
# The monitor timeout the agent's meta-data advertises (what pcs puts in
# the operation): the budget when Pacemaker passes none (a run by hand).
DEFAULT_MONITOR_TIMEOUT = 60.0
# Less time left than this is none: no call is started with it.
MINIMUM = 0.1


class OutOfTime(Exception):
    """The pass's budget is spent: no call is made any more this pass."""


def pass_seconds(monitor_timeout):
    """The work time of a pass whose monitor may take ``monitor_timeout``
    seconds."""
    return SHARE * monitor_timeout


def monitor_timeout(environ):
    """(seconds, None) from ``OCF_RESKEY_CRM_meta_timeout`` (milliseconds),
    or (DEFAULT_MONITOR_TIMEOUT, why) when it is missing or unreadable."""
    text = (environ.get("OCF_RESKEY_CRM_meta_timeout") or "").strip()
    if not text:
        return DEFAULT_MONITOR_TIMEOUT, None
    try:
        milliseconds = int(text)
    except ValueError:
        milliseconds = 0
    if milliseconds <= 0:
        return DEFAULT_MONITOR_TIMEOUT, (
            f"OCF_RESKEY_CRM_meta_timeout={text!r} is not a number of "
            f"milliseconds; the monitor's budget assumes "
            f"{DEFAULT_MONITOR_TIMEOUT:g} s")
    return milliseconds / 1000.0, None


class Budget:
    """``seconds`` from now (None: no limit) on ``clock`` (monotonic)."""

    def __init__(self, seconds=None, clock=time.monotonic, start=None):
        self.seconds = seconds
        self.clock = clock
        begin = clock() if start is None else start
        self.deadline = None if seconds is None else begin + seconds

    def left(self):
        if self.deadline is None:
            return math.inf
        return max(0.0, self.deadline - self.clock())

    def spent(self):
        return self.left() < MINIMUM

    def timeout(self, wanted):
        """``wanted`` seconds, or the time left if less; OutOfTime when
        none is left."""
        left = self.left()
        if left < MINIMUM:
            raise OutOfTime(f"the monitor's budget of {self.seconds:g} s is "
                            "spent")
        return min(wanted, left) if wanted is not None else left

    def bound(self, timeout):
        """A requests timeout (None, seconds, or (connect, read)) cut to
        the time left."""
        if isinstance(timeout, tuple):
            return tuple(self.timeout(t) for t in timeout)
        if timeout is None or isinstance(timeout, (int, float)):
            return self.timeout(timeout)
        return timeout  # a urllib3 Timeout: left as it is


def bind(client, budget):
    """Cut every HTTP request of python-mistralclient ``client`` (and of
    its Keystone session) to the time left in ``budget``.  A client
    without a requests session (a test's fake) is left as it is."""
    import requests

    session = getattr(getattr(getattr(client, "executions", None),
                              "http_client", None), "session", None)
    # A keystoneauth Session carries its requests.Session as .session.
    session = getattr(session, "session", session)
    if not isinstance(session, requests.Session):
        return
    for prefix, adapter in list(session.adapters.items()):
        if not isinstance(adapter, _BoundedAdapter):
            session.mount(prefix, _BoundedAdapter(adapter, budget))


class _BoundedAdapter:
    """A requests transport adapter (``send``, ``close``): sends through
    the adapter it wraps, with the timeout cut to the time left; raises
    OutOfTime instead of sending when none is left."""

    def __init__(self, inner, budget):
        self.inner = inner
        self.budget = budget

    def send(self, request, stream=False, timeout=None, verify=True,
             cert=None, proxies=None):
        return self.inner.send(request, stream=stream,
                               timeout=self.budget.bound(timeout),
                               verify=verify, cert=cert, proxies=proxies)

    def close(self):
        self.inner.close()
