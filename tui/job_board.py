"""What the wizard knows about the engine's jobs, rebuilt from the event stream.

``JobBoard.apply(event)`` folds one protocol event into per-job records (status, latest progress per
stage, the metrics history, the latest preview, recent log lines, result or error). The socket worker
applies every event here before it tells the screens, so a screen that becomes visible later draws
itself from the board, and replaying history after a reconnect rebuilds exactly the same state.
Pure Python and protocol types only: unit tests feed it recorded event sequences.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine import protocol as p

#: A job's status as the wizard shows it.
JOB_STATUSES = ("queued", "running", "finished", "failed", "cancelled")
#: Keep this many log lines per job (the engine log on disk has all of them).
LOG_LINES = 200


@dataclass
class JobRecord:
    job_id: str
    kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "queued"
    #: The first event seq seen for this job (where a replay of its history starts).
    first_seq: int = 0
    #: Latest progress per stage, in the order the stages first appeared.
    stages: dict[str, p.Progress] = field(default_factory=dict)
    #: Every metrics ``values`` dict, oldest first (the loss curve).
    metrics: list[dict[str, Any]] = field(default_factory=list)
    preview: p.Preview | None = None
    logs: deque[p.Log] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    hint: str = ""

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def latest_metrics(self) -> dict[str, Any]:
        return self.metrics[-1] if self.metrics else {}

    def stage(self, name: str) -> p.Progress | None:
        return self.stages.get(name)


class JobBoard:
    """Every job seen on the stream, by id, plus the last seq applied."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobRecord] = {}
        self.last_seq = 0
        self.engine_pid = 0

    def apply(self, event: p.Event) -> JobRecord | None:
        """Fold one event in; returns the job it concerns (None for engine-wide events)."""
        if event.seq and event.seq <= self.last_seq:
            return self.jobs.get(getattr(event, "job_id", None) or "")  # a replayed duplicate
        self.last_seq = max(self.last_seq, event.seq)
        if isinstance(event, p.EngineStarted):
            self.engine_pid = event.pid
            # A new engine means any job the old one ran is over (the engine marks it failed).
            for job in self.jobs.values():
                if job.active:
                    job.status = "failed"
                    job.error = job.error or "The engine stopped while this job ran."
            return None
        job_id = getattr(event, "job_id", None)
        if not job_id:
            return None
        job = self.jobs.get(job_id)
        if job is None:
            job = self.jobs[job_id] = JobRecord(job_id=job_id, first_seq=event.seq)
        if isinstance(event, (p.JobQueued, p.JobStarted)):
            job.kind = event.kind or job.kind
            job.params = event.params or job.params
            job.status = "running" if isinstance(event, p.JobStarted) else "queued"
        elif isinstance(event, p.Progress):
            job.status = "running"
            job.stages[event.stage] = event
        elif isinstance(event, p.Metrics):
            job.status = "running"
            job.metrics.append(event.values)
        elif isinstance(event, p.Preview):
            job.preview = event
        elif isinstance(event, p.Log):
            job.logs.append(event)
        elif isinstance(event, p.JobFinished):
            job.status, job.result = "finished", event.result
        elif isinstance(event, p.JobFailed):
            job.status, job.error, job.hint = "failed", event.error, event.hint
        elif isinstance(event, p.JobCancelledEvent):
            job.status = "cancelled"
        return job

    def latest(self, *kinds: str) -> JobRecord | None:
        """The most recent job of one of ``kinds`` (any kind when none given)."""
        for job in reversed(self.jobs.values()):
            if not kinds or job.kind in kinds:
                return job
        return None

    def running(self) -> JobRecord | None:
        for job in reversed(self.jobs.values()):
            if job.status == "running":
                return job
        return None

    def active(self, *kinds: str) -> JobRecord | None:
        for job in reversed(self.jobs.values()):
            if job.active and (not kinds or job.kind in kinds):
                return job
        return None
