"""The engine server: one per workspace, an asyncio loop on a Unix socket.

It keeps a queue of jobs (one runs at a time; later submissions wait their turn), runs each in a
child process, writes every event to the workspace's event log and streams it to every subscribed
client. Nothing a client sends can stop it. Three parts, each readable on its own:

- ``lifecycle``: the workspace lock and pid file, closing what a killed engine left open, and when to
  stop (shutdown, signals, the folder gone or replaced, idle);
- ``scheduler``: the lanes of jobs, their processes, cancel, and job outcomes -> step states;
- ``hub``: connections (handshake, limits), requests, event fan-out, subscribe and replay.

``logs`` keeps the engine log bounded. This module wires them together and answers the requests the
hub hands over. Run it with ``python -m engine serve WORKSPACE`` (normally started detached by the
CLI or wizard).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import time
from typing import Any

from engine import __version__, settings
from engine.errors import UserError
from engine.events import EventLog
from engine.jobs import public_declarations
from engine.launcher import AlreadyRunning
from engine.protocol import (
    PROTOCOL_VERSION,
    Cancel,
    Command,
    ProtocolError,
    Request,
    Shutdown,
    StatusRequest,
    Submit,
)
from engine.server import logs
from engine.server.hub import Hub
from engine.server.lifecycle import Lifecycle
from engine.server.scheduler import Scheduler
from engine.workspace import Workspace

log = logging.getLogger("engine.server")

__all__ = ["AlreadyRunning", "EngineServer", "serve"]


class EngineServer:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.started = time.time()
        self.life = Lifecycle(ws)
        self.hub: Hub | None = None
        self.scheduler: Scheduler | None = None

    async def serve(self) -> None:
        """Run until stopped (``AlreadyRunning`` if another engine has the workspace)."""
        loop = asyncio.get_running_loop()
        self.life.claim()
        logs.setup(self.ws)
        try:
            options = settings.layered("engine", ("workspace.toml", self.ws.section("engine")))
            _raise_fd_limit()
            events = EventLog(self.ws.events_path, max_bytes=int(options["events_max_mb"] * (1 << 20)))
            self.hub = hub = Hub(self.ws, events, self.answer, idle_timeout_s=options["connection_idle_s"])
            self.scheduler = scheduler = Scheduler(self.ws, hub.emit, hub.next_seq)
            self.life.idle_exit_s = options["idle_exit_min"] * 60
            self.life.recover_interrupted(hub.emit, scheduler.steps)
            await hub.listen()
            self.life.published()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.life.stop, f"signal {sig.name}")
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            hub.emit("engine_started", pid=os.getpid(), version=__version__)
            log.info("engine %s serving %s (pid %d)", __version__, self.ws.root, os.getpid())
            scheduler.start()
            await self.life.run(busy=lambda: scheduler.busy() or hub.has_clients(), tick=scheduler.steps.flush)
            await scheduler.stop()
            await hub.close()
            events.close()
        finally:
            self.life.cleanup()

    def answer(self, request: Request) -> dict[str, Any]:
        """The result of a request the hub hands over (``UserError``/``ProtocolError`` become errors)."""
        assert self.scheduler is not None
        if isinstance(request, StatusRequest):
            return self.status()
        if isinstance(request, Submit):
            return self.scheduler.submit(request.kind, request.params)
        if isinstance(request, Cancel):
            return self.scheduler.cancel(request.job_id)
        if isinstance(request, Command):
            return self.scheduler.forward_command(request.command, request.args, request.job_id)
        if isinstance(request, Shutdown):
            self.life.stop("asked to shut down")
            return {}
        raise ProtocolError(f"Unhandled request {request.TYPE!r}.")

    def status(self) -> dict[str, Any]:
        assert self.scheduler is not None and self.hub is not None
        return {
            "engine_version": __version__, "protocol": PROTOCOL_VERSION, "pid": os.getpid(),
            "workspace": str(self.ws.root), "started": self.started, "last_seq": self.hub.events.last_seq,
            **self.scheduler.describe(),
            "steps": self.scheduler.steps.view(), "clients": len(self.hub.clients),
            "jobs": public_declarations(),
        }


def _raise_fd_limit() -> None:
    """Use the hard limit of open files, so connections never starve the engine's own files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def serve(ws: Workspace) -> int:
    """Run the engine in the foreground until shutdown; returns the process exit code."""
    try:
        asyncio.run(EngineServer(ws).serve())
    except AlreadyRunning as exc:
        print(f"swapwizard: {exc}", flush=True)
        return 3
    except UserError as exc:  # a bad [engine] setting: the launcher shows the log's last line
        log.error("%s Hint: %s", exc.message, exc.hint)
        return 2
    return 0
