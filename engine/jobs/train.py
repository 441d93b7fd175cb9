"""Training job: teach a model to turn the dst person's face into the src person's.

    swapwizard train WS [--preset saehd|quick|tiny] [--iters N] [--until good] [--for 2h] [--model NAME] [--gpus N]

Runs in the engine's job process; streams metrics, progress and previews; saves checkpoints to
``WS/model/<name>/`` (see engine.train.checkpoint) every ``save_every_min`` minutes and before it
stops (target reached, cancel, SIGTERM, or a client's {"command": "save"}). With ``gpus > 1`` it
launches ``python -m torch.distributed.run --nproc_per_node N -m engine.ddp_worker`` and
relays rank 0's events. The result holds the final losses and the loss history (also in
``WS/model/<name>/loss_history.json``), why it stopped (``stopped``: target, good, plateau, time,
terminated) and ``stop_reason``, one sentence. ``--until good`` and ``--for`` hand the loop
``engine.quality.until.UntilGood`` as its stop rule.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from engine import settings
from engine.errors import UserError
from engine.jobs import JobKind
from engine.quality.estimate import read_state
from engine.quality.training import TrainingQuality
from engine.quality.until import UntilGood, duration_seconds
from engine.report import Reporter
from engine.train.signals import stop_on_sigterm
from engine.workspace import Workspace


def moved_steps(params: Params) -> list[str]:
    return [] if params.pretrain_faces else ["train"]


@dataclass
class Params(settings.overrides_class("TrainSettings", "train", module=__name__)):
    """Every [train] setting (engine/settings.py; None: workspace.toml, the model's last run, the
    preset), plus the job's own switches."""

    #: GPUs to train on together (DistributedDataParallel).
    gpus: int = 1
    #: Several machines (engine.train.launch): how many, this one's number (0 holds the model), and node
    #: 0's HOST:PORT for torchrun's rendezvous.
    nnodes: int = 1
    node_rank: int = 0
    master: str = ""
    #: A folder of aligned faces (or a workspace) to pretrain on; both sides come from it.
    pretrain_faces: str = ""
    #: Test switches: force a NaN loss / an out-of-memory error once at this iteration (-1 never).
    debug_nan_at: int = -1
    debug_oom_at: int = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gpus < 1:
            raise UserError(f"gpus = {self.gpus} (the request) is out of range.", "Use 1 or more, e.g. --gpus 2.")
        if self.nnodes > 1:
            from engine.train.launch import launcher_args

            launcher_args(self.gpus, self.nnodes, self.node_rank, self.master)  # one sentence if wrong
        duration_seconds(self.time_limit or "")  # one sentence if it is not a duration


def stop_rule(ws: Workspace, params: Params) -> functools.partial | None:
    """The loop's stop rule for ``--until good`` / ``--for`` (None: train to the target)."""
    toml = settings.read(ws, "train")
    until = params.until or toml["until"]
    limit_s = duration_seconds(params.time_limit or toml["time_limit"])
    good = until == "good" and not params.pretrain_faces  # pretraining has no verdicts: only --for applies
    if not good and limit_s is None:
        return None
    return functools.partial(UntilGood, good=good, limit_s=limit_s)


def config(ws: Workspace, params: Params):
    """The resolved run (engine.train.options.RunConfig) these parameters ask for."""
    from engine.train.resolve import resolve

    return resolve(ws, params.overrides(), pretrain_faces=params.pretrain_faces, debug_nan_at=params.debug_nan_at,
                   debug_oom_at=params.debug_oom_at)


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    resolved = config(ws, params)  # bad parameters fail here, with the user's message, before any spawn
    rule = stop_rule(ws, params)
    if params.gpus > 1 or params.nnodes > 1:
        from engine.train.launch import run_distributed

        # Rank 0 (on node 0) keeps the rule, as it keeps the quality watcher; the ranks agree on its stop.
        result = run_distributed(ws, resolved, params.gpus, report, params.nnodes, params.node_rank, params.master,
                                 until=None if rule is None else dict(rule.keywords))
        if params.node_rank > 0:
            return result
    else:
        from engine.train.loop import TrainingRun

        with stop_on_sigterm() as stopped:
            result = TrainingRun(ws, resolved, report, stop_requested=stopped, watch=TrainingQuality,
                                 until=rule).run()
    if rule is not None and rule.keywords["good"] and result.get("stopped") == "target":
        estimate = read_state(resolved.model_dir).get("until_text")
        result["stop_reason"] += f" It was not good yet: {estimate}" if estimate else " Quality was not measured."
        report.log(result["stop_reason"])
    return result


JOB = JobKind(kind="train", params=Params, run=run, steps=moved_steps, stoppable=True, screens=("train",),
              label="Training")
