"""Job outcomes -> workspace step states, in one place (the engine and the ``run`` job both use it).

A step goes ``running`` when a job that completes it starts, then by how that job ended:

=========== ============================================
finished    ``done`` with the job's result
cancelled   ``todo`` with ``cancelled: true``
failed      ``failed`` with the error sentence and hint
=========== ============================================

The engine records this around each job for the steps its kind declares (``steps`` in its ``JobKind``),
and settles any step still ``running`` after a job that manages steps itself (the ``run`` job, around each stage).
A step state that cannot be written (a full or read-only disk) is kept in memory, reported once, and
written as soon as the disk allows; the engine's ``status`` shows it meanwhile. A step ``running``
while no engine runs was interrupted: ``interrupted`` says so, for the engine at start-up and for
``swapwizard status`` without an engine.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterable
from typing import Any

from engine.errors import UserError
from engine.workspace import STEPS, Workspace

FINISHED, CANCELLED, FAILED = "finished", "cancelled", "failed"
#: The error a step gets when the engine stopped while it was running.
INTERRUPTED = "interrupted: the engine stopped"
#: errno values that mean "the disk cannot take this write".
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def outcome_state(outcome: str, result: dict[str, Any] | None = None, error: str = "",
                  hint: str = "") -> tuple[str, dict[str, Any]]:
    """The step status and details a job's outcome gives (see the table above)."""
    if outcome == FINISHED:
        return "done", {"result": result or {}}
    if outcome == CANCELLED:
        return "todo", {"cancelled": True}
    return "failed", {"error": error or "The job failed.", **({"hint": hint} if hint else {})}


def describe_failure(kind: str, exc: BaseException) -> tuple[str, str]:
    """One sentence and a hint for an exception that ended a job (never a raw OSError text)."""
    if isinstance(exc, UserError):
        return exc.message, exc.hint
    if isinstance(exc, MemoryError):
        return ("The job ran out of memory.",
                "Use smaller settings (batch size, resolution) or free memory, then run it again.")
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        where = f" while writing {exc.filename}" if exc.filename else ""
        what = "read-only" if exc.errno == errno.EROFS else "full"
        return (f"The {kind} job stopped: the disk is {what}{where}.",
                "Free some space (df -h shows how much is left), then run the step again: it resumes.")
    return (f"The {kind} job failed: {type(exc).__name__}: {exc}",
            "The full traceback is in the engine log (.swapwizard/logs/engine.log).")


def interrupted(steps: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``steps`` as they stand when no engine runs: a ``running`` step was interrupted."""
    return {name: ({**record, "status": "failed", "error": INTERRUPTED} if record.get("status") == "running"
                   else record) for name, record in steps.items()}


class StepRecorder:
    """Records step states for one workspace; keeps the ones the disk refused until it takes them.

    ``tag`` goes into every record (the engine's ``job_id``, the pipeline's ``job="run"``);
    ``on_error`` hears one sentence the first time a write fails (and again after one succeeded).
    """

    def __init__(self, ws: Workspace, on_error: Callable[[str], None] | None = None, **tag: Any) -> None:
        self.ws = ws
        self.tag = tag
        self.on_error = on_error
        self.pending: dict[str, tuple[str, dict[str, Any]]] = {}
        self._failing = False

    def started(self, steps: Iterable[str], params: dict[str, Any] | None = None, **tag: Any) -> None:
        self.record(steps, "running", params=params, **tag)

    def ended(self, steps: Iterable[str], outcome: str, params: dict[str, Any] | None = None,
              result: dict[str, Any] | None = None, error: str = "", hint: str = "", **tag: Any) -> None:
        status, info = outcome_state(outcome, result, error, hint)
        self.record(steps, status, params=params, **info, **tag)

    def settle(self, steps: Iterable[str], outcome: str, error: str = "", hint: str = "") -> None:
        """End every one of ``steps`` still ``running`` (a job process that died mid-stage)."""
        current = self.view()
        left = [s for s in steps if current.get(s, {}).get("status") == "running"]
        if left:
            self.ended(left, outcome, params=current[left[0]].get("params"),
                       error=error or "The job stopped before this step ended.", hint=hint)

    def record(self, steps: Iterable[str], status: str, **info: Any) -> None:
        for step in steps:
            if step in STEPS:
                self.pending[step] = (status, {**self.tag, **info, "updated": time.time()})
        self.flush()

    def flush(self) -> bool:
        """Write what is pending; False while the disk still refuses."""
        for step, (status, info) in list(self.pending.items()):
            try:
                self.ws.set_step(step, status, **{k: v for k, v in info.items() if k != "updated"})
            except OSError as exc:
                if not self._failing and self.on_error is not None:
                    self.on_error(f"Cannot record the step state ({exc.strerror or exc}); the disk may be full "
                                  "or read-only. It is kept in memory and written when the disk allows.")
                self._failing = True
                return False
            del self.pending[step]
        self._failing = False
        return True

    def view(self) -> dict[str, dict[str, Any]]:
        """Every step's state: the file's, with what could not be written yet laid over it."""
        try:
            steps = self.ws.steps()
        except (OSError, UserError):
            steps = {name: {"status": "todo"} for name in STEPS}
        for step, (status, info) in self.pending.items():
            steps[step] = {"status": status, **info, "unsaved": True}
        return steps
