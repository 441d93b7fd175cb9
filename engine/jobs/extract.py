"""Job ``extract``: aligned face crops and face records for the source and/or destination.

Every setting left ``None`` takes the workspace's ``[extract]`` value (workspace.toml), else the
default; the values used are written back there so the wizard and the next run reuse them.
Finished sides are skipped unless ``force``; an interrupted side resumes where it stopped. ``track``
picks the target person of one side (the ids and thumbnails are in ``data_<side>/tracks/``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from engine.errors import UserError
from engine.report import Reporter
from engine.workspace import Workspace

KIND = "extract"

#: Settings a job parameter may override (names of engine.faces.extract.ExtractSettings).
KNOBS = ("face_type", "size", "crop_format", "jpeg_quality", "detect_every", "min_confidence", "min_presence",
         "rotate_retry", "small_faces", "smooth", "min_cutoff", "beta", "write_frames")


@dataclass
class Params:
    side: Literal["src", "dst", "both"] = "both"
    face_type: str | None = None
    size: int | None = None
    #: Target track (person) of the side; needs side "src" or "dst".
    track: int | None = None
    #: Redo sides that are already extracted (their crops and records are replaced).
    force: bool = False
    write_frames: bool | None = None
    crop_format: str | None = None
    jpeg_quality: int | None = None
    detect_every: int | None = None
    min_confidence: float | None = None
    min_presence: float | None = None
    rotate_retry: bool | None = None
    small_faces: bool | None = None
    smooth: bool | None = None
    min_cutoff: float | None = None
    beta: float | None = None


def sides(params: Params) -> list[str]:
    return ["src", "dst"] if params.side == "both" else [params.side]


def STEPS(params: Params) -> list[str]:  # noqa: N802 - the job contract's name
    return [f"extract_{side}" for side in sides(params)]


def settings_from(ws: Workspace, params: Params):
    """ExtractSettings from workspace.toml's [extract] with the job's non-None values applied."""
    from engine.faces.extract import ExtractSettings

    defaults = ExtractSettings()
    saved = ws.section("extract")
    values = {}
    for f in fields(ExtractSettings):
        chosen = getattr(params, f.name, None) if f.name in KNOBS else None
        value = chosen if chosen is not None else saved.get(f.name, getattr(defaults, f.name))
        expected = type(getattr(defaults, f.name))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise UserError(f"[extract] {f.name} = {value!r} in workspace.toml is not a {expected.__name__}.",
                            f"Fix it in {ws.config_path}, or delete the line to use the default.")
        values[f.name] = value
    settings = ExtractSettings(**values)
    settings.check()
    return settings


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from dataclasses import asdict

    from engine.faces.extract import extract_side

    if params.track is not None and params.side == "both":
        raise UserError("--track needs one side.", "Add --side src or --side dst.")
    settings = settings_from(ws, params)
    results = {}
    for side in sides(params):
        report.check_cancelled()
        results[side] = extract_side(ws, side, settings, report, force=params.force, track=params.track)
        # Saved once a side is done with them, so a refused or failed run leaves workspace.toml alone.
        ws.update_settings("extract", asdict(settings))
    summary = {f"{side}_faces": r.get("target_faces", r["faces"]) for side, r in results.items()}
    return {**summary, "sides": results}
