"""The training loop: batches, steps, guards, checkpoints, metrics and previews.

``TrainingRun(ws, config, report).run()`` trains until the target iteration, a cancel, SIGTERM
(``stop_requested``) or a client command, saving before it stops. Guards:

- a non-finite loss rolls back to the last good checkpoint, halves the learning rate, reports it;
- out of GPU memory halves the batch size and goes on, and reports it;
- every decision is taken at a *sync point* (every ``sync_every`` iterations, where the losses are
  read back from the device), the same iteration on every rank under DistributedDataParallel.

Clients see ``metrics`` (iter, loss_src, loss_dst, iters_per_s, samples_per_s -- faces per second,
both sides --, eta_s, target, lr, batch_size) at most ``METRICS_INTERVAL_S`` apart, ``progress``
for the iteration count, and ``preview`` events; commands ``{"command": "preview"}``,
``{"command": "save"}`` and ``{"command": "set_target", "iters": N}`` are answered at the next
sync point.

A ``watch`` factory gives the run a ``Watcher``: called at every sync point (``step``) and after every
checkpoint (``saved``), its ``latest`` values ride on the metrics events. The train job passes
``engine.quality.training.TrainingQuality`` (held-out SSIM/PSNR, the training cost): training never
imports ``engine.quality``, which sits above it (docs/architecture.md). The loop never waits for a
measurement: the watcher measures a copy of the weights beside training, and a new measurement goes
out in a metrics event at the next sync point (``measured_iteration`` changed); the loop's own time
inside the watcher is clocked (``quality_wait_s`` in the result). A run that reaches its target waits
for its last measurement (a cancel still ends that wait); a cancel or a stop drops it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from engine import settings
from engine.atomic import atomic_write_json
from engine.errors import JobCancelled, UserError
from engine.report import Reporter
from engine.train import preview, samples
from engine.train.augment import Augmenter, MatchingSampler, Sampler, expression_features
from engine.train.checkpoint import CheckpointStore, Loaded, decode_bytes, encode_bytes
from engine.train.device import pick_device, tune_for
from engine.train.dist import Dist
from engine.train.history import LossHistory
from engine.train.models import init_weights
from engine.train.options import ModelOptions, RunConfig, from_dict
from engine.train.trainer import Trainer
from engine.workspace import Workspace

METRICS_INTERVAL_S = 0.3
STOP_CANCELLED, STOP_TERMINATED, STOP_RULE = 1, 2, 3


class Watcher(Protocol):
    """What the loop drives beside training (on rank 0 only, never while pretraining); an error it
    raises is reported once and the run goes on without it."""

    #: Values added to every metrics event (``quality_ssim_dst`` ...): the newest measurement.
    latest: dict[str, Any]
    #: The iteration ``latest`` was measured at (-1: none yet).
    measured_iteration: int

    def step(self, network: torch.nn.Module, iteration: int) -> None: ...

    def saved(self, network: torch.nn.Module, iteration: int) -> None: ...

    def finish(self, cancelled: Callable[[], bool]) -> bool: ...

    def drop(self) -> None: ...


#: ``watch(ws, model_dir, resolution, device, log)`` -> the run's ``Watcher``.
WatcherFactory = Callable[[Workspace, Path, int, torch.device, Callable[[str], None]], Watcher]


class StopRule(Protocol):
    """When to stop before the target (``train --until good``, ``--for``: the train job passes
    ``engine.quality.until.UntilGood``); asked on rank 0 at every sync point with the watcher's latest
    values. Made like the watcher (``StopRuleFactory``)."""

    #: Values added to every metrics event (the estimate: ``until_text`` ...).
    latest: dict[str, Any]
    #: Why it stopped the run, one sentence ("" until it does).
    reason: str

    def check(self, network: torch.nn.Module, iteration: int, quality: dict[str, Any]) -> str | None: ...

    def ended(self, network: torch.nn.Module, iteration: int, quality: dict[str, Any]) -> None:
        """The run reached its target and its last measurement is in: a last estimate, no stop."""


StopRuleFactory = Callable[[Workspace, Path, int, torch.device, Callable[[str], None]], StopRule]


class TrainingRun:
    def __init__(self, ws: Workspace, config: RunConfig, report: Reporter, dist: Dist | None = None,
                 stop_requested: Callable[[], bool] = lambda: False,
                 watch: WatcherFactory | None = None, until: StopRuleFactory | None = None) -> None:
        self.ws, self.cfg, self.report = ws, config, report
        self.dist = dist or Dist()
        self.stop_requested = stop_requested
        self.watch, self.until = watch, until
        self.until_rule: StopRule | None = None
        self.rule_stop = ""
        self.store = CheckpointStore(config.model_dir, backups_keep=config.backups_keep)
        self.warnings: list[str] = []
        self.nan_injected = self.oom_injected = False
        self.rollbacks = 0

    # -- reporting helpers ------------------------------------------------------------------------------
    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.dist.main:
            self.report.warning(message)

    def log(self, message: str) -> None:
        if self.dist.main:
            self.report.log(message)

    # -- set-up -------------------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        if self.dist.enabled and torch.cuda.is_available():
            torch.cuda.set_device(self.dist.local_rank)
            return torch.device("cuda", self.dist.local_rank)
        return pick_device(self.cfg.device)

    def setup(self) -> None:
        cfg = self.cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.device = self._device()
        tune_for(self.device)
        loaded = self.store.load(warn=self.warn)
        pretraining = bool(cfg.pretrain_faces)
        transition = bool(loaded and loaded.state.get("pretraining") and not pretraining)
        model_options = cfg.model_options
        crop_types = {} if pretraining else {side: samples.face_type(self.ws, side) for side in ("src", "dst")}
        if crop_types and None not in crop_types.values() and crop_types["src"] != crop_types["dst"]:
            raise UserError(f"The src crops are {crop_types['src']} but the dst crops are {crop_types['dst']}.",
                            "Extract both sides with the same face type (swapwizard extract WS --force).")
        if loaded:
            model_options = from_dict(ModelOptions, loaded.state["model_options"])
            if crop_types.get("src") and crop_types["src"] != model_options.face_type:
                self.warn(f"This model was trained on {model_options.face_type} crops, but the workspace's crops "
                          f"are now {crop_types['src']}: it will have to unlearn the old framing.")
        elif crop_types.get("src"):
            model_options.face_type = crop_types["src"]
        self.model_options = model_options.validate()
        res = model_options.resolution
        if pretraining:
            faces = samples.load_folder(Path(cfg.pretrain_faces), res, samples.store_dir(self.ws))
            self.faces = {"src": faces, "dst": faces}
        else:
            self.faces = {}
            for side in ("src", "dst"):
                def loading(done: int, total: int, side: str = side) -> None:
                    if self.dist.main:
                        self.report.progress(f"load {side} faces", done, total, unit="faces")

                self.faces[side] = samples.load_side(self.ws, side, res, loading)
        if not all(f.has_landmarks for f in self.faces.values()):
            self.warn("Some faces have no landmarks (no extraction records): the face mask is the whole crop "
                      "and the eyes-and-mouth priority is off for them.")
        torch.manual_seed(cfg.seed)
        try:
            self.trainer = Trainer(model_options, cfg.train_options, self.device, distributed=self.dist.enabled)
        except torch.OutOfMemoryError:
            raise UserError(f"The {model_options.arch} model at {model_options.resolution} px does not fit in "
                            "the GPU's memory.", "Use a smaller preset or dims, or free the GPU (nvidia-smi).") from None
        seed = cfg.seed * 1000 + self.dist.rank * 10
        self.samplers = {"src": self._src_sampler(seed + 1, pretraining),
                         "dst": Sampler(self.faces["dst"], self.device, seed + 2)}
        self.augmenter = Augmenter(res, cfg.train_options, self.device, seed + 3)
        self.pretraining = pretraining
        self.iteration = 0
        self.history = LossHistory()
        self.best_smoothed: float | None = None
        if loaded and transition:
            self.trainer.load(loaded, self.log, with_optimizer=False)
            for name in self.trainer.model.inter_modules():
                init_weights(getattr(self.trainer.model, name))
            if self.dist.main:
                self.store.archive("pretrained")
            if self.dist.enabled:
                torch.distributed.barrier()
            self.log(f"Pretraining ended at iteration {loaded.state['iteration']}: continuing on your pair from "
                     "iteration 0 with the pretrained weights (inter layers re-initialised, as DeepFaceLab does).")
        elif loaded:
            self._restore(loaded)
            self.log(f"Resumed {self.cfg.model_dir.name} at iteration {self.iteration}.")
        self.preview_faces = (self.faces["src"].data[: preview.ROWS], self.faces["dst"].data[: preview.ROWS])
        self.quality: Watcher | None = None
        self.quality_wait_s, self.quality_sent = 0.0, -1
        if self.watch is not None and self.dist.main and not pretraining:
            self._guard_quality(self._start_quality)
        self.last_saved_iter = self.iteration if loaded and not transition else -1
        if self.last_saved_iter < 0:
            self.save()  # a first checkpoint: the roll-back target, and proof the folder is writable
        if self.until is not None and self.dist.main:
            self.until_rule = self.until(self.ws, self.cfg.model_dir, self.model_options.resolution, self.device,
                                         self.log)

    def _src_sampler(self, seed: int, pretraining: bool) -> Sampler:
        """Shuffled epochs, or (``src_sampling = "expression"``) src faces matched to each dst batch."""
        if self.cfg.train_options.src_sampling != "expression" or pretraining:
            return Sampler(self.faces["src"], self.device, seed)
        features = {side: expression_features(self.ws, side, self.faces[side]) for side in ("src", "dst")}
        if features["src"] is None or features["dst"] is None:
            self.warn("Expression-matched sampling needs every face's landmarks: src faces are shuffled instead.")
            return Sampler(self.faces["src"], self.device, seed)
        return MatchingSampler(self.faces["src"], self.device, seed, features["src"], features["dst"])

    def _restore(self, loaded: Loaded, with_optimizer: bool = True) -> None:
        state = loaded.state
        self.trainer.load(loaded, self.log, with_optimizer)
        self.iteration = int(state["iteration"])
        self.history = LossHistory.from_state(state.get("history"))
        self.best_smoothed = state.get("best_smoothed")
        ranks = state.get("samplers", [])
        if self.dist.rank < len(ranks):
            mine = ranks[self.dist.rank]
            changed = [side for side in ("src", "dst") if not self.samplers[side].load_state(mine[side])]
            if changed:
                self.log(f"The {' and '.join(changed)} face set changed since the last save: a new epoch starts.")
            if mine.get("augment_device") == self.device.type:
                self.augmenter.load_state(mine["augment"])
        if "torch_rng" in state:
            torch.set_rng_state(decode_bytes(state["torch_rng"]))

    # -- quality on held-out faces (the watcher: engine.quality's TrainingQuality) -----------------
    def _start_quality(self) -> None:
        assert self.watch is not None
        self.quality = self.watch(self.ws, self.cfg.model_dir, self.model_options.resolution, self.device,
                                  self.log)

    def _guard_quality(self, action: Callable[[], Any], clock: bool = True) -> None:
        """Call the watcher (clocked: the loop's time lost to measuring, unless the loop has ended); if
        it fails, say so once and train on without it (a side measurement must never end a long run)."""
        started = time.perf_counter()
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - reported, and measuring stops
            self.quality = None
            self.warn(f"Quality is no longer measured during this run: {type(exc).__name__}: {exc}")
        if clock:
            self.quality_wait_s += time.perf_counter() - started

    def _quality_news(self) -> bool:
        """Whether the watcher has a measurement the metrics events have not carried yet."""
        return self.quality is not None and self.quality.measured_iteration != self.quality_sent

    # -- checkpoints and previews -------------------------------------------------------------------
    def save(self) -> None:
        mine = {"src": self.samplers["src"].state(), "dst": self.samplers["dst"].state(),
                "augment": self.augmenter.state(), "augment_device": self.device.type}
        all_ranks = self.dist.gather_json(mine, self.device)
        self.last_saved_iter = self.iteration
        if not self.dist.main:
            return
        model, opt, state = self.trainer.tensors()
        state.update({
            "history": self.history.state(), "samplers": all_ranks, "torch_rng": encode_bytes(torch.get_rng_state()),
            "pretraining": self.pretraining, "preset": self.cfg.preset, "seed": self.cfg.seed,
            "lr_schedule": {"lr": self.cfg.train_options.lr, "warmup_iters": self.cfg.train_options.warmup_iters,
                            "lr_scale": self.trainer.lr_scale, "lr_now": self.trainer.lr_at(self.iteration)},
            "best_smoothed": self.best_smoothed, "world_size": self.dist.world,
        })
        path = self.store.save(self.iteration, model, opt, state)
        if time.time() - self.store.latest_backup_time() >= self.cfg.backup_every_min * 60:
            self.store.backup(path)
        smoothed = self.history.smoothed
        if smoothed is not None and (self.best_smoothed is None or smoothed < self.best_smoothed):
            self.best_smoothed = smoothed
            self.store.set_best(path)
        self.history.write(self.cfg.model_dir, self.iteration)
        if self.quality is not None:
            quality = self.quality
            self._guard_quality(lambda: quality.saved(self.trainer.model, self.iteration))
        last = self.history.points[-1] if self.history.points else [self.iteration, None, None, None]
        atomic_write_json(self.cfg.model_dir / "model.json", {
            "name": self.cfg.model_dir.name, "iteration": self.iteration, "preset": self.cfg.preset,
            "model_options": dataclasses.asdict(self.model_options),
            "train_options": dataclasses.asdict(self.trainer.options), "pretraining": self.pretraining,
            "latest_checkpoint": str(path.relative_to(self.cfg.model_dir)), "loss_src": last[1], "loss_dst": last[2],
            "updated": time.time()})
        self.last_save_time = time.monotonic()

    def write_preview(self) -> None:
        self.last_preview_time, self.preview_due = time.monotonic(), False
        if not self.dist.main:
            return
        image = preview.render(self.trainer, *self.preview_faces)
        big, small = preview.write(self.cfg.model_dir, self.iteration, image)
        self.history.write(self.cfg.model_dir, self.iteration)
        self.report.preview(self.ws.rel(big), small=self.ws.rel(small), iteration=self.iteration)

    # -- guards ---------------------------------------------------------------------------------------
    def rollback(self, bad_iteration: int) -> None:
        self.rollbacks += 1
        if self.rollbacks > self.cfg.max_rollbacks:
            raise UserError(f"The loss kept becoming non-finite ({self.rollbacks} roll-backs).",
                            "Lower the learning rate (--lr), try --precision fp32, or check the face sets.")
        loaded = self.store.load(warn=self.warn)
        lr_scale = min(self.trainer.lr_scale, float(loaded.state.get("lr_scale", 1.0))) * 0.5
        self._restore(loaded)
        self.trainer.lr_scale = lr_scale
        self.history.truncate(self.iteration)
        self.warn(f"The loss became non-finite at iteration {bad_iteration}: rolled back to iteration "
                  f"{self.iteration} and lowered the learning rate to {self.trainer.lr_at(10 ** 9):.3g}.")

    def out_of_memory(self) -> None:
        self.trainer.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        old = self.trainer.options.batch_size
        if self.dist.enabled:
            raise UserError(f"Out of GPU memory at batch size {old} per GPU.", "Use a smaller --batch.")
        if old <= 1:
            raise UserError("Out of GPU memory even at batch size 1.",
                            "Use a smaller preset or resolution, or free the GPU (nvidia-smi).")
        self.trainer.options.batch_size = old // 2
        self.warn(f"Out of GPU memory at batch size {old}: going on with batch size {old // 2}.")

    # -- the loop -----------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.setup()
        return self.train_to_target()

    def train_to_target(self) -> dict[str, Any]:
        """Train from where the run stands to ``cfg.target_iters``, then save; callable again after
        raising the target (the benchmark and the learning check do that)."""
        now = time.monotonic()
        self.last_save_time = self.last_preview_time = now
        self.metrics_time, self.metrics_iter, self.rate = now, self.iteration, 0.0
        self.start_iter, self.start_time = self.iteration, now
        self.preview_due = True  # drawn after the first iteration, which does not wait for it
        if self.cfg.target_iters and self.iteration >= self.cfg.target_iters:
            self.log(f"{self.cfg.model_dir.name} is already at iteration {self.iteration}, the target "
                     f"({self.cfg.target_iters}); give a higher --iters (or 0: until stopped) to train on.")
        stop = self.train()
        if self.iteration != self.last_saved_iter:
            self.save()
        self.write_preview()
        if self.quality is not None:
            quality = self.quality
            if stop == "target":  # the figures of the model as it ends belong to its result
                self._guard_quality(lambda: quality.finish(lambda: self.report.cancelled), clock=False)
                if self.until_rule is not None:
                    self.until_rule.ended(self.trainer.model, self.iteration, quality.latest)
            else:
                self._guard_quality(quality.drop, clock=False)
        self.emit_metrics(force=True)
        result = self.result(stop)
        if stop == "cancelled":
            raise JobCancelled()
        return result

    def train(self) -> str:
        acc = torch.zeros(2, device=self.device)
        steps = 0
        while True:
            target = self.cfg.target_iters
            if target and self.iteration >= target:
                return "target"
            bs = self.trainer.options.batch_size
            dst_faces = self.samplers["dst"].take(bs)
            batch = self.augmenter(self.samplers["src"].take(bs, like=self.samplers["dst"].last), dst_faces)
            poison = self.iteration == self.cfg.debug_nan_at and not self.nan_injected
            out_of_memory = False
            try:
                if self.iteration == self.cfg.debug_oom_at and not self.oom_injected:
                    self.oom_injected = True
                    raise torch.OutOfMemoryError("debug_oom_at: simulated out of memory")
                loss_src, loss_dst = self.trainer.step(batch, self.iteration, poison)
            except torch.OutOfMemoryError:
                out_of_memory = True  # handled outside the except block, whose traceback pins GPU memory
            if out_of_memory:
                del batch
                self.out_of_memory()
                continue
            self.nan_injected |= poison
            acc += torch.stack([loss_src, loss_dst]).float()
            steps += 1
            self.iteration += 1
            if self.iteration == self.start_iter + 1:
                self._first_iteration(acc / steps)
            # Also, on one process, as soon as a cancel or a stop is asked (a sync point is where the loop
            # stops; sync_every iterations may take a minute on a busy CPU).
            if self.iteration % self.cfg.sync_every == 0 or (target and self.iteration >= target) \
                    or (not self.dist.enabled and (self.report.cancelled or self.stop_requested())):
                stop = self.sync_point(acc / steps)
                acc.zero_()
                steps = 0
                if stop:
                    return stop

    def _first_iteration(self, losses: torch.Tensor) -> None:
        """Say at once that training runs (metrics with this iteration's own loss, progress) and draw the
        run's first preview, without a sync point: the loss history keeps its points at multiples of
        ``sync_every``. (Reading the loss waits for the step on a GPU, once a run.)"""
        loss_src, loss_dst = losses.tolist()
        self.emit_metrics(force=True, losses=(loss_src, loss_dst))
        if self.preview_due:
            self.write_preview()

    def sync_point(self, mean_losses: torch.Tensor) -> str | None:
        loss_src, loss_dst = self.dist.mean(mean_losses).tolist()  # the GPU sync point
        if not (math.isfinite(loss_src) and math.isfinite(loss_dst)):
            self.rollback(self.iteration)
            return None
        self.history.add(self.iteration, loss_src, loss_dst, time.time())
        cfg, now = self.cfg, time.monotonic()
        stop = save = show = 0.0
        new_target = -1.0
        if self.dist.main:
            for command in self.report.commands():
                kind = command.get("command")
                if kind == "preview":
                    show = 1
                elif kind == "save":
                    save = 1
                elif kind == "set_target":
                    # The engine forwards {"command", "args": {...}}; a bare {"iters": N} is accepted too.
                    iters = command.get("args", {}).get("iters", command.get("iters"))
                    try:
                        new_target = float(settings.get("train", "iters").check(iters, "set_target"))
                    except UserError as exc:
                        self.warn(exc.message)
            if self.report.cancelled:
                stop = STOP_CANCELLED
            save = max(save, float(now - self.last_save_time >= cfg.save_every_min * 60
                                   or (cfg.save_every_iters > 0
                                       and self.iteration - max(self.last_saved_iter, 0) >= cfg.save_every_iters)))
            show = max(show, float(self.preview_due or now - self.last_preview_time >= cfg.preview_every_min * 60))
            if self.quality is not None:
                quality = self.quality
                self._guard_quality(lambda: quality.step(self.trainer.model, self.iteration))
            if self.until_rule is not None and not stop:
                latest = self.quality.latest if self.quality is not None else {}
                self.rule_stop = self.until_rule.check(self.trainer.model, self.iteration, latest) or ""
                stop = STOP_RULE if self.rule_stop else stop
        if self.stop_requested():
            stop = STOP_TERMINATED
        stop, save, show, new_target = self.dist.agree([stop, save, show, new_target], self.device)
        if new_target >= 0:
            self.cfg.target_iters = int(new_target)
            self.log(f"Target iteration set to {int(new_target)}.")
        # Before the save and the preview, which take seconds on a busy CPU: the figures go out first.
        self.emit_metrics(force=self._quality_news())
        if save:
            self.save()
        if show:
            self.write_preview()
        if stop:
            return {STOP_RULE: self.rule_stop or "rule", STOP_TERMINATED: "terminated"}.get(int(stop), "cancelled")
        return None

    def emit_metrics(self, force: bool = False, losses: tuple[float, float] | None = None) -> None:
        """The metrics event (at most every ``METRICS_INTERVAL_S`` unless ``force``): the newest loss of the
        history, or ``losses`` (the first iteration's, before the history has a point)."""
        now = time.monotonic()
        if not self.dist.main or (not force and now - self.metrics_time < METRICS_INTERVAL_S):
            return
        if now > self.metrics_time and self.iteration > self.metrics_iter:
            rate = (self.iteration - self.metrics_iter) / (now - self.metrics_time)
            self.rate = rate if self.rate == 0 else 0.7 * self.rate + 0.3 * rate
        self.metrics_time, self.metrics_iter = now, self.iteration
        target = self.cfg.target_iters
        eta = (target - self.iteration) / self.rate if target and self.rate > 0 else None
        last = self.history.points[-1] if self.history.points else [0, None, None]
        if losses is not None and all(math.isfinite(x) for x in losses):
            last = [self.iteration, *losses]
        bs = self.trainer.options.batch_size
        if self.quality is not None:
            self.quality_sent = self.quality.measured_iteration
        self.report.metrics(iter=self.iteration, loss_src=last[1], loss_dst=last[2],
                            iters_per_s=round(self.rate, 3),
                            samples_per_s=round(self.rate * bs * 2 * self.dist.world, 2),
                            eta_s=None if eta is None else round(max(eta, 0.0), 1), target=target or None,
                            lr=self.trainer.lr_at(self.iteration), batch_size=bs,
                            **_finite(self.quality.latest if self.quality is not None else {}),
                            **(self.until_rule.latest if self.until_rule is not None else {}))
        if target:
            self.report.progress("train", min(self.iteration, target), target, unit="iterations")

    def stop_reason(self, stop: str) -> str:
        """Why the run stopped, one sentence: the stop rule's own when it stopped the run."""
        if self.rule_stop and self.until_rule is not None:
            return self.until_rule.reason
        return {"target": f"Reached the target iteration {self.iteration}.",
                "terminated": f"Stopped by a signal (SIGTERM) at iteration {self.iteration}, saved.",
                "cancelled": f"Cancelled at iteration {self.iteration}, saved."}.get(stop, stop)

    def result(self, stop: str) -> dict[str, Any]:
        last = self.history.points[-1] if self.history.points else [self.iteration, None, None]
        model_dir = self.cfg.model_dir
        return {
            "model": model_dir.name, "iteration": self.iteration, "stopped": stop, "stop_reason": self.stop_reason(stop),
            "loss_src": last[1], "loss_dst": last[2], "batch_size": self.trainer.options.batch_size,
            "lr_scale": self.trainer.lr_scale, "warnings": self.warnings,
            "iterations_this_run": self.iteration - self.start_iter,
            "quality_wait_s": round(self.quality_wait_s, 3),
            "seconds": round(time.monotonic() - self.start_time, 2),
            "model_dir": self.ws.rel(model_dir), "loss_history_file": self.ws.rel(model_dir / "loss_history.json"),
            "preview": self.ws.rel(model_dir / "previews" / "latest.png"),
            "loss_history": self.history.downsampled(),
        }


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """Values safe for the protocol's JSON (it refuses NaN and infinities): those become None."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}
