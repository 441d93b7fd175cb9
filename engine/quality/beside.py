"""Measuring beside training: one low-priority thread, the newest request only, never waited for in the loop.

``Beside(work)`` runs ``work(request)`` on a daemon thread whose CPU priority is lowered (``nice``
+10 on Linux, where a thread has its own; the threads it starts, torch's and mediapipe's, inherit
it), so on a busy CPU training keeps the cores and the measurement takes what is left. ``submit``
puts a request in a one-place mailbox and returns at once: a request not yet started is replaced by
a newer one (dropped, it was stale). ``wait`` lets a run that reached its target finish the last
measurement (still answering a cancel); ``drop`` forgets the waiting request and gives the running
one a second at most, for a cancel or a stop: the process may end under it, and what it writes is
written atomically. At the process's exit a running measurement gets ``AT_EXIT_S`` more (after the job
has reported its end): a thread still inside native code while the interpreter tears down can abort
the process ("terminate called without an active exception", seen once after a cancel under load).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable
from typing import Any

NICE = 10
AT_EXIT_S = 5.0


class Beside:
    def __init__(self, work: Callable[[Any], None], name: str = "quality") -> None:
        self._work = work
        self._name = name
        self._pending: Any = None
        self._running = False
        self._dropped = False
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._running or self._pending is not None

    def submit(self, request: Any) -> None:
        with self._ready:
            self._pending = request
            self._dropped = False
            self._ready.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
            atexit.register(self.drop, AT_EXIT_S)

    def _serve(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        except (AttributeError, OSError):  # not Linux: the thread shares the process's priority
            pass
        while True:
            with self._ready:
                while self._pending is None:
                    self._ready.wait()
                request, self._pending, self._running = self._pending, None, True
            try:
                self._work(request)
            finally:
                with self._ready:
                    self._running = False
                    self._ready.notify_all()

    def wait(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Until nothing is waiting or running (True), or ``cancelled`` says so (False, then dropped)."""
        with self._ready:
            while self.busy:
                if cancelled():
                    break
                self._ready.wait(0.1)
            else:
                return True
        self.drop()
        return False

    def drop(self, grace_s: float = 1.0) -> None:
        with self._ready:
            self._pending = None
            self._dropped = True
            deadline = time.monotonic() + grace_s
            while self._running and time.monotonic() < deadline:
                self._ready.wait(max(0.0, deadline - time.monotonic()))

    @property
    def dropped(self) -> bool:
        """Set by ``drop`` until the next ``submit``: work in progress may check it between its parts."""
        return self._dropped
