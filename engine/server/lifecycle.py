"""An engine's life: whether it may run, what a killed predecessor left open, and when it must stop.

- **Start**: the workspace's lock (``EngineLock``) makes it the only engine of its folder; a second
  one exits with ``AlreadyRunning``. Jobs and steps a killed engine left open are closed (a
  ``job_failed`` event, the step ``failed: interrupted``), so clients see what happened.
- **Running**: every ``CHECK_EVERY_S`` it checks that its folder is still there and still the same
  one (a workspace deleted or moved away, or replaced by a new one at the same path, would otherwise
  keep an engine running for good beside the new folder's own), and, with ``[engine] idle_exit_min``,
  that it has not been idle that long: no job running or queued and no client connected.
- **Stop** (shutdown request, SIGTERM/SIGINT, folder gone, idle): the socket and pid file are removed
  only if they are still this engine's (a new engine may own the path by then), then the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from engine.atomic import atomic_write_text
from engine.events import read_events
from engine.jobs.steps import INTERRUPTED, StepRecorder
from engine.launcher import EngineLock
from engine.protocol import END_EVENTS
from engine.workspace import Workspace

log = logging.getLogger("engine.lifecycle")

#: How often the engine checks its folder and its idle time.
CHECK_EVERY_S = 2.0


class Lifecycle:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lock = EngineLock(ws)
        self.reason = ""
        self.idle_exit_s = 0.0
        self._stopping = asyncio.Event()
        self._folder: tuple[int, int] | None = None
        self._socket: tuple[int, int] | None = None
        self._idle_since = time.monotonic()

    # -- start -----------------------------------------------------------------------------
    def claim(self) -> None:
        """Become the workspace's engine (``AlreadyRunning`` if another one is)."""
        self.lock.acquire()
        self._folder = _identity(self.ws.root)

    def recover_interrupted(self, emit: Callable[..., Any], steps: StepRecorder) -> None:
        """Close the jobs and steps a killed engine left open."""
        open_jobs: dict[str, dict[str, Any]] = {}
        for event in read_events(self.ws.events_path):
            kind = event.get("type")
            if kind == "job_started":
                open_jobs[event.get("job_id", "")] = event
            elif kind in END_EVENTS:
                open_jobs.pop(event.get("job_id", ""), None)
        for job_id in open_jobs:
            emit("job_failed", job_id=job_id, error="The engine stopped while this job was running.",
                 hint="Run the step again: it resumes from its last saved point.")
        for step, record in steps.view().items():
            if record.get("status") == "running":
                steps.record([step], "failed", error=INTERRUPTED, params=record.get("params"))

    def published(self) -> None:
        """The socket listens: remember which socket file is ours, and write the pid file."""
        self._socket = _identity(self.ws.socket_path)
        try:
            atomic_write_text(self.ws.pid_path, f"{os.getpid()}\n")
        except OSError as exc:
            log.error("cannot write the pid file: %s", exc)

    # -- running ----------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        if not self._stopping.is_set():
            self.reason = reason
            log.info("engine stopping: %s", reason)
            self._stopping.set()

    def folder_intact(self) -> bool:
        """Whether the workspace folder is still where it was and the lock file is still the one held."""
        return self._folder is not None and _identity(self.ws.root) == self._folder and self.lock.still_ours()

    async def run(self, busy: Callable[[], bool], tick: Callable[[], None]) -> str:
        """Wait until something stops the engine; returns why. ``busy()``: a job or client keeps it up."""
        self._idle_since = time.monotonic()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), CHECK_EVERY_S)
            if self._stopping.is_set():
                break
            tick()
            if not self.folder_intact():
                self.stop("the workspace folder is gone or was replaced")
            elif busy():
                self._idle_since = time.monotonic()
            elif self.idle_exit_s > 0 and time.monotonic() - self._idle_since >= self.idle_exit_s:
                self.stop(f"idle for {self.idle_exit_s / 60:g} min ([engine] idle_exit_min)")
        return self.reason

    # -- stop --------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Remove the socket and pid file if they are still ours, then let the lock go."""
        if self._socket is not None and _identity(self.ws.socket_path) == self._socket:
            with contextlib.suppress(OSError):
                self.ws.socket_path.unlink()
        if self.lock.still_ours():
            with contextlib.suppress(OSError, ValueError):
                if int(self.ws.pid_path.read_text().strip()) == os.getpid():
                    self.ws.pid_path.unlink()
        self.lock.release()


def _identity(path: os.PathLike[str] | str) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino
