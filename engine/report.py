"""The reporter a job talks through: progress, metrics, previews, logs, cancellation, client commands.

Library code (extraction, training, merge) takes a reporter and never knows whether it streams to the
engine socket or to nowhere: ``EngineReporter`` and ``NullReporter`` have the same methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.errors import JobCancelled


class Reporter:
    """Base reporter: throttles progress, computes rate and ETA, and drops everything."""

    #: Minimum seconds between two progress events of the same stage (the last one always goes out).
    progress_interval = 0.25

    def __init__(self) -> None:
        self._stage_start: dict[str, tuple[float, int]] = {}
        self._last_sent: dict[str, float] = {}

    # What subclasses implement -----------------------------------------------------------
    def emit(self, event: dict[str, Any]) -> None:
        """Send one event (a dict with ``type``); the base class drops it."""

    @property
    def cancelled(self) -> bool:
        return False

    def commands(self) -> list[dict[str, Any]]:
        """Commands clients sent to this job since the last call (e.g. ``{"command": "preview"}``)."""
        return []

    # What jobs call ----------------------------------------------------------------------
    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` if a client asked to cancel; call it between units of work."""
        if self.cancelled:
            raise JobCancelled()

    def progress(self, stage: str, done: int, total: int | None = None, unit: str = "frames",
                 force: bool = False) -> None:
        """Report ``done`` of ``total`` units of ``stage``; rate and ETA are computed here."""
        now = time.monotonic()
        start = self._stage_start.setdefault(stage, (now, done))
        finished = total is not None and done >= total
        if not (force or finished) and now - self._last_sent.get(stage, 0.0) < self.progress_interval:
            return
        self._last_sent[stage] = now
        elapsed = now - start[0]
        rate = (done - start[1]) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if total is not None and rate > 0 else None
        self.emit({"type": "progress", "stage": stage, "done": done, "total": total, "unit": unit,
                   "rate": round(rate, 3), "eta_s": None if eta is None else round(eta, 1)})

    def metrics(self, **values: Any) -> None:
        """Report numbers (loss, iterations/s, ...). Callers throttle to a few per second."""
        self.emit({"type": "metrics", "values": values})

    def preview(self, path: str, small: str | None = None, **extra: Any) -> None:
        """Announce a preview image (workspace-relative path) and an optional small one for terminals."""
        self.emit({"type": "preview", "path": path, "small": small, "extra": extra})

    def log(self, message: str, level: str = "info") -> None:
        self.emit({"type": "log", "level": level, "message": message})

    def warning(self, message: str) -> None:
        self.log(message, level="warning")


class NullReporter(Reporter):
    """Reports nowhere; for benchmarks, tests of library code and scripts."""


class CallbackReporter(Reporter):
    """Hands every event to a function; with ``cancel`` a callable that says when to stop."""

    def __init__(self, callback: Callable[[dict[str, Any]], None],
                 cancel: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self._callback = callback
        self._cancel = cancel

    def emit(self, event: dict[str, Any]) -> None:
        self._callback(event)

    @property
    def cancelled(self) -> bool:
        return bool(self._cancel and self._cancel())
