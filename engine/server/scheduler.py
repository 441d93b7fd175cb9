"""The engine's scheduler: lanes of queued jobs, each job in a child process, cancel, and step states.

Two lanes: ``main`` runs the pipeline's jobs one at a time, each in a new process; ``interactive``
runs short jobs (previews, declared ``lane="interactive"``) beside it in one warm, persistent process, and a
newer one replaces one still waiting. A job's messages are pumped from its process into events; how
it ended (finished, cancelled, failed, or its process died) becomes one end event and, through the
``StepRecorder`` the ``run`` job uses too, the state of the steps it moves. Cancel asks the job to
stop at its next safe point, then terminates and finally kills it after grace periods.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import UserError
from engine.jobs import get_kind, params_to_dict
from engine.jobs.steps import CANCELLED, FAILED, FINISHED, StepRecorder
from engine.runner import CANCEL_GRACE_S, TERMINATE_GRACE_S, JobProcess, WorkerProcess
from engine.workspace import Workspace

log = logging.getLogger("engine.scheduler")

Emit = Callable[..., Any]


@dataclass
class Job:
    job_id: str
    kind: str
    params: dict[str, Any]
    steps: list[str]
    queued_seq: int
    #: Steps the job records itself (the ``run`` job); settled here if its process ends mid-step.
    managed: tuple[str, ...] = ()
    started_seq: int | None = None
    started: float | None = None
    process: JobProcess | None = None
    cancel_requested: bool = False

    def describe(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind, "params": self.params, "steps": self.steps,
                "queued_seq": self.queued_seq, "started_seq": self.started_seq, "started": self.started,
                "pid": self.process.pid if self.process else None}


@dataclass(eq=False)
class Lane:
    name: str
    queue: deque[Job] = field(default_factory=deque)
    running: Job | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: WorkerProcess | None = None


class Scheduler:
    """Runs submitted jobs; ``emit(type, **fields)`` publishes events, ``next_seq()`` the seq the next gets."""

    def __init__(self, ws: Workspace, emit: Emit, next_seq: Callable[[], int]) -> None:
        self.ws = ws
        self.emit = emit
        self.next_seq = next_seq
        self.lanes: dict[str, Lane] = {"main": Lane("main"), "interactive": Lane("interactive")}
        self.steps = StepRecorder(ws, on_error=lambda message: emit("log", job_id=None, level="error",
                                                                    message=message))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._lane_loop(lane)) for lane in self.lanes.values()]

    def busy(self) -> bool:
        """Whether any job runs or waits."""
        return any(lane.running or lane.queue for lane in self.lanes.values())

    # -- submit and run ----------------------------------------------------------------------
    def submit(self, kind: str, raw_params: dict[str, Any]) -> dict[str, Any]:
        job_kind = get_kind(kind)
        parsed = job_kind.parse_params(raw_params)
        params = params_to_dict(parsed)
        lane = self.lanes[job_kind.lane]
        if lane.name == "interactive":  # a newer preview makes a waiting one pointless
            for stale in [j for j in lane.queue if j.kind == kind]:
                lane.queue.remove(stale)
                self.emit("job_cancelled", job_id=stale.job_id)
        seq = self.next_seq()
        job = Job(job_id=f"job-{seq}", kind=kind, params=params, steps=job_kind.step_names(parsed),
                  queued_seq=seq, managed=job_kind.managed_steps)
        self.emit("job_queued", job_id=job.job_id, kind=kind, params=params)
        lane.queue.append(job)
        lane.wake.set()
        return {"job_id": job.job_id, "position": len(lane.queue) - 1 + (1 if lane.running else 0)}

    async def _lane_loop(self, lane: Lane) -> None:
        while True:
            while not lane.queue:
                lane.wake.clear()
                await lane.wake.wait()
            job = lane.queue.popleft()
            lane.running = job
            try:
                await self._run(job, lane)
            except Exception:  # noqa: BLE001 - the engine outlives any job
                log.exception("job %s crashed its scheduler step", job.job_id)
                error, hint = "The engine could not run this job.", f"See {self.ws.engine_log_path}."
                self.emit("job_failed", job_id=job.job_id, error=error, hint=hint)
                self.steps.ended(job.steps, FAILED, job.params, error=error, hint=hint, job_id=job.job_id)
            finally:
                lane.running = None

    def _start_process(self, job: Job, lane: Lane) -> JobProcess:
        if lane.name != "interactive":
            return JobProcess(str(self.ws.root), job.kind, job.params)
        if lane.worker is None or not lane.worker.alive():
            lane.worker = WorkerProcess(str(self.ws.root))
        lane.worker.start_job(job.kind, job.params)
        return lane.worker

    async def _run(self, job: Job, lane: Lane) -> None:
        loop = self._loop
        assert loop is not None
        job.started = time.time()
        job.process = self._start_process(job, lane)
        job.started_seq = self.next_seq()
        self.emit("job_started", job_id=job.job_id, kind=job.kind, params=job.params, pid=job.process.pid)
        self.steps.started(job.steps, job.params, job_id=job.job_id)
        end: dict[str, Any] = {}
        done = asyncio.Event()

        def pump() -> None:  # a thread: the job's pipe is read with blocking calls
            assert job.process is not None
            while True:
                message = job.process.receive()
                if message is None:
                    break
                if message.get("type") == "_end":
                    end.update(message)
                    break
                kind = message.pop("type", "log")
                loop.call_soon_threadsafe(lambda kind=kind, message=message: self.emit(kind, job_id=job.job_id,
                                                                                        **message))
            loop.call_soon_threadsafe(done.set)

        threading.Thread(target=pump, name=f"pump-{job.job_id}", daemon=True).start()
        await done.wait()
        exitcode = None
        if not job.process.persistent or not end:
            exitcode = await asyncio.to_thread(job.process.join)
            if job.process.persistent:
                lane.worker = None
        self._ended(job, end, exitcode)

    def _ended(self, job: Job, end: dict[str, Any], exitcode: int | None) -> None:
        """Publish how ``job`` ended and move its steps accordingly."""
        outcome = end.get("outcome")
        error = hint = ""
        if outcome == FINISHED:
            self.emit("job_finished", job_id=job.job_id, result=end.get("result", {}))
        elif outcome == CANCELLED or (job.cancel_requested and outcome is None):
            outcome = CANCELLED
            self.emit("job_cancelled", job_id=job.job_id)
        else:
            outcome = FAILED
            error = end.get("error") or f"The {job.kind} job process died unexpectedly (exit code {exitcode})."
            hint = end.get("hint") or ("It may have run out of memory or been killed; see the engine log "
                                       f"{self.ws.engine_log_path}.")
            self.emit("job_failed", job_id=job.job_id, error=error, hint=hint)
        self.steps.ended(job.steps, outcome, job.params, result=end.get("result", {}), error=error, hint=hint,
                         job_id=job.job_id)
        self.steps.settle(job.managed, outcome, error=error, hint=hint)

    # -- cancel, commands, stop ----------------------------------------------------------------
    def _find(self, job_id: str | None) -> tuple[Lane, Job] | None:
        for lane in self.lanes.values():
            if lane.running is not None and (job_id is None and lane.name == "main" or lane.running.job_id == job_id):
                return lane, lane.running
        return None

    def cancel(self, job_id: str | None) -> dict[str, Any]:
        if job_id is not None:
            for lane in self.lanes.values():
                for queued in list(lane.queue):
                    if queued.job_id == job_id:
                        lane.queue.remove(queued)
                        self.emit("job_cancelled", job_id=job_id)
                        return {"job_id": job_id}
        found = self._find(job_id)
        if found is None:
            raise UserError("No such job is running." if job_id else "No job is running.",
                            "See what runs with: swapwizard status WS")
        self._cancel_running(*found)
        return {"job_id": found[1].job_id}

    def _cancel_running(self, lane: Lane, job: Job) -> None:
        if job.cancel_requested or job.process is None:
            return
        job.cancel_requested = True
        job.process.request_cancel()
        self.emit("log", job_id=job.job_id, level="info", message="Cancelling: the job stops at its next safe point.")
        asyncio.create_task(self._enforce_cancel(lane, job))

    async def _enforce_cancel(self, lane: Lane, job: Job) -> None:
        assert job.process is not None
        for grace, action in ((CANCEL_GRACE_S, job.process.terminate), (TERMINATE_GRACE_S, job.process.kill)):
            await asyncio.sleep(grace)
            if lane.running is not job:
                return
            action()

    def forward_command(self, command: str, args: dict[str, Any], job_id: str | None) -> dict[str, Any]:
        found = self._find(job_id or None)
        if found is None or found[1].process is None:
            raise UserError("No such job is running.", "Commands go to the running job; see swapwizard status WS.")
        found[1].process.send_command({"command": command, "args": args})
        return {"job_id": found[1].job_id}

    async def stop(self) -> None:
        """Drop the queues, cancel the running jobs cleanly (they may save first) and record how they
        ended, then close the warm worker."""
        for lane in self.lanes.values():
            while lane.queue:
                self.emit("job_cancelled", job_id=lane.queue.popleft().job_id)
            if lane.running is not None and lane.running.process is not None:
                self._cancel_running(lane, lane.running)
        deadline = time.monotonic() + CANCEL_GRACE_S + TERMINATE_GRACE_S + 5
        while any(lane.running for lane in self.lanes.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for task in self._tasks:
            task.cancel()
        for lane in self.lanes.values():
            if lane.worker is not None:
                lane.worker.close()
                await asyncio.to_thread(lane.worker.join, 10)
                lane.worker.kill()

    # -- status --------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        main, interactive = self.lanes["main"], self.lanes["interactive"]
        return {"running": main.running.describe() if main.running else None,
                "queue": [job.describe() for job in main.queue],
                "interactive": {"running": interactive.running.describe() if interactive.running else None,
                                "queue": [job.describe() for job in interactive.queue]}}
