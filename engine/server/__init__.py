"""The engine server: one per workspace, an asyncio loop on a Unix socket.

It keeps a queue of jobs (one runs at a time; later submissions wait their turn), runs each in a
child process, writes every event to the workspace's event log and streams it to every subscribed
client. Nothing a client sends can stop it: bad lines get an ``error`` reply, a line over the size
limit or a client that does not read its events gets disconnected.

Run it with ``python -m engine serve WORKSPACE`` (normally started detached by the CLI or wizard).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine import __version__, address
from engine.errors import UserError
from engine.events import EventLog, read_events
from engine.jobs import get_kind, job_kinds, params_to_dict
from engine.protocol import (
    END_EVENTS,
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Cancel,
    Command,
    Hello,
    ProtocolError,
    Request,
    Shutdown,
    StatusRequest,
    Submit,
    Subscribe,
    decode_request,
    encode,
)
from engine.runner import CANCEL_GRACE_S, TERMINATE_GRACE_S, JobProcess, WorkerProcess
from engine.workspace import STEPS, Workspace

log = logging.getLogger("engine.server")

#: Outgoing lines buffered per client before it counts as not reading and is disconnected.
CLIENT_QUEUE_LIMIT = 20000


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None) -> None:
        super().__init__(f"an engine already runs for this workspace (pid {pid})")
        self.pid = pid


@dataclass
class Job:
    job_id: str
    kind: str
    params: dict[str, Any]
    steps: list[str]
    queued_seq: int
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


@dataclass(eq=False)
class Client:
    writer: asyncio.StreamWriter
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE_LIMIT))
    subscribed: bool = False
    replaying: bool = False
    held: list[tuple[int, bytes]] = field(default_factory=list)
    dropped: bool = False

    def push(self, line: bytes) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped = True
            log.warning("a client stopped reading; disconnecting it (it can reconnect and replay)")
            self.writer.close()


class EngineServer:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.started = time.time()
        self.clients: set[Client] = set()
        #: Two lanes: "main" runs the pipeline's jobs one at a time, each in a new process;
        #: "interactive" runs short jobs (previews) beside it in one warm, persistent process.
        self.lanes: dict[str, Lane] = {"main": Lane("main"), "interactive": Lane("interactive")}
        self.events: EventLog | None = None
        self._lock_file: Any = None
        self._server: asyncio.AbstractServer | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle ------------------------------------------------------------------------------
    def acquire_lock(self) -> None:
        self.ws.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_file = open(self.ws.lock_path, "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = int(self.ws.pid_path.read_text().strip())
            except (OSError, ValueError):
                pid = None
            raise AlreadyRunning(pid) from None

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.acquire_lock()
        self.events = EventLog(self.ws.events_path)
        self._recover_interrupted()
        # We hold the lock, so any socket file is a stale one left by a killed engine.
        with contextlib.suppress(FileNotFoundError):
            self.ws.socket_path.unlink()
        sock = address.bind(self.ws.socket_path)
        self._server = await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_LINE_BYTES + 1)
        self._write_pid()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._stop.set)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.emit("engine_started", pid=os.getpid(), version=__version__)
        log.info("engine %s serving %s (pid %d)", __version__, self.ws.root, os.getpid())
        schedulers = [asyncio.create_task(self._scheduler(lane)) for lane in self.lanes.values()]
        await self._stop.wait()
        log.info("engine stopping")
        for scheduler in schedulers:
            scheduler.cancel()
        await self._stop_running_jobs()
        self._server.close()
        for client in list(self.clients):
            client.push(b"")
            client.writer.close()
        with contextlib.suppress(OSError):
            self.ws.socket_path.unlink()
        with contextlib.suppress(OSError):
            self.ws.pid_path.unlink()
        self.events.close()

    def _write_pid(self) -> None:
        try:
            from engine.atomic import atomic_write_text

            atomic_write_text(self.ws.pid_path, f"{os.getpid()}\n")
        except OSError as exc:
            log.error("cannot write the pid file: %s", exc)

    def _recover_interrupted(self) -> None:
        """Close jobs and steps a killed engine left open, so clients see what happened."""
        open_jobs: dict[str, dict[str, Any]] = {}
        for event in read_events(self.ws.events_path):
            kind = event.get("type")
            if kind in ("job_started",):
                open_jobs[event.get("job_id", "")] = event
            elif kind in END_EVENTS:
                open_jobs.pop(event.get("job_id", ""), None)
        for job_id in open_jobs:
            self.emit("job_failed", job_id=job_id, error="The engine stopped while this job was running.",
                      hint="Run the step again: it resumes from its last saved point.")
        try:
            for step, record in self.ws.steps().items():
                if record.get("status") == "running":
                    self.ws.set_step(step, "failed", error="interrupted: the engine stopped", params=record.get("params"))
        except OSError as exc:
            log.error("cannot update the step state: %s", exc)

    # -- events ----------------------------------------------------------------------------------
    def emit(self, type_name: str, **fields: Any) -> None:
        assert self.events is not None
        event, line = self.events.append(type_name, **fields)
        for client in list(self.clients):
            if not client.subscribed:
                continue
            if client.replaying:
                client.held.append((event.seq, line))
            else:
                client.push(line)

    def _emit_threadsafe(self, type_name: str, **fields: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(lambda: self.emit(type_name, **fields))

    # -- jobs ------------------------------------------------------------------------------------
    @property
    def running(self) -> Job | None:
        """The main lane's running job (what ``status`` calls *the* running job)."""
        return self.lanes["main"].running

    def submit(self, kind: str, raw_params: dict[str, Any]) -> dict[str, Any]:
        job_kind = get_kind(kind)
        parsed = job_kind.parse_params(raw_params)
        params = params_to_dict(parsed)
        steps = job_kind.steps(parsed)
        lane = self.lanes["interactive" if getattr(job_kind.module, "LANE", "main") == "interactive" else "main"]
        if lane.name == "interactive":  # a newer preview makes a waiting one pointless
            for stale in [j for j in lane.queue if j.kind == kind]:
                lane.queue.remove(stale)
                self.emit("job_cancelled", job_id=stale.job_id)
        seq = (self.events.last_seq if self.events else 0) + 1
        job = Job(job_id=f"job-{seq}", kind=kind, params=params, steps=steps, queued_seq=seq)
        self.emit("job_queued", job_id=job.job_id, kind=kind, params=params)
        lane.queue.append(job)
        lane.wake.set()
        return {"job_id": job.job_id, "position": len(lane.queue) - 1 + (1 if lane.running else 0)}

    async def _scheduler(self, lane: Lane) -> None:
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
                self.emit("job_failed", job_id=job.job_id, error="The engine could not run this job.",
                          hint=f"See {self.ws.engine_log_path}.")
            finally:
                lane.running = None

    def _set_steps(self, job: Job, status: str, **info: Any) -> None:
        for step in job.steps:
            if step in STEPS:
                try:
                    self.ws.set_step(step, status, job_id=job.job_id, params=job.params, **info)
                except OSError as exc:
                    self.emit("log", job_id=job.job_id, level="error",
                              message=f"Cannot record the step state ({exc}); the disk may be full or read-only.")

    def _start_process(self, job: Job, lane: Lane) -> JobProcess:
        if lane.name != "interactive":
            return JobProcess(str(self.ws.root), job.kind, job.params)
        if lane.worker is None or not lane.worker.alive():
            lane.worker = WorkerProcess(str(self.ws.root))
        lane.worker.start_job(job.kind, job.params)
        return lane.worker

    async def _run(self, job: Job, lane: Lane) -> None:
        assert self._loop is not None
        job.started = time.time()
        job.process = self._start_process(job, lane)
        job.started_seq = (self.events.last_seq if self.events else 0) + 1
        self.emit("job_started", job_id=job.job_id, kind=job.kind, params=job.params, pid=job.process.pid)
        self._set_steps(job, "running")
        end: dict[str, Any] = {}
        done = asyncio.Event()

        def pump() -> None:
            assert job.process is not None
            while True:
                message = job.process.receive()
                if message is None:
                    break
                if message.get("type") == "_end":
                    end.update(message)
                    break
                kind = message.pop("type", "log")
                self._emit_threadsafe(kind, job_id=job.job_id, **message)
            self._loop.call_soon_threadsafe(done.set)

        threading.Thread(target=pump, name=f"pump-{job.job_id}", daemon=True).start()
        await done.wait()
        exitcode = None
        if not job.process.persistent or not end:
            exitcode = await asyncio.to_thread(job.process.join)
            if job.process.persistent:
                lane.worker = None
        outcome = end.get("outcome")
        if outcome == "finished":
            self.emit("job_finished", job_id=job.job_id, result=end.get("result", {}))
            self._set_steps(job, "done", result=end.get("result", {}))
        elif outcome == "cancelled" or (job.cancel_requested and outcome is None):
            self.emit("job_cancelled", job_id=job.job_id)
            self._set_steps(job, "todo", cancelled=True)
        else:
            error = end.get("error") or f"The {job.kind} job process died unexpectedly (exit code {exitcode})."
            hint = end.get("hint") or ("It may have run out of memory or been killed; see the engine log "
                                       f"{self.ws.engine_log_path}.")
            self.emit("job_failed", job_id=job.job_id, error=error, hint=hint)
            self._set_steps(job, "failed", error=error, hint=hint)

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

    async def _stop_running_jobs(self) -> None:
        for lane in self.lanes.values():
            if lane.running is not None and lane.running.process is not None:
                self._cancel_running(lane, lane.running)
        deadline = time.monotonic() + CANCEL_GRACE_S + TERMINATE_GRACE_S + 5
        while any(lane.running for lane in self.lanes.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for lane in self.lanes.values():
            if lane.worker is not None:
                lane.worker.close()
                await asyncio.to_thread(lane.worker.join, 10)
                lane.worker.kill()

    def forward_command(self, command: Command) -> dict[str, Any]:
        found = self._find(command.job_id or None)
        if found is None or found[1].process is None:
            raise UserError("No such job is running.", "Commands go to the running job; see swapwizard status WS.")
        found[1].process.send_command({"command": command.command, "args": command.args})
        return {"job_id": found[1].job_id}

    def status(self) -> dict[str, Any]:
        try:
            steps = self.ws.steps()
        except OSError:
            steps = {}
        main, interactive = self.lanes["main"], self.lanes["interactive"]
        return {
            "engine_version": __version__, "protocol": PROTOCOL_VERSION, "pid": os.getpid(),
            "workspace": str(self.ws.root), "started": self.started,
            "last_seq": self.events.last_seq if self.events else 0,
            "running": main.running.describe() if main.running else None,
            "queue": [job.describe() for job in main.queue],
            "interactive": {"running": interactive.running.describe() if interactive.running else None,
                            "queue": [job.describe() for job in interactive.queue]},
            "steps": steps, "clients": len(self.clients), "job_kinds": sorted(job_kinds()),
        }

    # -- connections -------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Client(writer)
        self.clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        greeted = False
        try:
            while not client.dropped:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    client.push(encode({"type": "error", "id": None, "ok": False,
                                        "error": "The line is longer than the engine accepts.",
                                        "hint": f"Keep lines under {MAX_LINE_BYTES} bytes."}))
                    break
                except (ConnectionError, OSError):
                    break
                if not line:
                    break
                if not line.endswith(b"\n"):
                    break  # the client went away mid-line
                if not line.strip():
                    continue
                request_id = None
                try:
                    request = decode_request(line)
                    request_id = request.id
                    if not greeted:
                        if not isinstance(request, Hello):
                            raise ProtocolError("Say hello first.",
                                                f'Send {{"type": "hello", "version": {PROTOCOL_VERSION}}}.')
                        if request.version != PROTOCOL_VERSION:
                            client.push(encode({"type": "error", "id": request_id, "ok": False,
                                                "error": f"This engine speaks protocol {PROTOCOL_VERSION}, "
                                                         f"not {request.version}.",
                                                "hint": "Use the swapwizard that started this engine, or stop it "
                                                        "and start it again with yours."}))
                            break
                        greeted = True
                    result = await self._dispatch(client, request)
                    if result is not None:
                        client.push(encode({"type": "reply", "id": request_id, "ok": True, "result": result}))
                    if isinstance(request, Shutdown):
                        self._stop.set()
                except (ProtocolError, UserError) as exc:
                    client.push(encode({"type": "error", "id": request_id, "ok": False,
                                        "error": exc.message, "hint": exc.hint}))
                except Exception as exc:  # noqa: BLE001 - a request must never take the engine down
                    log.exception("request failed")
                    client.push(encode({"type": "error", "id": request_id, "ok": False,
                                        "error": f"The engine could not handle that request ({type(exc).__name__}).",
                                        "hint": f"See {self.ws.engine_log_path}."}))
        finally:
            self.clients.discard(client)
            client.push(b"")
            with contextlib.suppress(BaseException):  # also CancelledError at engine shutdown
                await asyncio.wait_for(sender, timeout=5)
            sender.cancel()
            writer.close()

    async def _send_loop(self, client: Client) -> None:
        try:
            while True:
                line = await client.queue.get()
                if not line:
                    await client.writer.drain()
                    return
                client.writer.write(line)
                if client.queue.empty():
                    await client.writer.drain()
        except (ConnectionError, OSError):
            client.dropped = True

    async def _dispatch(self, client: Client, request: Request) -> dict[str, Any] | None:
        if isinstance(request, Hello):
            return {"version": PROTOCOL_VERSION, "engine_version": __version__, "pid": os.getpid(),
                    "workspace": str(self.ws.root)}
        if isinstance(request, StatusRequest):
            return self.status()
        if isinstance(request, Submit):
            return self.submit(request.kind, request.params)
        if isinstance(request, Cancel):
            return self.cancel(request.job_id)
        if isinstance(request, Command):
            return self.forward_command(request)
        if isinstance(request, Subscribe):
            await self._subscribe(client, request)
            return None
        if isinstance(request, Shutdown):
            return {}
        raise ProtocolError(f"Unhandled request {request.TYPE!r}.")

    async def _subscribe(self, client: Client, request: Subscribe) -> None:
        assert self.events is not None
        if client.subscribed:
            raise ProtocolError("This connection is already subscribed.", "Open a new connection to subscribe again.")
        upto = self.events.last_seq
        client.subscribed = True
        client.replaying = True
        client.push(encode({"type": "reply", "id": request.id, "ok": True, "result": {"last_seq": upto}}))
        from_seq = max(0, request.from_seq)
        lines = await asyncio.to_thread(lambda: list(self.events.replay(from_seq, upto)))
        for line in lines:
            if client.dropped:
                return
            while client.queue.full() and not client.dropped:
                await asyncio.sleep(0.01)
            client.push(line)
        for seq, line in client.held:
            if seq > upto:
                client.push(line)
        client.held.clear()
        client.replaying = False


def serve(ws: Workspace) -> int:
    """Run the engine in the foreground until shutdown; returns the process exit code."""
    server = EngineServer(ws)
    try:
        asyncio.run(server.serve())
    except AlreadyRunning as exc:
        print(f"swapwizard: {exc}", flush=True)
        return 3
    return 0
