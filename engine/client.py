"""Clients of a workspace's engine: a blocking one (CLI, tests) and an asyncio one (the wizard).

Standard library only, so the TUI can import it::

    with EngineClient(ws) as client:          # connects and says hello
        client.status()
        job_id = client.submit("extract", {"side": "both"})["job_id"]
        for event in client.events(from_seq=0):   # replays history, then follows live
            ...
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from engine import address
from engine.errors import UserError
from engine.launcher import engine_pid
from engine.protocol import (
    BUSY_ERROR,
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Error,
    Event,
    Message,
    Reply,
    decode_message,
    encode,
)
from engine.workspace import Workspace


class EngineError(UserError):
    """The engine answered a request with an error (its sentence and hint)."""


class EngineUnavailable(UserError):
    """No engine answers on the workspace's socket."""


class EngineBusy(EngineUnavailable):
    """An engine runs (it holds the workspace's lock) but took no connection within the wait."""


#: How long a client keeps retrying while an engine runs but cannot take its connection yet.
CONNECT_WAIT_S = 20.0
#: Connect errors that mean "not now" (a full accept queue, a socket not listening yet), not "no engine".
_RETRY = (errno.EAGAIN, errno.ECONNREFUSED, errno.ENOENT, errno.ETIMEDOUT, errno.EINTR, errno.ECONNRESET)


def _not_running(ws: Workspace) -> EngineUnavailable:
    return EngineUnavailable(f"No engine is running for {ws.root}.",
                             f"Start it with: swapwizard engine start {ws.root}")


def _connect_once(ws: Workspace, timeout: float) -> socket.socket | None:
    """A connection, or None when the socket cannot take one now; UserError when it never will."""
    try:
        return address.connect(ws.socket_path, timeout=max(0.05, min(10.0, timeout)))
    except address.ForeignPeer as exc:
        raise EngineUnavailable(f"The engine socket of {ws.root} is served by another user (uid {exc.uid}); "
                                "swapwizard does not talk to it.",
                                f"Check who owns {ws.state_dir} (ls -ld); remove it if it is not yours.") from None
    except (TimeoutError, BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        if exc.errno in _RETRY:
            return None
        raise EngineUnavailable(f"Cannot connect to the engine of {ws.root}: {exc.strerror or exc}.",
                                f"Check {ws.socket_path}.") from None


class _Backoff:
    """Retry pacing while the lock says an engine runs; decides "busy" vs "not running" by the lock."""

    def __init__(self, ws: Workspace, wait: float) -> None:
        self.ws = ws
        self.deadline = time.monotonic() + wait
        self.delay = 0.02

    def next_delay(self) -> float:
        """Seconds to wait before the next try; raises when no engine runs or the wait is over."""
        pid = engine_pid(self.ws)
        if pid is None:
            raise _not_running(self.ws)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise EngineBusy(f"The engine of {self.ws.root} (pid {pid}) runs but is too busy to take a connection.",
                             "Try again in a moment; its log says what it is doing: "
                             f"{self.ws.engine_log_path}")
        delay, self.delay = min(self.delay, left), min(self.delay * 2, 0.2)
        return delay

    def left(self) -> float:
        return self.deadline - time.monotonic()


class EngineClient:
    """A blocking connection to one workspace's engine."""

    def __init__(self, ws: Workspace | str, client_name: str = "cli", timeout: float | None = 10.0,
                 connect_wait: float = CONNECT_WAIT_S) -> None:
        self.ws = ws if isinstance(ws, Workspace) else Workspace(ws)
        self.client_name = client_name
        self.timeout = timeout
        self.connect_wait = connect_wait
        self._sock: socket.socket | None = None
        self._file: Any = None
        self._ids = itertools.count(1)
        self._pending_events: list[Event] = []
        self.hello: dict[str, Any] = {}

    def connect(self) -> EngineClient:
        """Connect and say hello; while the engine runs but is busy, retry with backoff."""
        backoff = _Backoff(self.ws, self.connect_wait)
        while True:
            self._sock = _connect_once(self.ws, backoff.left())
            if self._sock is not None:
                self._sock.settimeout(self.timeout)
                self._file = self._sock.makefile("rb")
                try:
                    self.hello = self.request("hello", version=PROTOCOL_VERSION, client=self.client_name)
                    return self
                except EngineError as exc:
                    if exc.message != BUSY_ERROR:
                        self.close()
                        raise
                except EngineUnavailable:
                    pass  # closed before it answered (an engine stopping, or shedding connections)
                self.close()
            time.sleep(backoff.next_delay())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def __enter__(self) -> EngineClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- low level ---------------------------------------------------------------------------
    def send(self, data: dict[str, Any]) -> None:
        assert self._sock is not None, "not connected"
        try:
            self._sock.sendall(encode(data))
        except OSError as exc:
            raise self._broken(exc) from None

    def read_message(self, timeout: float | None = None) -> Message:
        """The next message; ``TimeoutError`` after ``timeout``, ``EngineUnavailable`` once the engine hung up."""
        assert self._sock is not None and self._file is not None, "not connected"
        self._sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            line = self._file.readline(MAX_LINE_BYTES + 1)
        except TimeoutError:
            raise
        except OSError as exc:
            raise self._broken(exc) from None
        if not line:
            raise EngineUnavailable("The engine closed the connection.",
                                    f"See the engine log: {self.ws.engine_log_path}")
        message = decode_message(line)
        if isinstance(message, Error) and message.id is None:  # the engine's last word before it hangs up
            raise EngineUnavailable(message.error, message.hint)
        return message

    def _broken(self, exc: OSError) -> EngineUnavailable:
        return EngineUnavailable(f"The connection to the engine broke ({exc.strerror or type(exc).__name__}).",
                                 f"See the engine log: {self.ws.engine_log_path}")

    def request(self, type_name: str, **fields: Any) -> dict[str, Any]:
        """Send a request and return its reply's result; an engine error raises ``EngineError``."""
        request_id = next(self._ids)
        self.send({"type": type_name, "id": request_id, **fields})
        while True:
            try:
                message = self.read_message()
            except TimeoutError:
                raise EngineBusy(f"The engine did not answer {type_name!r} within {self.timeout} s.",
                                 f"It may be overloaded; see {self.ws.engine_log_path}") from None
            if isinstance(message, Event):
                self._pending_events.append(message)
                continue
            if getattr(message, "id", None) != request_id:
                continue
            if isinstance(message, Error):
                raise EngineError(message.error, message.hint)
            assert isinstance(message, Reply)
            return message.result

    # -- requests ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self.request("status")

    def submit(self, kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("submit", kind=kind, params=params or {})

    def cancel(self, job_id: str | None = None) -> dict[str, Any]:
        return self.request("cancel", job_id=job_id)

    def command(self, command: str, args: dict[str, Any] | None = None, job_id: str | None = None) -> dict[str, Any]:
        return self.request("command", command=command, args=args or {}, job_id=job_id)

    def shutdown(self) -> dict[str, Any]:
        return self.request("shutdown")

    def subscribe(self, from_seq: int = 0) -> dict[str, Any]:
        return self.request("subscribe", from_seq=from_seq)

    def next_event(self, timeout: float | None = None) -> Event:
        """The next event on a subscribed connection (raises ``TimeoutError`` after ``timeout``)."""
        if self._pending_events:
            return self._pending_events.pop(0)
        while True:
            message = self.read_message(timeout=timeout)
            if isinstance(message, Event):
                return message

    def events(self, from_seq: int = 0, timeout: float | None = None) -> Iterator[Event]:
        """Subscribe, then yield replayed and live events until the connection closes."""
        self.subscribe(from_seq)
        while True:
            try:
                yield self.next_event(timeout=timeout)
            except EngineUnavailable:
                return


class AsyncEngineClient:
    """An asyncio connection to one workspace's engine (for the wizard's socket worker)."""

    def __init__(self, ws: Workspace | str, client_name: str = "tui") -> None:
        self.ws = ws if isinstance(ws, Workspace) else Workspace(ws)
        self.client_name = client_name
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._replies: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._read_task: asyncio.Task[None] | None = None
        self.hello: dict[str, Any] = {}

    async def connect(self, connect_wait: float = CONNECT_WAIT_S) -> AsyncEngineClient:
        """Connect and say hello; while the engine runs but is busy, retry with backoff."""
        backoff = _Backoff(self.ws, connect_wait)
        while True:
            sock = _connect_once(self.ws, backoff.left())
            if sock is not None:
                sock.setblocking(False)
                self._reader, self._writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_LINE_BYTES + 1)
                self._events = asyncio.Queue()
                self._read_task = asyncio.create_task(self._read_loop())
                try:
                    self.hello = await self.request("hello", version=PROTOCOL_VERSION, client=self.client_name)
                    return self
                except EngineError as exc:
                    if exc.message != BUSY_ERROR:
                        await self.close()
                        raise
                except EngineUnavailable:
                    pass
                await self.close()
            await asyncio.sleep(backoff.next_delay())

    async def close(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass

    async def __aenter__(self) -> AsyncEngineClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                message = decode_message(line)
                if isinstance(message, Event):
                    await self._events.put(message)
                    continue
                if isinstance(message, Error) and message.id is None:  # its last word before it hangs up
                    break
                future = self._replies.pop(getattr(message, "id", None), None)
                if future is not None and not future.done():
                    if isinstance(message, Error):
                        future.set_exception(EngineError(message.error, message.hint))
                    else:
                        future.set_result(message.result)  # type: ignore[union-attr]
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(EngineUnavailable("The engine closed the connection."))
            self._replies.clear()
            await self._events.put(None)

    async def request(self, type_name: str, **fields: Any) -> dict[str, Any]:
        assert self._writer is not None, "not connected"
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        try:
            self._writer.write(encode({"type": type_name, "id": request_id, **fields}))
            await self._writer.drain()
        except OSError as exc:
            self._replies.pop(request_id, None)
            raise EngineUnavailable(f"The connection to the engine broke ({exc.strerror or type(exc).__name__}).",
                                    f"See the engine log: {self.ws.engine_log_path}") from None
        return await future

    async def status(self) -> dict[str, Any]:
        return await self.request("status")

    async def submit(self, kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("submit", kind=kind, params=params or {})

    async def cancel(self, job_id: str | None = None) -> dict[str, Any]:
        return await self.request("cancel", job_id=job_id)

    async def command(self, command: str, args: dict[str, Any] | None = None,
                      job_id: str | None = None) -> dict[str, Any]:
        return await self.request("command", command=command, args=args or {}, job_id=job_id)

    async def events(self, from_seq: int = 0) -> AsyncIterator[Event]:
        """Subscribe, then yield replayed and live events until the connection closes."""
        await self.request("subscribe", from_seq=from_seq)
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event
