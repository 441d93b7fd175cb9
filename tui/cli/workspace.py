"""Workspace commands: new, sources, consent, status, attach, cancel, pack, unpack."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from engine.client import EngineClient
from engine.errors import UserError
from engine.jobs.steps import interrupted
from engine.launcher import engine_pid
from engine.pack import GIB, MAX_UNPACK_BYTES
from engine.pack import pack as pack_workspace
from engine.pack import plan as plan_pack
from engine.pack import unpack as unpack_archive
from engine.quality.estimate import read_state
from engine.sources import SIDE_NAMES, invalidated_by_replacing, probe_input, replace_source
from engine.workspace import CONFIG_NAME, SIDES, Workspace
from tui.cli.app import app
from tui.cli.common import EXIT_DONE, err, fail, open_workspace, out, remind_consent
from tui.cli.follow import follow
from tui.probe import describe


def _summary(info: dict) -> str:
    return describe(info)


@app.command()
def new(
    workspace: str = typer.Argument(..., help="Folder to create."),
    src: Optional[str] = typer.Option(None, "--src", help="Source person: a video or a folder of images."),
    dst: Optional[str] = typer.Option(None, "--dst", help="Destination video (or images) whose face is replaced."),
    link: bool = typer.Option(False, "--link", help="Symlink the sources instead of copying them."),
    consent: bool = typer.Option(False, "--consent", help="Record that you have permission from the people shown."),
) -> None:
    """Create a workspace from the template, with its source and destination (each probed first)."""
    root = Path(workspace).expanduser().resolve()
    if (root / CONFIG_NAME).exists():
        given = " ".join(f"--{side} {path}" for side, path in (("src", src), ("dst", dst)) if path is not None)
        fail(f"A workspace already exists at {root}.",
             f"Add or replace its footage with: swapwizard sources {workspace} "
             + (given or "--src SOURCE --dst DESTINATION"))
    probes = {}
    try:
        for side, path in (("src", src), ("dst", dst)):
            if path is not None:
                probes[side] = probe_input(path, side)
    except UserError as exc:
        fail(f"{exc.message} No workspace was created.", exc.hint)
    was_empty = not root.exists() or (root.is_dir() and not any(root.iterdir()))
    try:
        ws = Workspace.create(workspace, src=src, dst=dst, link=link)
        if consent:
            ws.record_consent()
    except (UserError, OSError) as exc:
        if was_empty and root.is_dir():  # never half a workspace: it was absent or empty, so it goes back so
            for child in root.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if isinstance(exc, UserError):
            fail(exc.message, exc.hint)
        fail(f"Could not create the workspace at {root} ({exc.strerror or exc}); nothing was left behind.",
             "Check the free space (df -h) and that the folder is writable.")
    out.print(f"Created workspace {ws.root}", markup=False)
    for side, info in probes.items():
        out.print(f"  {side}: {_summary(info)}", markup=False)
    _hint_missing(ws, workspace)
    remind_consent(ws)


def _hint_missing(ws: Workspace, typed: str) -> None:
    missing = [side for side in SIDES if ws.source(side) is None]
    if missing:
        flags = " ".join(f"--{side} {'SOURCE' if side == 'src' else 'DESTINATION'}" for side in missing)
        names = " and ".join(SIDE_NAMES[side] for side in missing)
        err.print(f"No {names} yet. Add it with: swapwizard sources {typed} {flags}", markup=False)


@app.command()
def sources(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    src: Optional[str] = typer.Option(None, "--src", help="Source person: a video or a folder of images."),
    dst: Optional[str] = typer.Option(None, "--dst", help="Destination video (or images) whose face is replaced."),
    link: bool = typer.Option(False, "--link", help="Symlink the footage instead of copying it."),
    force: bool = typer.Option(False, "--force", help="Replace footage that was already extracted or trained on."),
) -> None:
    """Add or replace a workspace's source and destination footage (probed first); without options, show them."""
    ws = open_workspace(workspace)
    if src is None and dst is None:
        for side in SIDES:
            current = ws.source(side)
            if current is None:
                out.print(f"{side}: missing", markup=False)
                continue
            try:
                text = _summary(probe_input(current, side))
            except UserError as exc:
                text = exc.message
            out.print(f"{side}: {ws.rel(current)}{' -> ' + str(current.resolve()) if current.is_symlink() else ''}"
                      f" ({text})", markup=False)
        _hint_missing(ws, workspace)
        return
    live = _engine_status(ws)
    if live and (live.get("running") or live.get("queue")):
        fail("A job is running in this workspace's engine; its footage cannot change under it.",
             f"Wait for it to end, or stop it with: swapwizard cancel {workspace}")
    wanted = {side: path for side, path in (("src", src), ("dst", dst)) if path is not None}
    probes, lost = {}, {}
    try:
        for side, path in wanted.items():  # both sides are checked before either changes
            probes[side] = probe_input(path, side)
            lost[side] = invalidated_by_replacing(ws, side)
            if lost[side] and not force:
                raise UserError(f"Replacing the {SIDE_NAMES[side]} invalidates {lost[side].describe()}; "
                                "nothing was changed.",
                                "Add --force to replace it anyway (those steps go back to todo and run again), "
                                "or put the new footage in a new workspace.")
        for side, path in wanted.items():
            target, _ = replace_source(ws, side, path, link=link, force=True, probe=False)
            out.print(f"{side}: {ws.rel(target)} ({_summary(probes[side])})", markup=False)
    except UserError as exc:
        fail(exc.message, exc.hint)
    except OSError as exc:
        fail(f"Could not copy the footage in ({exc.strerror or exc}).", "Check the free space (df -h), then try again.")
    for side, undone in lost.items():
        if undone:
            err.print(f"The {SIDE_NAMES[side]} changed: {', '.join(undone.steps) or 'its extraction'} "
                      "will run again.", markup=False)
            if undone.models:
                err.print(f"Training continues from {', '.join(undone.models)} on the new faces; for a fresh "
                          f"model use: swapwizard train {workspace} --model NEW_NAME", markup=False)
    if all(ws.source(side) is not None for side in SIDES):
        err.print(f"Next: swapwizard run {workspace} (every step), or swapwizard extract {workspace}", markup=False)
    else:
        _hint_missing(ws, workspace)


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
        with EngineClient(ws, timeout=5, connect_wait=5) as client:
            return client.status()
    except (UserError, OSError):
        return None


@app.command()
def status(workspace: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Where each step stands, and what the engine runs."""
    ws = open_workspace(workspace)
    live = _engine_status(ws)
    pid = live["pid"] if live else engine_pid(ws)  # the lock, not a connection, says whether one runs
    # A step still "running" with no engine was interrupted (the engine records it so when it starts).
    steps = live["steps"] if live else ws.steps() if pid else interrupted(ws.steps())
    report = {"workspace": str(ws.root), "engine": "running" if live else "busy (not answering)" if pid else "stopped",
              "pid": pid, "running": live["running"] if live else None,
              "queue": live["queue"] if live else [], "steps": steps,
              "next_step": ws.first_unfinished_step(), "consent": ws.consent_confirmed(),
              "models": ws.model_names(), "missing": _missing_inputs(ws, steps), "until": _until(ws)}
    report["next_command"] = (f"swapwizard attach {workspace}" if report["running"] or report["queue"] else
                              _next_command(workspace, report["missing"], report["next_step"]))
    if ws.state_warning:  # a damaged or wrong-shaped state.json: which file, what is wrong, what is used
        report["state_warning"] = ws.state_warning
        err.print(f"warning: {ws.state_warning}", markup=False)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    out.print(f"[bold]{escape(str(ws.root))}[/]", markup=True)
    out.print(f"engine: {report['engine']}" + (f" (pid {report['pid']})" if report["pid"] else ""))
    if report["running"]:
        out.print(f"running: {report['running']['kind']} ({report['running']['job_id']})")
    for name, record in steps.items():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record["updated"])) if record.get("updated") else ""
        detail = _shorter(str(record.get("error", "")), ws)
        out.print(f"  {name:<12} {record.get('status', 'todo'):<8} {when} {detail}", markup=False)
    for name, state in report["until"].items():
        out.print(f"  model {name}: {state.get('reason') or 'until good: ' + str(state.get('until_text'))}"
                  f" (iteration {state.get('iteration')})", markup=False)
    for side in report["missing"]:
        out.print(f"missing: the {SIDE_NAMES[side]} (a video or a folder of images)", markup=False)
    if report["next_command"]:
        step = "" if report["missing"] or not report["next_step"] or report["running"] or report["queue"] \
            else f"{report['next_step']}, with: "
        out.print(f"next: {step}{report['next_command']}", markup=False)


def _until(ws: Workspace) -> dict[str, dict]:
    """Per model trained with ``--until good`` / ``--for``: its last estimate, or why it stopped."""
    found = {}
    for name in ws.model_names():
        state = read_state(ws.model_dir(name))
        if state.get("reason") or state.get("until_text"):
            found[name] = state
    return found


#: A step's error as ``status`` shows it: one line of at most this many characters.
ERROR_SHOWN = 200


def _shorter(error: str, ws: Workspace) -> str:
    """A step's error cut to its first line and ``ERROR_SHOWN`` characters, saying where the whole one is."""
    first = error.strip().split("\n", 1)[0]
    if len(first) <= ERROR_SHOWN and first == error.strip():
        return first
    return (f"{first[:ERROR_SHOWN].rstrip()}... (cut from {len(error):,} characters; the whole error: "
            f"swapwizard status {ws.root} --json, or the job's job_failed event in {ws.events_path})")


def _missing_inputs(ws: Workspace, steps: dict[str, dict]) -> list[str]:
    """Sides whose footage a step still to do needs but the workspace lacks (extraction; dst also for merge)."""
    def todo(step: str) -> bool:
        return steps.get(step, {}).get("status") != "done"

    return [side for side in SIDES if ws.source(side) is None
            and (todo(f"extract_{side}") or (side == "dst" and todo("merge")))]


def _next_command(typed: str, missing: list[str], next_step: str | None) -> str:
    """The command that moves the workspace on: add what is missing, else run the steps not done."""
    if missing:
        flags = " ".join(f"--{side} {'SOURCE' if side == 'src' else 'DESTINATION'}" for side in missing)
        return f"swapwizard sources {typed} {flags}"
    if next_step is None:
        return ""
    single = {"extract_src": "extract", "extract_dst": "extract", "check": "check", "train": "train",
              "merge": "merge"}[next_step]
    return f"swapwizard {single} {typed} (or swapwizard run {typed} for every step left)"


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
         model: Optional[str] = typer.Option(None, "--model", help="Pack only this model."),
         all_checkpoints: bool = typer.Option(False, "--all-checkpoints",
                                              help="Also pack older checkpoints, best/, backups/ and pretrained/.")) -> None:
    """Pack a workspace (or one model) into one archive to move it; each model travels with its newest whole
    checkpoint (weights and optimizer state: training resumes exactly) unless --all-checkpoints."""
    ws = open_workspace(workspace)
    try:
        planned = plan_pack(ws, model=model, all_checkpoints=all_checkpoints)
        err.print(f"Packing {len(planned.files)} files, {planned.size / 1e6:,.1f} MB before compression, "
                  f"into {archive}", markup=False)
        for name, checkpoint in planned.packed_checkpoints.items():
            err.print(f"  model {name}: " + (f"{checkpoint} (the newest whole checkpoint)" if checkpoint else
                                             "no whole checkpoint, so every checkpoint folder"), markup=False)
        if planned.left_out_size and not all_checkpoints:
            err.print(f"  left out: {planned.left_out_size / 1e6:,.1f} MB of older checkpoints, best/, backups/ "
                      "(pack them too with --all-checkpoints)", markup=False)
        path = pack_workspace(ws, Path(archive), model=model, all_checkpoints=all_checkpoints, planned=planned)
    except UserError as exc:
        fail(exc.message, exc.hint)
    out.print(f"Wrote {path} ({path.stat().st_size / 1e6:,.1f} MB)", markup=False)


@app.command()
def unpack(archive: str = typer.Argument(...),
           target: str = typer.Argument(..., help="New workspace folder, or an existing workspace for a model archive."),
           max_gb: float = typer.Option(MAX_UNPACK_BYTES / GIB, "--max-gb",
                                        help="Refuse archives that unpack to more than this many GiB "
                                             "(1 GiB = 1024^3 bytes)."),
           model: Optional[str] = typer.Option(None, "--model", help="A model archive (pack --model): unpack it "
                                               "into the existing workspace TARGET as model/NAME.")) -> None:
    """Unpack an archive made by pack; refuses unsafe entries and oversized archives, and never overwrites.

    A model archive goes into an existing workspace (its model/ folder), beside that workspace's own
    models; the workspace's footage, faces and other models are not touched."""
    try:
        path = unpack_archive(Path(archive), Path(target), max_bytes=int(max_gb * GIB), model=model,
                              notice=lambda said: err.print(f"notice: {said}", markup=False))
    except UserError as exc:
        fail(exc.message, exc.hint)
    info_path = path / "model.json"
    if path.parent.name == "model" and (path.parent.parent / CONFIG_NAME).is_file():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        shape = info.get("model_options") or {}
        about = ", ".join(part for part in (
            f"iteration {info['iteration']}" if "iteration" in info else "",
            f"{shape.get('arch')} at {shape.get('resolution')} px" if shape else "",
            f"preset {info['preset']}" if info.get("preset") else "") if part)
        ws_root = path.parent.parent
        out.print(f"Unpacked model {path.name!r} ({about or 'no model.json'}) into {path}. The workspace's footage, "
                  "faces and other models are unchanged.", markup=False)
        out.print(f"Merge with it: swapwizard merge {ws_root} --model {path.name} (add --dst CLIP for another clip); "
                  f"train it on: swapwizard train {ws_root} --model {path.name}", markup=False)
        return
    out.print(f"Unpacked into {path}", markup=False)
