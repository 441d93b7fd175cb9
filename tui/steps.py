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
from tui.job_table import JobTable

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


def job_step(jobs: JobTable, kind: str | None) -> str | None:
    """The wizard step that shows a job of ``kind`` (None: no step does, or it moves through them all)."""
    home = jobs.home(kind)
    return home if home in STEP_NAMES else None


def _engine_status(engine_steps: dict[str, Any], name: str) -> str:
    record = engine_steps.get(name) or {}
    status = record.get("status", "todo") if isinstance(record, dict) else str(record)
    return status if status in ("todo", "running", "done", "failed") else "todo"


def step_statuses(ws: Workspace | None, engine_steps: dict[str, Any], board: JobBoard,
                  jobs: JobTable) -> dict[str, str]:
    """``{wizard step: "done" | "running" | "failed" | "todo"}`` (``jobs``: the engine's job kinds)."""
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
        step = job_step(jobs, job.kind)
        if step and job.status == "running" and jobs.moves_steps(job.kind):
            statuses[step] = "running"
    return statuses


def landing_step(statuses: dict[str, str], running_kind: str | None, jobs: JobTable) -> str:
    """Where the wizard opens: the running job's step, else the first step not done."""
    home = job_step(jobs, running_kind)
    if home:
        return home
    for name in STEP_NAMES:
        if statuses.get(name) != "done":
            return name
    return "export"
