"""Running one job in a child process, so heavy work never blocks the engine's event loop.

The child gets a pipe for events (its reporter sends them), a pipe for client commands and an event
for cancellation. If the engine dies, the child gets SIGTERM (Linux parent-death signal) so a
training job can save and stop instead of running on unattended.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from engine.errors import JobCancelled, UserError
from engine.jobs import get_kind
from engine.jobs.steps import CANCELLED, DISK_FULL, FAILED, FINISHED, describe_failure
from engine.report import Reporter
from engine.workspace import Workspace

log = logging.getLogger("engine.runner")

#: How long a cancelled job may take to stop by itself (a training job saves first).
CANCEL_GRACE_S = 60.0
TERMINATE_GRACE_S = 15.0


class PipeReporter(Reporter):
    """Sends a job's events to the engine through a pipe."""

    def __init__(self, events: Connection, commands: Connection, cancel: Any) -> None:
        super().__init__()
        self._events = events
        self._commands = commands
        self._cancel = cancel

    def emit(self, event: dict[str, Any]) -> None:
        self._events.send(event)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def commands(self) -> list[dict[str, Any]]:
        received = []
        while self._commands.poll():
            try:
                received.append(self._commands.recv())
            except (EOFError, OSError):
                break
        return received


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def execute(ws_root: str, kind: str, params: dict[str, Any], reporter: PipeReporter) -> dict[str, Any]:
    """Run one job to its end and return the ``_end`` message that tells the engine how it ended."""
    try:
        job = get_kind(kind)
        result = job.module.run(Workspace(ws_root), job.parse_params(params), reporter)
        return {"type": "_end", "outcome": FINISHED, "result": result if isinstance(result, dict) else {}}
    except JobCancelled:
        return {"type": "_end", "outcome": CANCELLED}
    except Exception as exc:  # noqa: BLE001 - every failure must reach the user as an event
        if not isinstance(exc, (UserError, MemoryError)) and not (isinstance(exc, OSError) and exc.errno in DISK_FULL):
            traceback.print_exc()
        error, hint = describe_failure(kind, exc)
        return {"type": "_end", "outcome": FAILED, "error": error, "hint": hint}


def _child_setup(name: str) -> bool:
    _die_with_parent()
    if os.getppid() == 1:  # the engine died before we could ask to follow it
        return False
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    return True


def child_main(ws_root: str, kind: str, params: dict[str, Any], events: Connection,
               commands: Connection, cancel: Any) -> None:
    """Entry point of a one-job process."""
    if not _child_setup(f"job[{kind}]"):
        return
    try:
        events.send(execute(ws_root, kind, params, PipeReporter(events, commands, cancel)))
    finally:
        events.close()


def worker_main(ws_root: str, requests: Connection, events: Connection, commands: Connection, cancel: Any) -> None:
    """Entry point of a persistent worker: runs short jobs one after another, keeping imports and caches warm."""
    if not _child_setup("worker"):
        return
    reporter = PipeReporter(events, commands, cancel)
    while True:
        try:
            kind, params = requests.recv()
        except (EOFError, OSError):
            return
        reporter.__init__(events, commands, cancel)  # fresh progress throttling per job
        events.send(execute(ws_root, kind, params, reporter))


class JobProcess:
    """The engine's handle on one job's child process (a new process per job)."""

    persistent = False

    def __init__(self, ws_root: str, kind: str, params: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self._events_recv, events_send = context.Pipe(duplex=False)
        commands_recv, self._commands_send = context.Pipe(duplex=False)
        self.cancel_event = context.Event()
        self.process = context.Process(
            target=child_main, name=f"swapwizard-{kind}",
            args=(ws_root, kind, params, events_send, commands_recv, self.cancel_event), daemon=False,
        )
        self.process.start()
        events_send.close()
        commands_recv.close()

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def receive(self) -> dict[str, Any] | None:
        """Blocking: the next message from the job, or None when it has exited."""
        try:
            return self._events_recv.recv()
        except (EOFError, OSError):
            return None

    def send_command(self, command: dict[str, Any]) -> None:
        try:
            self._commands_send.send(command)
        except (OSError, ValueError):
            pass

    def request_cancel(self) -> None:
        self.cancel_event.set()

    def terminate(self) -> None:
        if self.process.is_alive():
            self.process.terminate()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()

    def join(self, timeout: float | None = None) -> int | None:
        self.process.join(timeout)
        return self.process.exitcode


class WorkerProcess(JobProcess):
    """A persistent child process that runs short jobs one at a time (interactive previews).

    Starting a Python process and importing torch costs about a second; a preview must come back in
    a fraction of that, so these jobs reuse one warm process (and its in-memory caches).
    """

    persistent = True

    def __init__(self, ws_root: str) -> None:  # noqa: D107 - no super().__init__: a different child
        context = multiprocessing.get_context("spawn")
        self._events_recv, events_send = context.Pipe(duplex=False)
        commands_recv, self._commands_send = context.Pipe(duplex=False)
        requests_recv, self._requests_send = context.Pipe(duplex=False)
        self.cancel_event = context.Event()
        self.process = context.Process(
            target=worker_main, name="swapwizard-worker",
            args=(ws_root, requests_recv, events_send, commands_recv, self.cancel_event), daemon=False,
        )
        self.process.start()
        events_send.close()
        commands_recv.close()
        requests_recv.close()

    def start_job(self, kind: str, params: dict[str, Any]) -> None:
        self.cancel_event.clear()
        self._requests_send.send((kind, params))

    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self) -> None:
        try:
            self._requests_send.close()
        except OSError:
            pass
