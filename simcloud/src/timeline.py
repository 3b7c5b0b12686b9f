"""Work that Nova's conductor and computes do after the API has answered:
callbacks run in order of their due time on one background thread."""

import heapq
import itertools
import threading
import time


class Timeline:
    def __init__(self, name="simcloud-timeline"):
        self._cond = threading.Condition()
        self._heap = []
        self._seq = itertools.count()
        self._closed = False
        self._errors = []
        self._thread = threading.Thread(target=self._run, name=name,
                                        daemon=True)
        self._thread.start()

    def call_later(self, delay, callback, *args):
        due = time.monotonic() + max(0.0, delay)
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (due, next(self._seq), callback,
                                        args))
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    timeout = self._heap[0][0] - now if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, _, callback, args = heapq.heappop(self._heap)
            try:
                callback(*args)
            except Exception as exc:  # kept for errors(); the loop goes on
                self._errors.append(exc)

    def pending(self):
        with self._cond:
            return len(self._heap)

    def errors(self):
        return list(self._errors)

    def close(self):
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
        self._thread.join(timeout=5)
