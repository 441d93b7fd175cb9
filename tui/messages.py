"""App-wide messages: what the engine worker tells the screens.

The worker folds each event into the app's ``JobBoard`` first, then posts one of these; a handler
reads the board for the full picture. High-rate kinds (progress, metrics) say they may replace an
unprocessed older one of the same job (and stage), so a flood of updates costs the screen one redraw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from engine import protocol as p


@dataclass
class EngineConnected(Message):
    """The worker said hello to the engine and subscribed; ``status`` is the status reply."""

    hello: dict[str, Any]
    status: dict[str, Any]


@dataclass
class EngineLost(Message):
    """The connection failed or closed; the worker retries after a pause."""

    error: str
    hint: str = ""


@dataclass
class StatusUpdated(Message):
    """A fresh status reply (steps, running job) arrived."""

    status: dict[str, Any]


@dataclass
class JobEvent(Message):
    """Any event about a job: queued, started, preview, log, finished, failed, cancelled."""

    event: p.Event

    @property
    def job_id(self) -> str:
        return getattr(self.event, "job_id", "") or ""


@dataclass
class JobProgressed(JobEvent):
    """A progress event; a newer one for the same job and stage replaces a stale one."""

    def can_replace(self, message: Message) -> bool:
        return (isinstance(message, JobProgressed) and message.job_id == self.job_id
                and getattr(message.event, "stage", None) == getattr(self.event, "stage", None))


@dataclass
class JobMetrics(JobEvent):
    """A metrics event; the board keeps the whole history, so only the newest needs a redraw."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobMetrics) and message.job_id == self.job_id


def message_for(event: p.Event) -> JobEvent:
    if isinstance(event, p.Progress):
        return JobProgressed(event)
    if isinstance(event, p.Metrics):
        return JobMetrics(event)
    return JobEvent(event)
