"""The record of every API call the simulated cloud answered."""

import dataclasses
import threading


@dataclasses.dataclass(frozen=True)
class Call:
    time: float             # wall clock, seconds since the epoch
    method: str
    path: str
    query: str
    operation: str          # e.g. "evacuate", "servers.detail"
    microversion: str | None
    server_id: str | None
    status: int | None      # what the API decided; None: never processed
    project_id: str | None
    duration: float
    answered: bool = True   # False: the connection was dropped (timeout)


class CallLog:
    def __init__(self):
        self._lock = threading.Lock()
        self._calls = []

    def record(self, call):
        with self._lock:
            self._calls.append(call)

    def calls(self, **match):
        """Calls whose fields equal every given value, e.g.
        calls(operation="evacuate", server_id=uuid, status=200)."""
        with self._lock:
            calls = list(self._calls)
        return [c for c in calls
                if all(getattr(c, k) == v for k, v in match.items())]

    def count(self, **match):
        return len(self.calls(**match))

    def accepted_evacuations(self):
        """{server id: number of evacuate requests answered 200}."""
        counts = {}
        for call in self.calls(operation="evacuate", status=200):
            counts[call.server_id] = counts.get(call.server_id, 0) + 1
        return counts

    def clear(self):
        with self._lock:
            self._calls.clear()

    def __len__(self):
        with self._lock:
            return len(self._calls)
