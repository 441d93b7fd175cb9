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
import itertools
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

from engine import address
from engine.errors import UserError
from engine.protocol import (
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


def _not_running(ws: Workspace) -> EngineUnavailable:
    return EngineUnavailable(f"No engine is running for {ws.root}.",
                             f"Start it with: swapwizard engine start {ws.root}")


class EngineClient:
    """A blocking connection to one workspace's engine."""

    def __init__(self, ws: Workspace | str, client_name: str = "cli", timeout: float | None = 10.0) -> None:
        self.ws = ws if isinstance(ws, Workspace) else Workspace(ws)
        self.client_name = client_name
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: Any = None
        self._ids = itertools.count(1)
        self._pending_events: list[Event] = []
        self.hello: dict[str, Any] = {}

    def connect(self) -> EngineClient:
        try:
            self._sock = address.connect(self.ws.socket_path, timeout=self.timeout)
        except (FileNotFoundError, ConnectionRefusedError):
            raise _not_running(self.ws) from None
        self._file = self._sock.makefile("rb")
        self.hello = self.request("hello", version=PROTOCOL_VERSION, client=self.client_name)
        return self

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
        self._sock.sendall(encode(data))

    def read_message(self, timeout: float | None = None) -> Message:
        assert self._sock is not None and self._file is not None, "not connected"
        self._sock.settimeout(timeout if timeout is not None else self.timeout)
        line = self._file.readline(MAX_LINE_BYTES + 1)
        if not line:
            raise EngineUnavailable("The engine closed the connection.",
                                    f"See the engine log: {self.ws.engine_log_path}")
        return decode_message(line)

    def request(self, type_name: str, **fields: Any) -> dict[str, Any]:
        """Send a request and return its reply's result; an engine error raises ``EngineError``."""
        request_id = next(self._ids)
        self.send({"type": type_name, "id": request_id, **fields})
        while True:
            message = self.read_message()
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

    async def connect(self) -> AsyncEngineClient:
        sock = None
        try:
            sock = address.connect(self.ws.socket_path, timeout=5.0)
            sock.setblocking(False)
            self._reader, self._writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_LINE_BYTES + 1)
        except (FileNotFoundError, ConnectionRefusedError):
            if sock is not None:
                sock.close()
            raise _not_running(self.ws) from None
        self._read_task = asyncio.create_task(self._read_loop())
        self.hello = await self.request("hello", version=PROTOCOL_VERSION, client=self.client_name)
        return self

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
                future = self._replies.pop(getattr(message, "id", None), None)
                if future is not None and not future.done():
                    if isinstance(message, Error):
                        future.set_exception(EngineError(message.error, message.hint))
                    else:
                        future.set_result(message.result)  # type: ignore[union-attr]
        except (OSError, ValueError, asyncio.IncompleteReadError):
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
        self._writer.write(encode({"type": type_name, "id": request_id, **fields}))
        await self._writer.drain()
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
