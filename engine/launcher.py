"""Start a workspace's engine as a detached process, or find the one already running.

The engine runs in a new session (``setsid``) with stdin closed and its output in
``.swapwizard/logs/engine.log``, so closing the terminal or losing the SSH connection stops nothing.
Standard library only, so the TUI can start engines too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from engine import address
from engine.errors import UserError
from engine.workspace import Workspace


def engine_pid(ws: Workspace) -> int | None:
    """The pid of the live engine of ``ws``, or None (a pid file of a dead engine counts as none)."""
    try:
        pid = int(ws.pid_path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid if _answers(ws) else None


def _answers(ws: Workspace) -> bool:
    try:
        sock = address.connect(ws.socket_path, timeout=2.0)
    except OSError:
        return False
    sock.close()
    return True


def start_engine(ws: Workspace, wait: float = 30.0) -> tuple[int, bool]:
    """Start the engine detached unless one runs; returns (pid, started_now)."""
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
        code = process.poll()
        if code is not None:
            pid = engine_pid(ws)
            if pid is not None:  # another client started it at the same moment
                return pid, False
            raise UserError(f"The engine exited at start (code {code}): {_log_tail(ws)}",
                            f"See {ws.engine_log_path}.")
        if _answers(ws):
            return process.pid, True
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
