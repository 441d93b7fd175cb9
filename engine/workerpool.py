"""A long video's work split among worker processes: frame ranges, each run by a spawned process.

Extraction (``engine.faces.workers``) and merge (``engine.merge.workers``) both cut a long video into
frame ranges and run each in its own process, at most ``workers`` at a time. This module is what they
share: how many workers a machine gets (``default_workers``, ``workers_for``), and ``run_tasks``, the
parent's loop that starts the processes, adds up their progress into the job's one progress bar,
passes their logs and previews on, and turns a worker's failure into one ``UserError`` for the job.

A worker runs ``target(report, *args)`` with a reporter whose ``cancelled`` turns true when the parent
asks (cancel, or another worker failed) or when the parent is gone (its parent pid changed: a
``kill -9`` of the job leaves no worker running on; each stops at its next frame). What a finished
range leaves behind, and how the caller knows it is whole, is the caller's business (``is_done``).

Workers are spawned, not forked: the parent may hold threads (decoding, the engine's socket) and CUDA.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import UserError
from engine.report import Reporter

#: At most this many workers, whatever the machine.
MAX_WORKERS = 16


def cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def available_memory() -> int:
    """MemAvailable in bytes (0 when unknown)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def default_workers(worker_bytes: int) -> int:
    """Workers for this machine: one per two cores (a decode + work + write pipeline keeps about 1.7
    busy), as many as the available memory holds at ``worker_bytes`` each, at most ``MAX_WORKERS``."""
    available = available_memory()
    by_memory = max(1, available // worker_bytes) if available else cores()
    return int(max(1, min(cores() // 2, by_memory, MAX_WORKERS)))


def workers_for(requested: int, kind: str, frames: int, min_frames: int, worker_bytes: int) -> int:
    """How many workers a video gets: ``requested`` (0: ``default_workers``; never more than the available
    memory holds), 1 for a folder of images or a clip shorter than two ranges of ``min_frames``."""
    available = available_memory()
    wanted = min(requested or default_workers(worker_bytes),
                 max(1, available // worker_bytes) if available else 64)
    if kind != "video" or frames < 2 * min_frames:
        return 1
    return max(1, min(wanted, frames // min_frames))


@dataclass(frozen=True)
class Task:
    """One range of frames ``[start, end)`` and the arguments its worker's target takes after the reporter."""

    index: int
    start: int
    end: int
    args: tuple[Any, ...]


def run_tasks(target: Callable[..., None], tasks: Sequence[Task], workers: int, report: Reporter, stage: str,
              total: int, is_done: Callable[[Task], bool], done_before: int = 0, what: str = "A worker",
              again: str = "run the job again to resume", on_start: Callable[[Task], None] | None = None) -> None:
    """Run every task in its own spawned process, at most ``workers`` at a time, until each is done.

    ``target`` is a module-level function (spawn imports it by name); it is called in the worker as
    ``target(report, *task.args)`` and reports progress as the absolute index of the next frame (the way
    ``report.progress(stage, frame, total)`` counts). ``done_before`` frames were finished by earlier runs.
    A task whose process ended without ``is_done(task)`` fails the job with one sentence (``what`` names
    the worker, ``again`` ends the hint); the other workers are told to stop and waited for.
    """
    pending = list(tasks)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    cancel = context.Event()
    running: dict[int, tuple[Task, Any]] = {}
    done_frames: dict[int, int] = {}
    failure: tuple[str, str] | None = None
    try:
        while pending or running:
            while pending and len(running) < max(1, workers) and failure is None:
                task = pending.pop(0)
                if on_start is not None:
                    on_start(task)
                proc = context.Process(target=_task_main, name=f"{stage}-worker-{task.index}", daemon=False,
                                       args=(target, task.index, task.args, messages, cancel, os.getpid(), what,
                                             again))
                proc.start()
                running[task.index] = (task, proc)
            try:
                message = messages.get(timeout=0.2)
            except queue_module.Empty:
                message = None
            if message is not None:
                kind, i, *rest = message
                if kind == "progress" and i in running:
                    done_frames[i] = max(0, rest[0] - running[i][0].start)
                    report.progress(stage, done_before + sum(done_frames.values()), total, unit="frames")
                elif kind == "event":
                    _pass_on(report, rest[0])
                elif kind == "error":
                    failure = failure or (rest[0], rest[1])
            for i, (task, proc) in list(running.items()):
                if not proc.is_alive():
                    proc.join()
                    del running[i]
                    if not is_done(task) and failure is None:
                        failure = _last_error(messages) or (
                            f"{what} (frames {task.start}-{task.end - 1}) died unexpectedly (exit code "
                            f"{proc.exitcode}).", "It may have run out of memory: use fewer --workers.")
                    else:
                        done_frames[i] = task.end - task.start
                        report.progress(stage, done_before + sum(done_frames.values()), total, unit="frames")
            if failure is not None and not running:
                raise UserError(*failure)
            if failure is not None:
                cancel.set()
            report.check_cancelled()
    finally:
        if running:
            cancel.set()
            deadline = time.monotonic() + 30
            for _, proc in running.values():
                proc.join(max(0.1, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        messages.close()


def _pass_on(report: Reporter, event: dict[str, Any]) -> None:
    if event.get("type") == "log":
        report.log(event.get("message", ""), level=event.get("level", "info"))
    elif event.get("type") == "preview":
        report.preview(event["path"], event.get("small"), **(event.get("extra") or {}))


def _last_error(messages: Any) -> tuple[str, str] | None:
    found = None
    while True:
        try:
            kind, _, *rest = messages.get(timeout=0.5)
        except (queue_module.Empty, OSError, ValueError, EOFError):
            return found
        if kind == "error":
            found = (rest[0], rest[1])


class QueueReporter(Reporter):
    """A worker's reporter: progress, logs and previews to the parent's queue; cancelled when the parent
    asks or dies."""

    def __init__(self, index: int, messages: Any, cancel: Any, parent: int) -> None:
        super().__init__()
        self.index, self.messages, self.cancel, self.parent = index, messages, cancel, parent

    def emit(self, event: dict[str, Any]) -> None:
        if event.get("type") == "progress":
            self.messages.put(("progress", self.index, event["done"]))
        elif event.get("type") in ("log", "preview"):
            self.messages.put(("event", self.index, event))

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set() or os.getppid() != self.parent


def _task_main(target: Callable[..., None], index: int, args: tuple[Any, ...], messages: Any, cancel: Any,
               parent: int, what: str, again: str) -> None:
    """A worker process: run ``target``; a failure goes to the parent as one sentence and a hint."""
    from engine.errors import JobCancelled

    report = QueueReporter(index, messages, cancel, parent)
    try:
        target(report, *args)
    except JobCancelled:
        pass
    except UserError as exc:
        messages.put(("error", index, exc.message, exc.hint))
        raise SystemExit(1) from None
    except BaseException as exc:  # noqa: BLE001 - said to the parent, which fails the job in one sentence
        messages.put(("event", index, {"type": "log", "level": "error", "message": traceback.format_exc()}))
        messages.put(("error", index, f"{what} failed ({type(exc).__name__}: {exc}).",
                      f"See the job's log; {again}."))
        raise SystemExit(1) from None
