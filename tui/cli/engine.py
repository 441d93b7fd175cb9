"""``swapwizard engine start|stop|status WS``."""

from __future__ import annotations

import json
import time

import typer

from engine.client import EngineClient
from engine.errors import UserError
from engine.launcher import engine_pid, start_engine
from tui.cli.app import engine_app
from tui.cli.common import fail, open_workspace, out
from tui.cli.follow import run_job


@engine_app.command("start")
def engine_start(workspace: str = typer.Argument(...)) -> None:
    """Start the workspace's engine, detached (it survives the terminal closing)."""
    ws = open_workspace(workspace)
    try:
        pid, started = start_engine(ws)
    except UserError as exc:
        fail(exc.message, exc.hint)
    out.print(f"Engine {'started' if started else 'already running'} (pid {pid}); log: {ws.engine_log_path}")


@engine_app.command("stop")
def engine_stop(workspace: str = typer.Argument(...)) -> None:
    """Stop the engine; a running job is cancelled cleanly first (training saves)."""
    ws = open_workspace(workspace)
    pid = engine_pid(ws)
    if pid is None:
        out.print("No engine is running.")
        return
    try:
        with EngineClient(ws) as client:
            client.shutdown()
    except UserError as exc:
        fail(exc.message, exc.hint)
    deadline = time.monotonic() + 90
    while engine_pid(ws) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    out.print(f"Engine stopped (pid {pid}).")


@engine_app.command("status")
def engine_status(workspace: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Whether the engine runs, its pid, and its job."""
    ws = open_workspace(workspace)
    pid = engine_pid(ws)
    result: dict = {"running": pid is not None, "pid": pid, "socket": str(ws.socket_path),
                    "log": str(ws.engine_log_path)}
    if pid is not None:
        try:
            with EngineClient(ws, timeout=5, connect_wait=5) as client:
                status = client.status()
            result.update(job=status["running"], queue=status["queue"], last_seq=status["last_seq"],
                          uptime_s=round(time.time() - status["started"], 1))
        except UserError as exc:
            result.update(error=exc.message)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    elif pid is None:
        out.print("engine: stopped")
    elif "error" in result:
        out.print(f"engine: running (pid {pid}) but busy: {result['error']}", markup=False)
    else:
        job = result.get("job")
        out.print(f"engine: running (pid {pid})" + (f", job {job['kind']} ({job['job_id']})" if job else ", idle"))
    raise typer.Exit(0)


@engine_app.command("diagnostic")
def engine_diagnostic(workspace: str = typer.Argument(...), count: int = typer.Option(20, "--count"),
                      delay: float = typer.Option(0.05, "--delay"),
                      detach: bool = typer.Option(False, "--detach")) -> None:
    """Run the diagnostic counting job (checks that the engine runs jobs and streams progress)."""
    run_job(open_workspace(workspace), "diagnostic_count", {"count": count, "delay": delay}, detach=detach)
