"""The engine's connection hub: clients, their handshake, requests, event fan-out and replay.

Every event is appended to the workspace's event log and pushed to each subscribed client; a client
that subscribes replays the log from the ``seq`` it asks for, then follows live (events published
during its replay are held and sent after it, in order). Nothing a client does can exhaust the
engine:

- only the engine's own user may connect (``SO_PEERCRED``), and at most ``MAX_CONNECTIONS`` at once:
  at the limit the oldest connection that has sent nothing yet makes room, else the new one is told
  ``BUSY_ERROR`` and closed (clients retry);
- a connection must say ``hello`` within ``HELLO_TIMEOUT_S`` and, until it subscribes, send a request
  at least every ``[engine] connection_idle_s``, or it is closed with a one-line ``error`` saying why;
- a line over ``MAX_LINE_BYTES``, a wrong protocol version, or any request before ``hello``: one
  ``error`` line, then the connection is closed;
- what the engine has not yet sent a client is bounded (``CLIENT_BUFFER_BYTES``): a replay reads the
  log ``REPLAY_BATCH_BYTES`` at a time and waits for the client to read, and a client that falls that
  far behind on live events is dropped with an ``error`` line (it can reconnect and replay from its
  last ``seq``);
- a client whose socket takes nothing of what the engine sends for ``[engine] connection_idle_s``
  (a subscriber that stopped reading) is dropped the same way, and what it held is freed.

Requests other than ``hello`` and ``subscribe`` go to ``answer(request)`` (the engine's).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import logging
import os
import sys
import termios
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine import __version__, address
from engine.errors import UserError
from engine.events import EventLog
from engine.protocol import (
    BUSY_ERROR,
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Hello,
    ProtocolError,
    Request,
    Subscribe,
    decode_request,
    encode,
)
from engine.workspace import Workspace

log = logging.getLogger("engine.hub")

#: Connections open at once (each is a file descriptor and a little memory).
MAX_CONNECTIONS = 256
#: Bytes queued for one client (not yet taken by its socket) before it counts as not reading.
CLIENT_BUFFER_BYTES = 4 << 20
#: Connections taken from the kernel's queue per turn of the event loop.
ACCEPT_BATCH = 32
#: A connection that has not said hello after this long is closed.
HELLO_TIMEOUT_S = 10.0
#: A dropped client's socket is given this long to take the line that says why, then cut.
DROP_GRACE_S = 10.0
#: Bytes of replayed events read from the log per step (a replay never holds the whole log in memory,
#: whatever the size of its events).
REPLAY_BATCH_BYTES = 256 << 10
#: The end-of-stream marker in a client's queue.
CLOSE = b""


def give_back_memory() -> None:
    """Return the heap's free pages to the system (glibc keeps what a replay or a stuck client's queue
    used: the engine stayed at 485 MB after eight such clients had gone). A few ms; a no-op elsewhere."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc (musl has no malloc_trim and gives memory back itself)
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc() if sys.platform.startswith("linux") else None


def _error(error: str, hint: str = "", request_id: Any = None) -> bytes:
    return encode({"type": "error", "id": request_id, "ok": False, "error": error, "hint": hint})


@dataclass(eq=False)
class Client:
    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader | None = None
    #: Called once when the client is dropped (the hub forgets it at once, not when its socket closes).
    on_drop: Callable[[Client], None] | None = None
    out: deque[bytes] = field(default_factory=deque)
    out_bytes: int = 0
    held: list[tuple[int, bytes]] = field(default_factory=list)
    held_bytes: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    room: asyncio.Event = field(default_factory=asyncio.Event)
    greeted: bool = False
    subscribed: bool = False
    replaying: bool = False
    dropped: bool = False

    def silent(self) -> bool:
        """Whether this connection has sent nothing at all yet (nothing read, nothing waiting)."""
        if self.greeted or (self.reader is not None and len(getattr(self.reader, "_buffer", b""))):
            return False
        sock = self.writer.get_extra_info("socket")
        try:
            waiting = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, AttributeError, ValueError):
            return True
        return int.from_bytes(waiting, sys.byteorder) == 0

    def buffered(self) -> int:
        """Bytes the engine holds for this client (queued, held during replay, in the transport)."""
        return self.out_bytes + self.held_bytes + self.writer.transport.get_write_buffer_size()

    def push(self, line: bytes) -> None:
        if self.dropped:
            return
        if self.buffered() + len(line) > CLIENT_BUFFER_BYTES:
            self.fell_behind()
            return
        self.out.append(line)
        self.out_bytes += len(line)
        self.wake.set()

    def hold(self, seq: int, line: bytes) -> None:
        """Keep a live event until this client's replay has caught up."""
        if self.buffered() + len(line) > CLIENT_BUFFER_BYTES:
            self.fell_behind()
            return
        self.held.append((seq, line))
        self.held_bytes += len(line)

    def finish(self) -> None:
        """Close after what is queued has been sent."""
        self.out.append(CLOSE)
        self.wake.set()

    def fell_behind(self) -> None:
        log.warning("a client stopped reading; disconnecting it (it can reconnect and replay)")
        self.drop(f"Disconnected: this connection fell more than {CLIENT_BUFFER_BYTES >> 20} MiB behind "
                  "the engine's events.", "Read events as they come; reconnect and subscribe from the "
                  "last seq you saw to replay what you missed.")

    def drop(self, error: str, hint: str) -> None:
        """Forget what is queued, send one ``error`` line saying why, and close (cut after a grace period)."""
        if self.dropped:
            return
        self.dropped = True
        if self.on_drop is not None:
            self.on_drop(self)
        self.out.clear()
        self.held.clear()
        self.out_bytes = self.held_bytes = 0
        self.wake.set()
        self.room.set()
        transport = self.writer.transport
        if not transport.is_closing():
            transport.write(_error(error, hint))
            transport.close()
            asyncio.get_running_loop().call_later(DROP_GRACE_S, transport.abort)


class Hub:
    def __init__(self, ws: Workspace, events: EventLog, answer: Callable[[Request], dict[str, Any]],
                 idle_timeout_s: float) -> None:
        self.ws = ws
        self.events = events
        self.answer = answer
        self.idle_timeout_s = idle_timeout_s
        self.hello_timeout_s = min(HELLO_TIMEOUT_S, idle_timeout_s)
        self.clients: dict[Client, None] = {}  # a set that keeps the order they came in
        self._senders: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None

    # -- events --------------------------------------------------------------------------------
    def emit(self, type_name: str, **fields: Any) -> None:
        """Append an event to the log and send it to every subscriber."""
        event, line = self.events.append(type_name, **fields)
        for client in list(self.clients):
            if not client.subscribed or client.dropped:
                continue
            if client.replaying:
                client.hold(event.seq, line)
            else:
                client.push(line)

    def next_seq(self) -> int:
        return self.events.last_seq + 1

    def has_clients(self) -> bool:
        """Whether anyone who said hello is connected (a user at the wizard, a command following a job)."""
        return any(client.greeted and not client.dropped for client in self.clients)

    # -- listening -------------------------------------------------------------------------------
    async def listen(self) -> None:
        # The caller holds the workspace lock, so any socket file there is a stale one from a killed engine.
        with contextlib.suppress(FileNotFoundError):
            self.ws.socket_path.unlink()
        sock = address.bind(self.ws.socket_path)
        # asyncio takes up to ``backlog`` connections per loop turn; a small batch keeps each turn short
        # under a flood of connections (a client's hello is answered a few turns after its connect),
        # while the kernel's queue stays LISTEN_BACKLOG long.
        self._server = await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_LINE_BYTES + 1,
                                                       backlog=ACCEPT_BATCH)
        sock.listen(address.LISTEN_BACKLOG)

    async def close(self) -> None:
        """Stop listening; send each client what is queued for it, then close it."""
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            client.finish()
        if self._senders:
            await asyncio.wait(list(self._senders), timeout=2)
        for client in list(self.clients):
            client.writer.transport.abort()

    # -- one connection --------------------------------------------------------------------------
    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        try:
            pid, uid, _ = address.peer(writer.get_extra_info("socket"))
        except (OSError, TypeError):
            pid, uid = 0, -1
        if uid != os.geteuid():
            log.warning("refused a connection from another user (uid %s, pid %s)", uid, pid)
            writer.write(_error("This engine answers only its owner's connections."))
        elif len(self.clients) < MAX_CONNECTIONS or self._make_room():
            return True
        else:
            log.warning("refused a connection: %d are open, the limit", MAX_CONNECTIONS)
            writer.write(_error(BUSY_ERROR, "Try again in a moment."))
        writer.close()
        return False

    def _forget(self, client: Client) -> None:
        self.clients.pop(client, None)

    def _make_room(self) -> bool:
        """At the limit, the oldest connection that has sent nothing gives its place to a new one (one
        whose hello is on its way keeps it, however many connections arrive in the meantime)."""
        for client in list(self.clients):  # insertion order: oldest first
            if client.silent():
                client.drop("Closed: the engine is at its connection limit and this connection had not said hello.",
                            "Say hello as soon as you connect.")
                return True
        return False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit(writer):
            return
        client = Client(writer, reader, on_drop=self._forget)
        self.clients[client] = None
        sender = asyncio.create_task(self._send_loop(client))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)
        try:
            await self._read_loop(client, reader)
        finally:
            self.clients.pop(client, None)
            if not client.dropped:
                client.finish()
                with contextlib.suppress(BaseException):  # also CancelledError at engine shutdown
                    await asyncio.wait_for(asyncio.shield(sender), timeout=5)
            sender.cancel()
            writer.close()
            if client.subscribed:
                give_back_memory()

    async def _read_loop(self, client: Client, reader: asyncio.StreamReader) -> None:
        while not client.dropped:
            timeout = None if client.subscribed else self.idle_timeout_s if client.greeted else self.hello_timeout_s
            try:
                async with asyncio.timeout(timeout):  # in this task: a line stays in the reader until used
                    line = await reader.readline()
            except TimeoutError:
                if client.greeted:
                    client.drop(f"Closed: no request for {self.idle_timeout_s:g} s.",
                                "Connect again when you need the engine.")
                else:
                    client.drop(f"Closed: no hello within {self.hello_timeout_s:g} s.",
                                f'Send {{"type": "hello", "version": {PROTOCOL_VERSION}}} first.')
                return
            except (asyncio.LimitOverrunError, ValueError):
                client.push(_error("The line is longer than the engine accepts.",
                                   f"Keep lines under {MAX_LINE_BYTES} bytes."))
                return
            except (ConnectionError, OSError):
                return
            if not line or not line.endswith(b"\n"):
                return  # the client went away (mid-line or not)
            if line.strip() and not await self._request(client, line):
                return

    async def _request(self, client: Client, line: bytes) -> bool:
        """Answer one request line; False closes the connection."""
        request_id = None
        try:
            request = decode_request(line)
            request_id = request.id
            if not client.greeted:
                if not isinstance(request, Hello):
                    client.push(_error("Say hello first.", f'Send {{"type": "hello", "version": {PROTOCOL_VERSION}}}.',
                                       request_id))
                    return False
                if request.version != PROTOCOL_VERSION:
                    client.push(_error(f"This engine speaks protocol {PROTOCOL_VERSION}, not {request.version}.",
                                       "Use the swapwizard that started this engine, or stop it and start it "
                                       "again with yours.", request_id))
                    return False
                client.greeted = True
            if isinstance(request, Subscribe):
                await self._subscribe(client, request)
                return True
            result = self._hello() if isinstance(request, Hello) else self.answer(request)
            client.push(encode({"type": "reply", "id": request_id, "ok": True, "result": result}))
        except (ProtocolError, UserError) as exc:
            client.push(_error(exc.message, exc.hint, request_id))
            return client.greeted  # the first line must be a good hello
        except Exception as exc:  # noqa: BLE001 - a request must never take the engine down
            log.exception("request failed")
            client.push(_error(f"The engine could not handle that request ({type(exc).__name__}).",
                               f"See {self.ws.engine_log_path}.", request_id))
        return True

    def _hello(self) -> dict[str, Any]:
        return {"version": PROTOCOL_VERSION, "engine_version": __version__, "pid": os.getpid(),
                "workspace": str(self.ws.root)}

    async def _send_loop(self, client: Client) -> None:
        writer = client.writer
        try:
            while not client.dropped:
                if not client.out:
                    client.room.set()
                    client.wake.clear()
                    await client.wake.wait()
                    continue
                line = client.out.popleft()
                client.out_bytes -= len(line)
                if line == CLOSE:
                    await writer.drain()
                    return
                writer.write(line)
                if not await self._drained(writer):
                    client.drop(f"Disconnected: this connection took nothing the engine sent for "
                                f"{self.idle_timeout_s:g} s.", "Read events as they come; reconnect and subscribe "
                                "from the last seq you saw to replay what you missed.")
                    return
        except (ConnectionError, OSError):
            client.dropped = True
            client.room.set()

    async def _drained(self, writer: asyncio.StreamWriter) -> bool:
        """Wait until the transport is below its high-water mark (at once, usually); False when the
        peer took nothing at all for ``idle_timeout_s`` (a slow reader that takes something waits on)."""
        transport = writer.transport
        while True:
            before = transport.get_write_buffer_size()
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    await writer.drain()
                return True
            except TimeoutError:
                if transport.get_write_buffer_size() >= before:
                    log.warning("a client took nothing for %g s; disconnecting it", self.idle_timeout_s)
                    return False

    async def _subscribe(self, client: Client, request: Subscribe) -> None:
        if client.subscribed:
            raise ProtocolError("This connection is already subscribed.", "Open a new connection to subscribe again.")
        upto = self.events.last_seq
        client.subscribed = client.replaying = True
        client.push(encode({"type": "reply", "id": request.id, "ok": True, "result": {"last_seq": upto}}))
        seq, resume = max(0, request.from_seq), None
        while seq <= upto and not client.dropped:
            lines, seq, resume = await asyncio.to_thread(self.events.replay_batch, seq, upto, REPLAY_BATCH_BYTES,
                                                         resume)
            for line in lines:
                while client.out_bytes > CLIENT_BUFFER_BYTES // 4 and not client.dropped:
                    client.room.clear()
                    await client.room.wait()  # the client reads slowly: wait for it, keep memory flat
                client.push(line)
        held, client.held, client.held_bytes = client.held, [], 0
        for seq_held, line in held:
            if seq_held > upto:
                client.push(line)
        client.replaying = False
