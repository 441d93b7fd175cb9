"""Start a workspace's engine as a detached process, or find the one already running.

The engine runs in a new session (``setsid``) with stdin closed and its output in
``.swapwizard/logs/engine.log``, so closing the terminal or losing the SSH connection stops nothing.
Standard library only, so the TUI can start engines too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

from engine import address
from engine.errors import UserError
from engine.workspace import Workspace

#: ``struct flock`` on Linux: l_type, l_whence, l_start, l_len, l_pid (and padding).
_FLOCK = "hhqqi4x"


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None) -> None:
        super().__init__(f"an engine already runs for this workspace (pid {pid})")
        self.pid = pid


class EngineLock:
    """An engine's claim on its workspace: ``.swapwizard/engine.lock``, locked for the engine's whole life.

    ``flock`` keeps a second engine out; a POSIX record lock on the same file lets any process ask
    which process holds it (``engine_pid``) without taking it, so "an engine runs" never depends on
    whether its socket answers in time. The holder must not open and close the file elsewhere
    (closing any handle on a file drops the process's POSIX locks on it).
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ``AlreadyRunning`` with the holder's pid."""
        self.ws.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.ws.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AlreadyRunning(engine_pid(self.ws)) from None
        self._fd = fd

    def still_ours(self) -> bool:
        """Whether the workspace's lock file is still the one we hold (not deleted, moved or replaced)."""
        if self._fd is None:
            return False
        try:
            here, held = os.stat(self.ws.lock_path, follow_symlinks=False), os.fstat(self._fd)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def engine_pid(ws: Workspace) -> int | None:
    """The pid of the engine that holds ``ws``'s lock, or None when no engine runs (no connection made)."""
    try:
        fd = os.open(ws.lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    except OSError:
        return None
    finally:
        os.close(fd)
    kind, _, _, _, pid = struct.unpack(_FLOCK, answer)
    if kind == fcntl.F_UNLCK:
        return None
    return pid or _pid_file(ws)  # 0: the holder is in another pid namespace


def _pid_file(ws: Workspace) -> int | None:
    try:
        return int(ws.pid_path.read_text().strip())
    except (OSError, ValueError):
        return None


def _serving(ws: Workspace, pid: int) -> bool:
    """Whether the engine ``pid`` listens on the socket (its pid file is written after listen())."""
    if _pid_file(ws) == pid:
        return True
    try:
        sock = address.connect(ws.socket_path, timeout=2.0)
    except OSError:
        return False
    with sock:
        return address.peer(sock)[0] == pid


def start_engine(ws: Workspace, wait: float = 30.0) -> tuple[int, bool]:
    """Start the engine detached unless one runs; returns (pid, started_now).

    Several clients starting the same workspace's engine at once get one engine: the others' engine
    processes find the lock taken and exit, and their callers get the winner's pid with ``False``.
    """
    pid = engine_pid(ws)
    if pid is not None:
        return pid, False
    ws.log_dir.mkdir(parents=True, exist_ok=True)
    log = open(ws.engine_log_path, "ab")
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", str(ws.root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(ws.root),
            start_new_session=True, close_fds=True, env=env,
        )
    finally:
        log.close()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        holder = engine_pid(ws)
        if holder == process.pid and _serving(ws, process.pid):
            return process.pid, True
        code = process.poll()
        if code is not None:
            holder = engine_pid(ws)
            if holder is not None:  # another client started it at the same moment
                return holder, False
            raise UserError(f"The engine exited at start (code {code}): {_log_tail(ws)}",
                            f"See {ws.engine_log_path}.")
        time.sleep(0.05)
    raise UserError("The engine did not answer within its start-up time.", f"See {ws.engine_log_path}.")


def ensure_engine(ws: Workspace) -> int:
    """Start the engine if it is not running; return its pid."""
    return start_engine(ws)[0]


def _log_tail(ws: Workspace, lines: int = 3) -> str:
    try:
        text = ws.engine_log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " / ".join(text[-lines:]) or "no log"
