"""``swapwizard serve WS``: a read-only browser dashboard of the workspace's run, for its owner only.

What it shows: the step states, the running job's progress, the loss curve (whole run or the last N
iterations, raw points and a smoothed line) with the held-out quality, and the pictures at full
resolution (the training preview grid, the merge preview before / after, the compare contact sheet),
updating live: the server follows the engine's event stream through ``engine.client`` (exactly as
the wizard does) and forwards each event to the page as a server-sent event.

Why aiohttp and not textual-serve: textual-serve listens on a TCP host and port only (no Unix
socket) and would hand the whole wizard, with its controls, to whoever reaches the port; this page
is read-only (it can start, stop or change nothing) and listens on a Unix socket by default.

Who can open it:

- by default the Unix socket ``WS/.swapwizard/run/web.sock``, mode 0600 in the 0700 run folder, and
  every connection's peer is checked (``SO_PEERCRED``) to be the workspace's user: other local users
  of a shared GPU server cannot connect. The owner reaches it from a laptop with
  ``ssh -L 8080:/abs/WS/.swapwizard/run/web.sock host`` and opens http://localhost:8080/;
- ``--port N`` listens on 127.0.0.1 only, and every request needs a random token (in the printed URL,
  and in ``WS/.swapwizard/run/web.token``, mode 0600); ``--host`` is needed for any other address;
- every request's Host header must name the local machine (or the ``--host`` given; with
  ``--host 0.0.0.0`` or ``::``, any address of this machine or its name, and the printed URL uses its
  outward address), so a web page on the laptop cannot reach the forwarded port by DNS rebinding;
- pictures are served only from inside the workspace (a path that resolves outside it, through
  ``..`` or a link, is refused) and only image files.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import ipaddress
import json
import os
import secrets
import socket
import subprocess
from pathlib import Path
from typing import Any

from aiohttp import web

from engine import address
from engine import protocol as p
from engine.atomic import read_json
from engine.errors import UserError
from engine.quality.estimate import read_state
from engine.workspace import IMAGE_EXTENSIONS, Workspace
from tui.job_board import JobBoard
from tui.web.page import PAGE

WEB_SOCKET = "web.sock"
TOKEN_FILE = "web.token"
TOKEN_COOKIE = "swapwizard_token"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: Seconds between keep-alive comments on an idle event stream (proxies close silent streams).
HEARTBEAT_S = 15.0
#: Loss points sent to the page at most (the saved history is already thinned past 4000).
MAX_LOSS_POINTS = 5000
RECONNECT_S = 2.0
#: After an export: the middle frame of the destination and of the result, side by side on the page.
EXPORT_PICTURES = (("export: before (the destination, middle frame)", ".swapwizard/previews/export_before.png"),
                   ("export: after (the result, middle frame)", ".swapwizard/previews/export_after.png"))


def socket_path(ws: Workspace) -> Path:
    return ws.socket_dir / WEB_SOCKET


def token_path(ws: Workspace) -> Path:
    return ws.socket_dir / TOKEN_FILE


def host_name(host_header: str) -> str:
    """The host of a Host header, without its port (``[::1]:8080`` -> ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


WILDCARD_HOSTS = ("0.0.0.0", "::")


@functools.lru_cache(maxsize=64)
def is_local_address(host: str) -> bool:
    """Whether ``host`` is an IP address of this machine (it can be bound to), for ``--host 0.0.0.0``:
    a page is then opened by any of them, and a name a DNS-rebinding page controls is still refused."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    with socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True


def outward_address() -> str:
    """This machine's address toward its network (no packet is sent), else its host name."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
            found = probe.getsockname()[0]
        except OSError:
            found = ""
    return found if found and not found.startswith("127.") else socket.gethostname()


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` resolved, when it is a file inside ``root`` (links followed); else None."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    base = root.resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError):
        return None
    if target != base and base not in target.parents:
        return None
    return target


class Dashboard:
    """The aiohttp application and the engine follower behind it."""

    def __init__(self, ws: Workspace, token: str | None = None, hosts: frozenset[str] = LOCAL_HOSTS,
                 start_engine: bool = True, any_local: bool = False) -> None:
        self.ws = ws
        self.token = token
        self.hosts = hosts
        #: Listening on every address: a Host naming any address of this machine is good too.
        self.any_local = any_local
        self.start_engine = start_engine
        self.board = JobBoard()
        self.status: dict[str, Any] = {}
        self.connected = False
        self.clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self._follower: asyncio.Task[None] | None = None
        #: The result the export pictures were taken from (its mtime), and the lock of whoever takes them.
        self._exported: int | None = None
        self._export_lock = asyncio.Lock()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard])
        app.router.add_get("/", self.page)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/events", self.events)
        app.router.add_get("/file/{path:.+}", self.file)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    # -- who may ask ------------------------------------------------------------------------------
    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        sock = request.transport.get_extra_info("socket") if request.transport is not None else None
        if sock is not None and sock.family == socket.AF_UNIX:
            try:
                address.check_peer(sock)
            except (address.ForeignPeer, OSError):
                return web.Response(status=403, text="This dashboard belongs to another user.\n")
        name = host_name(request.host)
        if name not in self.hosts and not (self.any_local and is_local_address(name)):
            return web.Response(status=403, text="Open this page as http://localhost:PORT/ (unexpected Host header).\n")
        if self.token is not None:
            given = request.query.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.Response(status=403, text="This page needs the token that swapwizard serve printed "
                                                     f"(also in {token_path(self.ws)}).\n")
        response = await handler(request)
        if self.token is not None and request.query.get("token") and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="Strict", path="/")
        return response

    # -- pages ------------------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def state(self, request: web.Request) -> web.Response:
        async with self._export_lock:  # ffmpeg, once per exported result, off the loop
            await asyncio.to_thread(self.export_pictures)
        # In the loop's thread: the board is changed there too (a few small JSON files are read).
        return web.json_response(self.snapshot(request.query.get("model", "")), headers={"Cache-Control": "no-store"})

    async def file(self, request: web.Request) -> web.StreamResponse:
        target = inside(self.ws.root, request.match_info["path"])
        if target is None:
            return web.Response(status=403, text="Only files inside the workspace are served.\n")
        if target.suffix.lower() not in IMAGE_EXTENSIONS:
            return web.Response(status=403, text="Only pictures are served.\n")
        if not target.is_file():
            return web.Response(status=404, text="No such picture.\n")
        return web.FileResponse(target, headers={"Cache-Control": "no-store"})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: each engine event as ``data: {json}``, live."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self.clients.add(queue)
        try:
            await response.write(_sse({"type": "hello", "connected": self.connected, "last_seq": self.board.last_seq}))
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                await response.write(_sse(message))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.clients.discard(queue)
        return response

    def broadcast(self, message: dict[str, Any]) -> None:
        for queue in list(self.clients):
            if queue.full():  # a stalled browser: it refetches the state when it reconnects
                self.clients.discard(queue)
                continue
            queue.put_nowait(message)

    # -- what the page draws ------------------------------------------------------------------------
    def model_name(self, wanted: str = "") -> str:
        """The model the page shows: ``wanted`` (the page's choice) when it has trained; else the one the
        last training named ([train] model, else "default") when it has trained or is training now; else
        the most recently trained one (the configured model may not exist while others do)."""
        trained = self.trained_models()
        if wanted in trained:
            return wanted
        job = self.board.latest("train", "run")
        try:
            name = self.ws.model_name((job.params.get("model") if job else None) or "")
        except UserError:
            name = "default"
        training = job is not None and self.board.active("train", "run") is job
        return name if name in trained or training or not trained else trained[0]

    def trained_models(self) -> list[str]:
        """The workspace's models that have trained (a loss history or model.json), most recent first."""
        found = []
        for name in self.ws.model_names():
            folder = self.ws.models_root / name
            stamps = [p.stat().st_mtime for p in (folder / "loss_history.json", folder / "model.json") if p.is_file()]
            if stamps:
                found.append((max(stamps), name))
        return [name for _, name in sorted(found, reverse=True)]

    def snapshot(self, wanted: str = "") -> dict[str, Any]:
        """Everything the page shows, read from the board and the workspace's files; ``wanted``: the model
        the page chose (its list: ``models``)."""
        ws = self.ws
        name = self.model_name(wanted)
        try:
            model_dir = ws.model_dir(name)
        except UserError:
            model_dir = ws.model_dir()
        loss = _loss_points(read_json(model_dir / "loss_history.json", default=None))
        quality = [[q.get("iteration"), q.get("ssim_dst"), q.get("ssim_src")]
                   for q in (read_json(model_dir / "quality_history.json", default={}) or {}).get("points", [])
                   if isinstance(q, dict) and isinstance(q.get("iteration"), (int, float))]
        train = self.board.latest("train", "run")
        if train is not None and ws.model_name(train.params.get("model") or "") != name:
            train = None  # the last training was another model's: its live figures are not this one's
        last = loss[-1][0] if loss else -1
        for values in train.metrics if train is not None else []:
            it = values.get("iter")
            if isinstance(it, int) and it > last and values.get("loss_src") is not None:
                loss.append([it, values.get("loss_src"), values.get("loss_dst")])
                last = it
            if values.get("quality_ssim_dst") is not None and isinstance(it, int):
                quality.append([it, values.get("quality_ssim_dst"), values.get("quality_ssim_src")])
        # The opening plot: the training's latest measurement, else the last quality run's.
        openings = next((v["quality_expr_openings"] for v in reversed(train.metrics if train is not None else [])
                         if isinstance(v.get("quality_expr_openings"), dict)), None)
        if openings is None:
            measured = read_json(model_dir / "quality.json", default=None)
            openings = (measured.get("metrics") or {}).get("expr_openings") if isinstance(measured, dict) else None
        job = self.board.active() or self.board.latest()
        steps = {k: (v.get("status") if isinstance(v, dict) else v) for k, v in self.steps_now().items()}
        return {
            "workspace": ws.root.name, "connected": self.connected, "model": name, "steps": steps,
            "models": self.trained_models(),
            "job": _job_dict(job), "loss": loss[-MAX_LOSS_POINTS:], "quality": sorted(quality, key=lambda q: q[0]),
            "pictures": self.pictures(model_dir), "last_seq": self.board.last_seq, "openings": openings,
            "until": read_state(model_dir),  # train --until good: the last estimate, or why it stopped
        }

    def steps_now(self) -> dict[str, Any]:
        """The steps as recorded now (state.json, which the engine writes as a run moves on): the status
        fetched at a job's start said "check: running, train: todo" all through a run's training."""
        try:
            return self.ws.steps()
        except (OSError, UserError):
            return self.status.get("steps") or {}

    def export_pictures(self) -> None:
        """After an export: the destination's and the result's middle frame (EXPORT_PICTURES), taken with
        ffmpeg once per result, written whole (a temporary file renamed), owner-only."""
        record = self.steps_now().get("merge")
        result = record.get("result") if isinstance(record, dict) and record.get("status") == "done" else None
        if not isinstance(result, dict) or result.get("other_destination"):
            return
        video = inside(self.ws.root, str(result.get("output") or ""))
        source = self.ws.source("dst")
        if video is None or not video.is_file() or source is None or not source.is_file():
            return
        stamp = video.stat().st_mtime_ns
        if stamp == self._exported:
            return
        self._exported = stamp
        frames, fps = result.get("frames"), result.get("fps")
        at = frames / 2 / fps if isinstance(frames, (int, float)) and isinstance(fps, (int, float)) and fps > 0 else 0
        from engine.media.probe import ffmpeg_exe

        for (_, relative), clip in zip(EXPORT_PICTURES, (source, video)):
            target = self.ws.root / relative
            partial = target.with_name(f".{target.stem}.partial.png")
            try:
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-ss",
                                f"{at:.3f}", "-i", str(clip), "-frames:v", "1", str(partial)],
                               capture_output=True, timeout=60, check=True)
                partial.chmod(0o600)
                os.replace(partial, target)
            except (OSError, subprocess.SubprocessError):
                partial.unlink(missing_ok=True)  # the page shows the pictures it has

    def pictures(self, model_dir: Path) -> list[dict[str, Any]]:
        ws = self.ws
        found = []
        for title, path in (("training preview (src, src→src, dst, dst→dst, dst→src, masks)",
                             model_dir / "previews" / "latest.png"),
                            ("merge: before", ws.root / ".swapwizard/previews/merge_before.png"),
                            ("merge: after", ws.root / ".swapwizard/previews/merge_preview.png"),
                            *((title, ws.root / relative) for title, relative in EXPORT_PICTURES),
                            ("compare: contact sheet", ws.root / "output/compare/contact_sheet.png"),
                            ("data check: contact sheet", ws.root / "check/contact_sheet.png")):
            try:
                stamp = path.stat().st_mtime_ns
            except OSError:
                continue
            found.append({"title": title, "path": ws.rel(path), "version": stamp})
        return found

    # -- following the engine -----------------------------------------------------------------------
    async def _start(self, app: web.Application) -> None:
        self._follower = asyncio.create_task(self.follow())

    async def _stop(self, app: web.Application) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    async def follow(self) -> None:
        """Connect to the engine (starting it when absent), replay the running job, follow live."""
        from engine.client import AsyncEngineClient
        from engine.launcher import ensure_engine

        while True:
            client = None
            try:
                if self.start_engine:
                    await asyncio.to_thread(ensure_engine, self.ws)
                client = await AsyncEngineClient(self.ws, client_name="web").connect()
                self.status = await client.status()
                live_from = int(self.status.get("last_seq") or 0)
                self.connected = True
                self.broadcast({"type": "refresh"})
                async for event in client.events(self._replay_from(self.status)):
                    self.board.apply(event)
                    if event.seq > live_from:
                        self.broadcast(event.to_dict())
                        if isinstance(event, (p.JobStarted, p.JobFinished, p.JobFailed, p.JobCancelledEvent)):
                            self.status = await client.status()
                            self.broadcast({"type": "refresh"})
                    elif event.seq == live_from:
                        self.broadcast({"type": "refresh"})  # the replay is complete
            except (UserError, OSError, EOFError, ValueError):
                pass  # no engine (yet), or it went away: the page shows the saved state; try again
            finally:
                self.connected = False
                if client is not None:
                    await client.close()
            self.broadcast({"type": "refresh"})
            await asyncio.sleep(RECONNECT_S)

    def _replay_from(self, status: dict[str, Any]) -> int:
        if self.board.last_seq:
            return self.board.last_seq + 1
        jobs = [status.get("running"), *(status.get("queue") or [])]
        starts = [job["queued_seq"] for job in jobs if isinstance(job, dict) and job.get("queued_seq")]
        return min(starts) if starts else int(status.get("last_seq") or 0) + 1


def _sse(message: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(message, separators=(',', ':'), default=str)}\n\n".encode()


def _loss_points(data: Any) -> list[list[Any]]:
    if not isinstance(data, dict):
        return []
    columns = data.get("columns") or ["iteration", "loss_src", "loss_dst"]
    try:
        at = [columns.index(name) for name in ("iteration", "loss_src", "loss_dst")]
    except ValueError:
        return []
    return [[row[i] for i in at] for row in data.get("points") or []
            if isinstance(row, list) and len(row) > max(at)]


def _job_dict(job: Any) -> dict[str, Any] | None:
    if job is None:
        return None
    return {"job_id": job.job_id, "kind": job.kind, "status": job.status,
            "stages": [{"stage": s.stage, "done": s.done, "total": s.total, "unit": s.unit, "rate": s.rate,
                        "eta_s": s.eta_s} for s in job.stages.values()],
            "metrics": job.latest_metrics, "error": job.error, "hint": job.hint}


# ------------------------------------------------------------------------------------------------
# Listening
# ------------------------------------------------------------------------------------------------

def _unix_socket(ws: Workspace) -> socket.socket:
    """The listening socket at WS/.swapwizard/run/web.sock (0600 in the 0700 folder); a stale one is replaced."""
    path = socket_path(ws)
    if path.exists() or path.is_symlink():
        try:
            address.connect(path, timeout=1.0).close()
        except OSError:
            path.unlink(missing_ok=True)  # left by a serve that was killed
        else:
            raise UserError(f"swapwizard serve is already running for {ws.root}.",
                            f"Use that one (its socket: {path}), or stop it with Ctrl-C in its terminal.")
    return address.bind(path)


def _write_token(ws: Workspace, token: str) -> Path:
    """The token alone (the URL is printed; a script reads the token from here)."""
    path = token_path(ws)
    ws.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return path


async def start(ws: Workspace, port: int | None = None, host: str | None = None,
                start_engine: bool = True) -> tuple[web.AppRunner, str, Dashboard]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops it), what to open, the dashboard.

    ``port=None``: the Unix socket. Otherwise TCP on ``host`` (127.0.0.1 unless given) with a token.
    """
    if port is None and host is not None:
        raise UserError("--host needs --port.", "For example: swapwizard serve WS --port 8080 --host 0.0.0.0")
    token = secrets.token_urlsafe(24) if port is not None else None
    hosts = LOCAL_HOSTS | ({host_name(host)} if host else set())
    wildcard = host in WILDCARD_HOSTS
    if wildcard:  # every address: the machine's names too (its addresses are checked per request)
        hosts |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    dashboard = Dashboard(ws, token=token, hosts=frozenset(hosts), start_engine=start_engine, any_local=wildcard)
    runner = web.AppRunner(dashboard.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        if port is None:
            site: web.BaseSite = web.SockSite(runner, _unix_socket(ws))
            await site.start()
            return runner, str(socket_path(ws)), dashboard
        bind_host = host or "127.0.0.1"
        site = web.TCPSite(runner, bind_host, port)
        try:
            await site.start()
        except OSError as exc:
            raise UserError(f"Cannot listen on {bind_host}:{port}: {exc.strerror or exc}.",
                            "Choose another --port (0 picks a free one).") from None
        bound = runner.addresses[0][1] if runner.addresses else port
        outward = outward_address() if wildcard else bind_host
        url = f"http://{f'[{outward}]' if ':' in outward else outward}:{bound}/?token={token}"
        _write_token(ws, str(token))
        return runner, url, dashboard
    except BaseException:
        await runner.cleanup()
        raise


async def stop(ws: Workspace, runner: web.AppRunner, unix: bool) -> None:
    """Stop serving and remove what ``start`` left: the socket, or the token file."""
    await runner.cleanup()
    (socket_path(ws) if unix else token_path(ws)).unlink(missing_ok=True)
