"""Workspace commands: new, consent, status, attach, cancel, pack, unpack."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from engine.client import EngineClient
from engine.errors import UserError
from engine.launcher import engine_pid
from engine.pack import pack as pack_workspace
from engine.pack import unpack as unpack_archive
from engine.workspace import Workspace
from tui.cli.app import app
from tui.cli.common import EXIT_DONE, err, fail, open_workspace, out
from tui.cli.follow import follow


@app.command()
def new(
    workspace: str = typer.Argument(..., help="Folder to create."),
    src: Optional[str] = typer.Option(None, "--src", help="Source person: a video or a folder of images."),
    dst: Optional[str] = typer.Option(None, "--dst", help="Destination video (or images) whose face is replaced."),
    link: bool = typer.Option(False, "--link", help="Symlink the sources instead of copying them."),
    consent: bool = typer.Option(False, "--consent", help="Record that you have permission from the people shown."),
) -> None:
    """Create a workspace from the template, with its source and destination."""
    try:
        ws = Workspace.create(workspace, src=src, dst=dst, link=link)
        if consent:
            ws.record_consent()
    except UserError as exc:
        fail(exc.message, exc.hint)
    out.print(f"Created workspace {ws.root}")
    if not consent:
        err.print("Remember: only swap faces of people who agreed. Record it with: "
                  f"swapwizard consent {ws.root}")


@app.command()
def consent(workspace: str = typer.Argument(...),
            yes: bool = typer.Option(False, "--yes", help="Confirm without asking.")) -> None:
    """Record that you have permission from the people whose faces the workspace uses."""
    ws = open_workspace(workspace)
    if not yes and not typer.confirm("Do you have permission from every person whose face appears in the "
                                     "source and destination footage?"):
        fail("Consent was not confirmed.", "swapwizard records consent only when you confirm it.", code=1)
    ws.record_consent()
    out.print(f"Consent recorded in {ws.config_path}")


def _engine_status(ws: Workspace) -> dict | None:
    if engine_pid(ws) is None:
        return None
    try:
        with EngineClient(ws, timeout=5) as client:
            return client.status()
    except (UserError, OSError):
        return None


@app.command()
def status(workspace: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Where each step stands, and what the engine runs."""
    ws = open_workspace(workspace)
    live = _engine_status(ws)
    steps = live["steps"] if live else ws.steps()
    report = {"workspace": str(ws.root), "engine": "running" if live else "stopped",
              "pid": live["pid"] if live else None, "running": live["running"] if live else None,
              "queue": live["queue"] if live else [], "steps": steps,
              "next_step": ws.first_unfinished_step(), "consent": ws.consent_confirmed(),
              "models": ws.model_names()}
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    out.print(f"[bold]{ws.root}[/]")
    out.print(f"engine: {report['engine']}" + (f" (pid {report['pid']})" if report["pid"] else ""))
    if report["running"]:
        out.print(f"running: {report['running']['kind']} ({report['running']['job_id']})")
    for name, record in steps.items():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record["updated"])) if record.get("updated") else ""
        detail = record.get("error", "")
        out.print(f"  {name:<12} {record.get('status', 'todo'):<8} {when} {detail}")
    if report["next_step"]:
        out.print(f"next: {report['next_step']}")


@app.command()
def attach(workspace: str = typer.Argument(...)) -> None:
    """Follow whatever runs, with progress bars and the latest metrics; Ctrl-C detaches."""
    ws = open_workspace(workspace)
    live = _engine_status(ws)
    if live is None:
        fail("No engine is running for this workspace.", f"Start one with: swapwizard engine start {ws.root}")
    running = live["running"] or (live["queue"][0] if live["queue"] else None)
    if running is None:
        out.print("Nothing is running.")
        raise typer.Exit(EXIT_DONE)
    with EngineClient(ws, timeout=None) as client:
        raise typer.Exit(follow(client, running["job_id"], running["queued_seq"]))


@app.command()
def cancel(workspace: str = typer.Argument(...), job: Optional[str] = typer.Option(None, "--job")) -> None:
    """Cancel the running job (it stops cleanly at its next safe point)."""
    ws = open_workspace(workspace)
    try:
        with EngineClient(ws) as client:
            job_id = client.cancel(job)["job_id"]
    except UserError as exc:
        fail(exc.message, exc.hint)
    out.print(f"Cancelling {job_id}")


@app.command()
def pack(workspace: str = typer.Argument(...), archive: str = typer.Argument(..., help="File to write (.tar.gz)."),
         model: Optional[str] = typer.Option(None, "--model", help="Pack only this model.")) -> None:
    """Pack a workspace (or only one model) into one archive to move it to another machine."""
    ws = open_workspace(workspace)
    try:
        path = pack_workspace(ws, Path(archive), model=model)
    except UserError as exc:
        fail(exc.message, exc.hint)
    out.print(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def unpack(archive: str = typer.Argument(...),
           target: str = typer.Argument(..., help="New workspace folder, or an existing workspace for a model archive.")) -> None:
    """Unpack an archive made by pack; refuses unsafe entries and never overwrites."""
    try:
        path = unpack_archive(Path(archive), Path(target))
    except UserError as exc:
        fail(exc.message, exc.hint)
    out.print(f"Unpacked into {path}")
