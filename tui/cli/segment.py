"""``swapwizard segment WS`` (train the segmenter and write the masks) and ``swapwizard masks ...``
(export crops and masks for painting, import the painted masks as labels).

All run as jobs in the workspace's engine (engine/jobs/segment.py, masks_export.py, masks_import.py).
The ``[segment]`` settings (engine/settings.py) are options of ``segment``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from engine.errors import UserError
from tui.cli.app import app
from tui.cli.common import EXIT_DONE, fail, open_workspace
from tui.cli.follow import run_job, submit_and_follow
from tui.cli.options import check_workspace, setting_options

masks_app = typer.Typer(help="Masks to paint: export crops and masks as PNG pairs, import the painted masks.",
                        no_args_is_help=True)
app.add_typer(masks_app, name="masks")

SIDES = ("dst", "src", "both")


def _side(side: str, allowed: tuple[str, ...] = SIDES) -> str:
    if side not in allowed:
        fail(f"--side {side} is not one of {', '.join(allowed)}.", f"For example: --side {allowed[0]}")
    return side


@app.command()
@setting_options("segment")
def segment(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    side: str = typer.Option("both", "--side", help="dst, src or both (the extracted sides): trained on and masked."),
    train: bool = typer.Option(True, "--train/--no-train", help="Train (or continue) before writing the masks; "
                               "--no-train applies the segmenter there is."),
    import_from: str = typer.Option("", "--from", help="Use the segmenter exported to this folder (from another "
                                    "workspace) instead of starting a new one."),
    export_to: str = typer.Option("", "--export", help="Also write the segmenter (safetensors + JSON) to this folder."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
    settings: Optional[dict] = None,
) -> None:
    """Train the segmenter (the visible face: hands, microphones, hair stay out) and write a mask per face."""
    ws = open_workspace(workspace)
    check_workspace(ws, "segment")
    # The engine runs in the workspace: folders typed here are made absolute here, as this shell means them.
    import_from, export_to = (str(Path(p).expanduser().absolute()) if p else "" for p in (import_from, export_to))
    params = {"side": _side(side), "train": train, "import_from": import_from, "export_to": export_to,
              **(settings or {})}
    run_job(ws, "segment", params, detach=detach)


@masks_app.command("export")
def masks_export(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    side: str = typer.Option("dst", "--side", help="dst or src."),
    folder: str = typer.Option("masks_edit", "--to", help="Folder to write (relative to the workspace)."),
    frames: str = typer.Option("", "--frames", help="Only these frames, e.g. 10-50,80."),
    worst: int = typer.Option(0, "--worst", help="Only the N faces the segmenter doubts most (worst first)."),
    marked: str = typer.Option("", "--marked", help="Only the faces marked so in the wizard's mask review: "
                               "rejected (to paint), accepted or unmarked."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
) -> None:
    """Write face crops and their current masks as PNG pairs (NAME.png, NAME_mask.png) to paint."""
    ws = open_workspace(workspace)
    if marked not in ("", "rejected", "accepted", "unmarked"):
        fail(f"--marked {marked} is not one of rejected, accepted, unmarked.", "For example: --marked rejected")
    params = {"side": _side(side, ("dst", "src")), "folder": folder, "frames": frames, "worst": worst,
              "marked": marked}
    run_job(ws, "masks_export", params, detach=detach)


@masks_app.command("import")
def masks_import(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    folder: str = typer.Argument("masks_edit", help="The folder with the painted NAME_mask.png files."),
    side: str = typer.Option("dst", "--side", help="dst or src."),
    retrain: bool = typer.Option(True, "--retrain/--no-retrain", help="Retrain the segmenter with the painted "
                                 "masks and write the masks again."),
) -> None:
    """Read painted masks back as labels that outrank the automatic ones; then retrain the segmenter."""
    ws = open_workspace(workspace)
    _side(side, ("dst", "src"))
    if not ws.alignments_path(side).is_file():
        fail(f"The {side} faces have not been extracted yet, so there are no masks to import.",
             f"Run: swapwizard extract {ws.root} --side {side}")
    # The folder is the user's input: checked here as the job will (names, sizes, greyscale), so a bad
    # one is a usage error (exit 2) before anything is queued; the job checks again against the records.
    from engine.segment.painted import check_folder, crop_sizes  # numpy: not at the CLI's start

    path = Path(folder).expanduser()
    try:
        check_folder(path if path.is_absolute() else ws.root / path, side, crop_sizes(ws.side_dir(side)), ws.root)
    except UserError as exc:
        fail(exc.message, exc.hint)
    code = submit_and_follow(ws, "masks_import", {"side": side, "folder": folder})
    if code != EXIT_DONE or not retrain:
        raise typer.Exit(code)
    run_job(ws, "segment", {"side": side})
