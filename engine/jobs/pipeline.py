"""Job ``run``: the whole pipeline unattended: extract both sides, check, train, merge and export.

When the ``[merge] mask`` names ``segment``, the segmenter is trained and applied (job ``segment``)
before training, unless the destination has its masks already; with ``auto`` (the default) only when
the destination's faces have something in front of them (``engine.segment.auto`` says why). Steps already done (``ws.steps()``) are skipped; a step left unfinished (running when the engine
or machine stopped, failed, cancelled) runs again and resumes where its own job resumes
(extraction and merge keep their finished parts, training its checkpoints). Each stage calls the
other job kinds' ``run`` in this process with the same reporter, so clients see one job with
every stage's progress, metrics and previews.

This job records each step's status itself as it reaches it, with the same ``StepRecorder`` the
engine uses around other jobs (engine/jobs/steps.py), so it declares no ``steps`` for the engine to
mark wholesale; its declaration's ``managed_steps`` says which steps it moves (all of them): the engine
settles any of them still running when the job's process ends (killed mid-stage, say).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine import settings
from engine.errors import JobCancelled, UserError
from engine.jobs import JobKind, get_kind
from engine.jobs.steps import CANCELLED, FAILED, FINISHED, StepRecorder, describe_failure
from engine.report import Reporter
from engine.workspace import STEPS as WORKSPACE_STEPS
from engine.workspace import Workspace


@dataclass
class Params(settings.overrides_class("RunSettings", "train", only=("preset", "iters", "until", "time_limit"),
                                     module=__name__)):
    """[train] preset, iters, until and time_limit (engine/settings.py; None: the workspace's choice, else the
    preset's; until: good, so the preset's target is the ceiling), checked at submit so a bad value fails
    before extraction starts; and the run's own parameters."""

    #: Model name; None lets training and merging pick theirs ([train] model, else "default"). Not "": the
    #: [train] model setting's name check (engine.settings) refuses an empty name, and skips None.
    model: str | None = None
    #: Content Credentials for the exported files (False: --no-c2pa) and a certificate/key over [c2pa].
    c2pa: bool = True
    c2pa_cert: str = ""
    c2pa_key: str = ""


def _params_for(kind: str, wanted: dict[str, Any]) -> Any:
    """The job kind's Params from the values it knows (others are left at its defaults)."""
    job = get_kind(kind)
    fields = {f.name for f in dataclasses.fields(job.params_type)}
    return job, job.parse_params({k: v for k, v in wanted.items() if k in fields and v is not None})


def plan(ws: Workspace, params: Params) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(job kind, steps it completes, its parameters) for every step not yet done, in order."""
    records = ws.steps()
    done = {step for step, record in records.items() if record.get("status") == "done"}
    trained = records["train"].get("result") or {}
    trained_to = trained.get("iteration")
    if "train" in done and params.iters and isinstance(trained_to, int) and trained_to < params.iters \
            and trained.get("stopped") not in ("good", "plateau"):
        # Asked to train further than last time: train on, then merge again with the better model.
        done -= {"train", "merge"}
    stages: list[tuple[str, list[str], dict[str, Any]]] = []
    sides = [side for side in ("src", "dst") if f"extract_{side}" not in done]
    if sides:
        stages.append(("extract", [f"extract_{s}" for s in sides], {"side": sides[0] if len(sides) == 1 else "both"}))
    if "check" not in done:
        stages.append(("check", ["check"], {}))
    from engine.segment import store  # numpy: not on the engine's start path (docs/architecture.md)

    mask = settings.read(ws, "merge")["mask"]
    if ("train" not in done or "merge" not in done) and ("segment" in mask or mask == "auto") \
            and not store.has_masks(ws, "dst"):
        # The merge's mask needs the segmenter's masks: made before training, whose masked loss uses them too.
        # With "auto" only when the destination's faces have occluders (engine.segment.auto; it says why).
        stages.append(("segment", [], {"side": "both", "auto": mask == "auto"}))
    if "train" not in done:
        # Unattended, training stops when the model is good (the preset's target is the ceiling).
        until = params.until or ws.section("train").get("until") or "good"
        stages.append(("train", ["train"], {"preset": params.preset, "iters": params.iters, "until": until,
                                             "time_limit": params.time_limit, "model": params.model or None}))
    if "merge" not in done:
        stages.append(("merge", ["merge"], {"model": params.model or None, "c2pa": params.c2pa,
                                             "c2pa_cert": params.c2pa_cert, "c2pa_key": params.c2pa_key}))
    return stages


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    if ws.source("src") is None or ws.source("dst") is None:
        raise UserError("The workspace needs both a source and a destination before it can run.",
                        f"Add the missing one with: swapwizard sources {ws.root} --src SOURCE --dst DESTINATION "
                        "(either option alone adds that side).")
    stages = plan(ws, params)
    skipped = [step for step in WORKSPACE_STEPS if not any(step in steps for _, steps, _ in stages)]
    if skipped:
        report.log(f"Already done, skipped: {', '.join(skipped)}.")
    if params.c2pa and any(kind == "merge" for kind, _, _ in stages):
        # A bad signing certificate fails now, not after extraction and training (--no-c2pa is said by merge).
        from engine.media.credentials import for_workspace

        for_workspace(ws, report, enabled=params.c2pa, cert=params.c2pa_cert, key=params.c2pa_key)
    results: dict[str, Any] = {}
    recorder = StepRecorder(ws, on_error=report.warning, job=JOB.kind)
    for number, (kind, steps, wanted) in enumerate(stages, 1):
        report.check_cancelled()
        job, job_params = _params_for(kind, wanted)
        recorded = dataclasses.asdict(job_params)
        report.log(f"Stage {number}/{len(stages)}: {kind} ({', '.join(steps)}).")
        recorder.started(steps, recorded)
        try:
            result = job.module.run(ws, job_params, report)
        except JobCancelled:
            recorder.ended(steps, CANCELLED, recorded)
            raise
        except Exception as exc:
            error, hint = describe_failure(kind, exc)
            recorder.ended(steps, FAILED, recorded, error=error, hint=hint)
            raise
        result = result if isinstance(result, dict) else {}
        recorder.ended(steps, FINISHED, recorded, result=result)
        results[kind] = result
    output = results.get("merge", {}).get("output") or "output/result.mp4"
    report.log(f"All steps done: {output}")
    return {"stages": [kind for kind, _, _ in stages], "skipped": skipped, "output": output, "results": results}


JOB = JobKind(kind="run", params=Params, run=run, managed_steps=WORKSPACE_STEPS, stoppable=True,
              screens=("extract", "check", "train", "export"), label="Running every step")
