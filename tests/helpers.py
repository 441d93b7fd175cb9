"""Shared test helpers: real workspaces, real engine processes, real sockets."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.client import EngineClient
from engine.launcher import engine_pid, start_engine
from engine.protocol import END_EVENTS, Event
from engine.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "engine" / "samples"
SHARED_DATA = REPO.parent / "shared" / "data"


def make_workspace(root: Path, src: Path | None = SAMPLES / "src.mp4", dst: Path | None = SAMPLES / "dst.mp4") -> Workspace:
    return Workspace.create(root, src=src, dst=dst)


def child_pids(pid: int) -> set[int]:
    """The processes ``pid`` started, from any of its threads (Linux /proc; empty elsewhere), reaped
    or not: a zombie is still listed until its parent waits for it."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.update(int(p) for p in handle.read().split())
        except OSError:
            pass
    return found


def stop_engine(ws: Workspace, timeout: float = 30.0) -> None:
    """Shut the engine down (politely, then by force) and wait until it is gone."""
    # The pid file, not engine_pid(): an engine too slow to answer on a loaded machine must still stop.
    try:
        pid = int(ws.pid_path.read_text().strip())
    except (OSError, ValueError):
        pid = engine_pid(ws)
    if pid is None or not _alive(pid) or not _is_engine(pid):
        return
    try:
        with EngineClient(ws, timeout=5) as client:
            client.shutdown()
    except Exception:  # noqa: BLE001 - fall back to a signal
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        _signal(pid, signal.SIGKILL)


def _is_engine(pid: int) -> bool:
    """Whether ``pid`` is an engine process (a stale pid file may name a reused pid)."""
    try:
        return b"engine" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of this test process counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return True


def run_job(ws: Workspace, kind: str, params: dict[str, Any] | None = None, timeout: float = 120.0) -> tuple[Event, list[Event]]:
    """Submit a job to the (started) engine and wait for its end; returns (final event, all its events)."""
    start_engine(ws)
    with EngineClient(ws, timeout=timeout) as client:
        last = client.status()["last_seq"]
        job_id = client.submit(kind, params or {})["job_id"]
        client.subscribe(last + 1)
        seen: list[Event] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = client.next_event(timeout=max(0.1, deadline - time.monotonic()))
            if getattr(event, "job_id", None) != job_id:
                continue
            seen.append(event)
            if event.TYPE in END_EVENTS:
                return event, seen
    raise TimeoutError(f"{kind} did not end within {timeout} s")


def kill_job_when(ws: Workspace, kind: str, params: dict[str, Any], when: Callable[[Event], bool],
                  timeout: float = 600.0) -> tuple[bool, Event | None]:
    """Submit a job to the (started) engine, kill its process with SIGKILL at the first of its events
    ``when`` accepts, and wait for its end; returns (killed, its end event, None if it did not end)."""
    start_engine(ws)
    pid, killed, event = None, False, None
    with EngineClient(ws, timeout=120) as client:
        last = client.status()["last_seq"]
        job_id = client.submit(kind, params)["job_id"]
        client.subscribe(last + 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = client.next_event(timeout=60)
            except TimeoutError:
                continue
            if getattr(event, "job_id", None) != job_id:
                continue
            if event.TYPE == "job_started":
                pid = event.pid
            if not killed and pid is not None and when(event):
                os.kill(pid, signal.SIGKILL)
                killed = True
            if event.TYPE in END_EVENTS:
                return killed, event
    return killed, None


def cli(*args: str, timeout: float = 120.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``swapwizard`` command (as ``python -m tui``) and capture its output."""
    return subprocess.run([sys.executable, "-c", "from tui.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})


def tar_of(path: Path, entries: list[tuple[str, bytes | None]]) -> Path:
    """A tar.gz of (name, bytes; None: a folder) entries, in order: crafted archives for unpack."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (made), unmounted after; skips the test where it cannot be."""
    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode().strip() or 'needs root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def big_event_log(ws: Workspace, count: int, size: int) -> None:
    """Fill ``ws``'s event log with ``count`` engine log events of ``size`` characters each."""
    import json

    ws.state_dir.mkdir(mode=0o700, exist_ok=True)
    pad = "x" * size
    with open(ws.events_path, "w") as handle:
        for seq in range(1, count + 1):
            handle.write(json.dumps({"type": "log", "seq": seq, "time": 0.0, "job_id": None, "level": "info",
                                     "message": pad}) + "\n")


def stuck_subscribers(ws: Workspace, count: int) -> list[Any]:
    """``count`` connections that subscribe from seq 0 and never read (a 4 kB receive buffer each)."""
    import json
    import socket

    from engine import address
    from engine.protocol import PROTOCOL_VERSION

    hello = json.dumps({"type": "hello", "version": PROTOCOL_VERSION, "id": 0}).encode() + b"\n"
    held = []
    for _ in range(count):
        sock = address.connect(ws.socket_path, timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(hello + b'{"type": "subscribe", "id": 1, "from_seq": 0}\n')
        held.append(sock)
    return held
