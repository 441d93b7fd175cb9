"""The wizard's steps, and where each one stands.

The engine records its pipeline steps (``extract_src``, ``extract_dst``, ``check``, ``train``,
``merge``) in the workspace; the wizard shows the steps a person thinks in (pick a workspace, pick
the videos, extract, check, train, tune the merge, export) and derives each one's status from the
engine's records, the workspace's files and the jobs running now.
"""

from __future__ import annotations

from typing import Any

from engine.workspace import SIDES, Workspace
from tui.job_board import JobBoard

#: (screen name, label) in the order the wizard walks them.
WIZARD_STEPS: tuple[tuple[str, str], ...] = (
    ("workspace", "Workspace"),
    ("sources", "Sources"),
    ("extract", "Extract"),
    ("check", "Check"),
    ("train", "Train"),
    ("merge", "Merge"),
    ("export", "Export"),
)
STEP_NAMES = tuple(name for name, _ in WIZARD_STEPS)
#: Which wizard step shows a job of each kind.
KIND_TO_STEP = {
    "extract": "extract",
    "sort": "extract",
    "check": "check",
    "train": "train",
    "merge_preview": "merge",
    "merge": "export",
}


#: Jobs that show a step's result without running the step.
PREVIEW_KINDS = ("merge_preview",)


def _engine_status(engine_steps: dict[str, Any], name: str) -> str:
    record = engine_steps.get(name) or {}
    status = record.get("status", "todo") if isinstance(record, dict) else str(record)
    return status if status in ("todo", "running", "done", "failed") else "todo"


def step_statuses(ws: Workspace | None, engine_steps: dict[str, Any], board: JobBoard) -> dict[str, str]:
    """``{wizard step: "done" | "running" | "failed" | "todo"}``."""
    statuses = dict.fromkeys(STEP_NAMES, "todo")
    if ws is None:
        return statuses
    statuses["workspace"] = "done" if ws.consent_confirmed() else "todo"
    statuses["sources"] = "done" if all(ws.source(side) is not None for side in SIDES) else "todo"
    extract = [_engine_status(engine_steps, f"extract_{side}") for side in SIDES]
    if "running" in extract:
        statuses["extract"] = "running"
    elif "failed" in extract:
        statuses["extract"] = "failed"
    elif all(s == "done" for s in extract):
        statuses["extract"] = "done"
    statuses["check"] = _engine_status(engine_steps, "check")
    statuses["train"] = _engine_status(engine_steps, "train")
    statuses["export"] = _engine_status(engine_steps, "merge")
    # Tuning the merge has no record of its own: it counts as done once a result was exported.
    statuses["merge"] = "done" if statuses["export"] == "done" else "todo"
    # The stream is fresher than the last status reply: a job running now marks its step (a merge preview
    # is tuning, not the step running: the bar said "6 Merge" running while one frame rendered).
    for job in board.jobs.values():
        step = KIND_TO_STEP.get(job.kind)
        if step and job.status == "running" and job.kind not in PREVIEW_KINDS:
            statuses[step] = "running"
    return statuses


def landing_step(statuses: dict[str, str], running_kind: str | None) -> str:
    """Where the wizard opens: the running job's step, else the first step not done."""
    if running_kind and running_kind in KIND_TO_STEP:
        return KIND_TO_STEP[running_kind]
    for name in STEP_NAMES:
        if statuses.get(name) != "done":
            return name
    return "export"
