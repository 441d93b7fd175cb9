"""The engine protocol: newline-delimited JSON over the workspace's Unix socket.

Every message type is defined here, once, as a typed dataclass; the engine, the CLI, the wizard and
the tests all use this module. It imports only the standard library and the base floor's
``engine.errors`` and ``engine.values`` (which checks each field against its type), so the TUI can import it.

Framing: one JSON object per line (UTF-8, ``\\n``-terminated), at most ``MAX_LINE_BYTES``.
A client's first request must be ``hello`` with ``PROTOCOL_VERSION``; anything else, or another
version, is answered with an ``error`` and the connection is closed. A message nested deeper than
``MAX_DEPTH`` gets an ``error``. An ``error`` whose ``id`` is null and that answers no request is the
engine's last word before it closes the connection (it fell behind on events, it sent nothing for too
long, or the engine is at its connection limit: ``BUSY_ERROR``, which clients retry).

Requests (client -> engine) may carry an ``id``; the engine answers each one with exactly one
``reply`` (``ok`` and a ``result``) or ``error`` (``error`` sentence and ``hint``) echoing it:

========== ========================================= =============================================
type       fields                                    result
========== ========================================= =============================================
hello      version, client                           {version, engine_version, pid, workspace}
status     -                                         Status (see ``status_result``)
submit     kind, params                              {job_id, position}
cancel     job_id (None: the running job)            {job_id}
command    command, args, job_id (None: running)     {job_id}  (forwarded to the running job)
subscribe  from_seq (0: everything), kinds           {last_seq}; then events stream on this socket
shutdown   -                                         {}; the engine cancels its job and exits
========== ========================================= =============================================

Events (engine -> subscribed clients) carry an increasing ``seq`` and a ``time``; they are appended to
``.swapwizard/events.jsonl`` so a client that connects later (or after the engine restarted) replays
them from any ``seq`` and then follows live:

engine_started {pid, version} · job_queued {job_id, kind, params} · job_started {job_id, kind, params, pid}
· progress {job_id, stage, done, total, unit, rate, eta_s} · metrics {job_id, values}
· preview {job_id, path, small, extra} · log {job_id, level, message}
· job_finished {job_id, result} · job_failed {job_id, error, hint} · job_cancelled {job_id}
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.errors import UserError
from engine.values import check_value

PROTOCOL_VERSION = 1
#: A longer line is refused and the connection closed (the engine stays up).
MAX_LINE_BYTES = 1 << 20
#: The error sentence of an engine at its connection limit (clients retry on it).
BUSY_ERROR = "The engine has too many connections open."
#: Deepest nesting of objects and lists a message may have; a deeper one is refused before it is used.
MAX_DEPTH = 32


class ProtocolError(Exception):
    """A line that is not a valid message; ``hint`` says what a client should send instead."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class Message:
    TYPE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["type"] = self.TYPE
        return data

    def encode(self) -> bytes:
        return encode(self.to_dict())


# -- requests ---------------------------------------------------------------------------------
@dataclass
class Request(Message):
    id: int | str | None = None


@dataclass
class Hello(Request):
    TYPE: ClassVar[str] = "hello"
    version: int = PROTOCOL_VERSION
    client: str = ""


@dataclass
class StatusRequest(Request):
    TYPE: ClassVar[str] = "status"


@dataclass
class Submit(Request):
    TYPE: ClassVar[str] = "submit"
    kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Cancel(Request):
    TYPE: ClassVar[str] = "cancel"
    job_id: str | None = None


@dataclass
class Command(Request):
    TYPE: ClassVar[str] = "command"
    command: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None


@dataclass
class Subscribe(Request):
    TYPE: ClassVar[str] = "subscribe"
    from_seq: int = 0


@dataclass
class Shutdown(Request):
    TYPE: ClassVar[str] = "shutdown"


# -- replies ----------------------------------------------------------------------------------
@dataclass
class Reply(Message):
    TYPE: ClassVar[str] = "reply"
    id: int | str | None = None
    ok: bool = True
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class Error(Message):
    TYPE: ClassVar[str] = "error"
    id: int | str | None = None
    ok: bool = False
    error: str = ""
    hint: str = ""


# -- events -----------------------------------------------------------------------------------
@dataclass
class Event(Message):
    seq: int = 0
    time: float = 0.0


@dataclass
class EngineStarted(Event):
    TYPE: ClassVar[str] = "engine_started"
    pid: int = 0
    version: str = ""


@dataclass
class JobQueued(Event):
    TYPE: ClassVar[str] = "job_queued"
    job_id: str = ""
    kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobStarted(Event):
    TYPE: ClassVar[str] = "job_started"
    job_id: str = ""
    kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    pid: int = 0


@dataclass
class Progress(Event):
    TYPE: ClassVar[str] = "progress"
    job_id: str = ""
    stage: str = ""
    done: int = 0
    total: int | None = None
    unit: str = ""
    rate: float = 0.0
    eta_s: float | None = None


@dataclass
class Metrics(Event):
    TYPE: ClassVar[str] = "metrics"
    job_id: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Preview(Event):
    TYPE: ClassVar[str] = "preview"
    job_id: str = ""
    path: str = ""
    small: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Log(Event):
    TYPE: ClassVar[str] = "log"
    job_id: str | None = None
    level: str = "info"
    message: str = ""


@dataclass
class JobFinished(Event):
    TYPE: ClassVar[str] = "job_finished"
    job_id: str = ""
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobFailed(Event):
    TYPE: ClassVar[str] = "job_failed"
    job_id: str = ""
    error: str = ""
    hint: str = ""


@dataclass
class JobCancelledEvent(Event):
    TYPE: ClassVar[str] = "job_cancelled"
    job_id: str = ""


REQUEST_TYPES: dict[str, type[Request]] = {
    cls.TYPE: cls for cls in (Hello, StatusRequest, Submit, Cancel, Command, Subscribe, Shutdown)
}
EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls for cls in (EngineStarted, JobQueued, JobStarted, Progress, Metrics, Preview, Log,
                              JobFinished, JobFailed, JobCancelledEvent)
}
REPLY_TYPES: dict[str, type[Message]] = {Reply.TYPE: Reply, Error.TYPE: Error}
#: Events after which a job is over.
END_EVENTS = ("job_finished", "job_failed", "job_cancelled")


def encode(data: dict[str, Any]) -> bytes:
    line = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    return line.encode("utf-8") + b"\n"


def _build(cls: type[Message], data: dict[str, Any]) -> Message:
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    message = cls(**kwargs)
    for name, (subject, annotation) in _field_types(cls).items():
        try:  # the one check of a value against its declaration, as settings and job parameters have
            check_value(subject, getattr(message, name), annotation)
        except UserError as exc:
            raise ProtocolError(exc.message, exc.hint) from None
    return message


_FIELD_TYPES: dict[type, dict[str, tuple[str, Any]]] = {}


def _field_types(cls: type[Message]) -> dict[str, tuple[str, Any]]:
    """Each field's name in errors and its type, resolved once per message class (every event is decoded)."""
    if cls not in _FIELD_TYPES:
        hints = typing.get_type_hints(cls)
        _FIELD_TYPES[cls] = {f.name: (f"{cls.TYPE}.{f.name}", hints[f.name]) for f in dataclasses.fields(cls)}
    return _FIELD_TYPES[cls]


def decode_dict(line: bytes | str) -> dict[str, Any]:
    if isinstance(line, bytes):
        if len(line) > MAX_LINE_BYTES:
            raise ProtocolError("The line is longer than the engine accepts.", f"Keep lines under {MAX_LINE_BYTES} bytes.")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("The line is not UTF-8.", "Send JSON text encoded as UTF-8.") from None
    try:
        data = json.loads(line, parse_constant=_NonFinite, parse_float=_finite_float)
    except ValueError:
        raise ProtocolError("The line is not valid JSON.", "Send one JSON object per line.") from None
    except RecursionError:  # the decoder gave up at the interpreter's recursion limit
        data = _TOO_DEEP
    if data is _TOO_DEEP or _too_deep(data):
        raise ProtocolError("The message is nested too deeply.", f"Keep JSON nesting under {MAX_DEPTH} levels.")
    where = _non_finite(data)
    if where is not None:
        field, value = where
        raise ProtocolError(f"{field} is {value}, and a number must be finite.",
                            "Send a finite number (NaN and Infinity are not JSON numbers).")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("A message must be a JSON object with a \"type\".", "For example {\"type\": \"status\"}.")
    return data


_TOO_DEEP = object()


class _NonFinite(str):
    """``NaN``, ``Infinity`` or ``-Infinity`` as Python's decoder accepts them (JSON has no such numbers):
    kept as a marker, so the message can say which field held one (the engine could not send it back)."""


def _finite_float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(f"{text} (too large)")


def _non_finite(data: Any) -> tuple[str, str] | None:
    """The dotted path and text of the first non-finite number in ``data`` (already checked shallow)."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _NonFinite):
            return path or "the message", str(value)
        if isinstance(value, dict):
            stack.extend((child, f"{path}.{key}" if path else str(key)) for key, child in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(value))))
    return None


def _too_deep(data: Any) -> bool:
    """Whether ``data`` nests objects or lists deeper than ``MAX_DEPTH`` (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def decode_request(line: bytes | str) -> Request:
    data = decode_dict(line)
    cls = REQUEST_TYPES.get(data["type"])
    if cls is None:
        raise ProtocolError(f"Unknown request type {data['type']!r}.", f"Known: {', '.join(REQUEST_TYPES)}.")
    return _build(cls, data)  # type: ignore[return-value]


def decode_message(line: bytes | str) -> Message:
    """Decode anything the engine sends: a reply, an error or an event."""
    data = decode_dict(line)
    cls = EVENT_TYPES.get(data["type"]) or REPLY_TYPES.get(data["type"])
    if cls is None:
        raise ProtocolError(f"Unknown message type {data['type']!r}.")
    return _build(cls, data)


def make_event(type_name: str, seq: int, **fields: Any) -> Event:
    cls = EVENT_TYPES[type_name]
    return _build(cls, {"seq": seq, "time": time.time(), **fields})  # type: ignore[return-value]
