"""Job ``extract``: aligned face crops and face records for the source and/or destination.

Every setting (declared in engine/settings.py) left ``None`` takes the workspace's ``[extract]`` value
(workspace.toml), else the default; the values used are written back there so the wizard and the next run reuse them.
Finished sides are skipped unless ``force``; an interrupted side resumes where it stopped. ``track``
picks the target person of one side (the ids and thumbnails are in ``data_<side>/tracks/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine import settings as declared
from engine.errors import UserError
from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params(declared.overrides_class("ExtractKnobs", "extract", module=__name__)):
    """Every [extract] setting (engine/settings.py; None: the workspace's value), plus the job's own."""

    side: Literal["src", "dst", "both"] = "both"
    #: Target track (person) of the side; needs side "src" or "dst".
    track: int | None = None
    #: Target person by id (data_<side>/people/person_N.jpg); needs side "src" or "dst".
    person: int | None = None
    #: Target the person most like this photo (a path), or a frame number of the side's footage.
    reference: str | None = None
    #: Redo sides that are already extracted (their crops and records are replaced).
    force: bool = False


def sides(params: Params) -> list[str]:
    return ["src", "dst"] if params.side == "both" else [params.side]


def moved_steps(params: Params) -> list[str]:
    return [f"extract_{side}" for side in sides(params)]


def settings_from(ws: Workspace, params: Params):
    """ExtractSettings from workspace.toml's [extract] with the job's non-None values applied (checked)."""
    from engine.faces.extract import ExtractSettings

    return ExtractSettings(**declared.layered("extract", ("workspace.toml", ws.section("extract")),
                                              ("the request", params.overrides())))


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from dataclasses import asdict

    from engine.faces.extract import extract_side

    for name in ("track", "person", "reference"):
        if getattr(params, name) is not None and params.side == "both":
            raise UserError(f"--{name} needs one side (the source and destination are different people).",
                            "Add --side src or --side dst.")
    if params.reference is not None and not str(params.reference).strip().isdigit():
        path = Path(params.reference).expanduser()
        params.reference = str(path if path.is_absolute() else ws.root / path)
    settings = settings_from(ws, params)
    results = {}
    for side in sides(params):
        report.check_cancelled()
        results[side] = extract_side(ws, side, settings, report, force=params.force, track=params.track,
                                     person=params.person, reference=params.reference)
        # Saved once a side is done with them, so a refused or failed run leaves workspace.toml alone.
        ws.update_settings("extract", asdict(settings))
    summary = {f"{side}_faces": r.get("target_faces", r["faces"]) for side, r in results.items()}
    return {**summary, "sides": results}


JOB = JobKind(kind="extract", params=Params, run=run, steps=moved_steps, stoppable=True, screens=("extract",),
              label="Extracting faces")
