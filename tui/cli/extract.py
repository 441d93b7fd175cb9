"""Extraction commands: probe, extract, sort, faceset pack/unpack (check: tui/cli/check.py).

    swapwizard probe FILE_OR_FOLDER [--json]
    swapwizard extract WS [--side both|src|dst] [--face-type T] [--size N] [--track N | --person N |
                          --reference PHOTO|FRAME] [--force] [--detach]
    swapwizard sort WS --side src --by blur|yaw|pitch|size|hist|best [--keep N] [--restore]
    swapwizard faceset pack WS FILE [--side src]
    swapwizard faceset unpack WS FILE [--side src] [--force]

Everything but ``probe`` runs as a job in the workspace's engine (progress bars on stderr; Ctrl-C
detaches).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from engine.errors import UserError
from engine.media.probe import probe as probe_media
from tui.cli.app import app
from tui.cli.common import fail, open_workspace, out
from tui.cli.follow import run_job
from tui.cli.options import check_workspace, setting_options

faceset_app = typer.Typer(help="Pack a side's aligned faces into one file, or unpack one.", no_args_is_help=True)
app.add_typer(faceset_app, name="faceset")

SORT_METHODS = ("blur", "yaw", "pitch", "size", "hist", "best", "identity", "alignment")


def _side(side: str, allow_both: bool = False) -> str:
    allowed = ("src", "dst", "both") if allow_both else ("src", "dst")
    if side not in allowed:
        fail(f"--side {side!r} is not one of {', '.join(allowed)}.", "src is the source person, dst the destination.")
    return side


@app.command()
def probe(path: str = typer.Argument(..., help="A video file or a folder of images."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Describe a video or image folder: size, fps (variable?), duration, frames, codec, rotation, audio."""
    try:
        info = probe_media(path)
    except UserError as exc:
        fail(exc.message, exc.hint)
    if as_json:
        out.print_json(json.dumps(info.to_dict()))
        return
    lines = [("file", info.path), ("kind", info.kind), ("size", f"{info.width}x{info.height}")]
    if info.kind == "video":
        lines += [("fps", f"{info.fps:g}" + (" (variable)" if info.variable_fps else "")),
                  ("duration", f"{info.duration:.2f} s"), ("frames", str(info.frame_count)),
                  ("codec", f"{info.codec} {info.pixel_format}".strip()), ("rotation", f"{info.rotation} degrees"),
                  ("video start", f"{info.video_start:.3f} s")]
        for stream in info.audio:
            lines.append(("audio", f"#{stream.index} {stream.codec} {stream.sample_rate or '?'} Hz "
                                   f"{stream.channels}, starts at {stream.start:.3f} s"))
        if not info.audio:
            lines.append(("audio", "none"))
    else:
        lines += [("images", str(info.frame_count))]
        if info.ignored:
            lines.append(("skipped", f"{len(info.ignored)} non-image files ({', '.join(info.ignored[:3])}...)"))
    for key, value in lines:
        out.print(f"{key:<12} {value}", highlight=False)


@app.command()
@setting_options("extract")
def extract(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    side: str = typer.Option("both", "--side", help="src, dst or both."),
    track: Optional[int] = typer.Option(None, "--track", help="Target person: the one of this track (data_<side>/tracks/)."),
    person: Optional[int] = typer.Option(None, "--person", help="Target person by id (data_<side>/people/person_N.jpg)."),
    reference: Optional[str] = typer.Option(None, "--reference",
                                            help="Target the person most like this photo, or a frame number of the side."),
    force: bool = typer.Option(False, "--force", help="Extract again even if the side is done."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
    settings: Optional[dict] = None,
) -> None:
    """Find, track and align faces: aligned crops and face records per side."""
    ws = open_workspace(workspace)
    _side(side, allow_both=True)
    check_workspace(ws, "extract")
    for name, value in (("track", track), ("person", person), ("reference", reference)):
        if value is not None and side == "both":
            fail(f"--{name} needs one side (the source and destination are different people).",
                 "Add --side src or --side dst.")
    if reference is not None and not reference.strip().isdigit():
        photo = Path(reference).expanduser().resolve()
        if not photo.is_file():
            fail(f"There is no reference photo at {reference}.", "Give the path of a photo of the person, or a frame number.")
        reference = str(photo)
    params = {**(settings or {}), "side": side, "track": track, "person": person,
              "reference": reference, "force": force}
    run_job(ws, "extract", {k: v for k, v in params.items() if v is not None}, detach=detach)


@app.command()
def sort(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    side: str = typer.Option("src", "--side", help="src or dst."),
    by: str = typer.Option("blur", "--by", help=f"One of {', '.join(SORT_METHODS)}."),
    keep: Optional[int] = typer.Option(None, "--keep", help="Keep this many (blur, size, best); the rest go to trash."),
    similarity: float = typer.Option(0.98, "--similarity", help="hist: correlation that counts as a duplicate."),
    restore: bool = typer.Option(False, "--restore", help="Move every trashed face back into aligned/."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
) -> None:
    """Sort a side's faces; rejects move to data_<side>/aligned_trash/ (never deleted)."""
    ws = open_workspace(workspace)
    _side(side)
    if by not in SORT_METHODS:
        fail(f"--by {by!r} is not a sort method.", f"Use one of: {', '.join(SORT_METHODS)}.")
    params = {"side": side, "by": by, "keep": keep, "similarity": similarity, "restore": restore}
    run_job(ws, "sort", {k: v for k, v in params.items() if v is not None}, detach=detach)


def _faceset(action: str, workspace: str, file: str, side: str, force: bool, detach: bool) -> None:
    ws = open_workspace(workspace)
    _side(side)
    path = Path(file).expanduser().resolve()
    if action == "unpack" and not path.is_file():
        fail(f"{file} does not exist.", "Check the path (quote it if it has spaces).")
    run_job(ws, "faceset", {"action": action, "side": side, "file": str(path), "force": force}, detach=detach)


@faceset_app.command("pack")
def faceset_pack(workspace: str = typer.Argument(..., help="The workspace folder."),
                 file: str = typer.Argument(..., help="Zip file to write."),
                 side: str = typer.Option("src", "--side", help="src or dst."),
                 detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once.")) -> None:
    """Pack the side's target-person faces (crops + records) into one zip file (no pickle)."""
    _faceset("pack", workspace, file, side, False, detach)


@faceset_app.command("unpack")
def faceset_unpack(workspace: str = typer.Argument(..., help="The workspace folder."),
                   file: str = typer.Argument(..., help="Face set zip file."),
                   side: str = typer.Option("src", "--side", help="src or dst."),
                   force: bool = typer.Option(False, "--force", help="Replace faces the side already has."),
                   detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once.")) -> None:
    """Unpack a face set into a side (instead of extracting it from footage)."""
    _faceset("unpack", workspace, file, side, force, detach)
