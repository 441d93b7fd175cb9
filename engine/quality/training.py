"""Quality during training: held-out reconstruction every few hundred iterations, and the training cost.

The train job hands ``TrainingQuality`` to the training loop as its watcher (``engine.train.loop.Watcher``;
training itself never imports quality): ``step`` at every sync point,
``saved`` after every checkpoint. It measures dst->dst and src->src SSIM/PSNR on the held-out faces
(``engine.quality.reconstruct``; at most ``FACES`` per side, loaded once) every ``[quality]
every_iters`` iterations (500 by default; 0 turns it off) and at each save, appends the values to
``quality_history.json`` (source "training") and keeps them in ``latest`` so the loop's metrics
events carry them (``quality_ssim_dst`` ...). Measuring costs one forward pass over those faces.
At the same points it measures expression fidelity (``engine.quality.expression``: the swaps and
reconstructions of ``TRAINING_FACES`` held-out destination faces through the mediapipe mesh, mouth,
eyes and pose error as the ratio swap / reconstruction, and the mouth-opening correlation; the
events carry ``quality_expr_mouth_ratio`` ...; about 2 s on a CPU core).
At each save it also measures the identity of the swaps of a few held-out destination faces
(``engine.quality.likeness``: ``id_src``, ``id_dst``, ``id_closer_src``; about 1.3 s for 16 faces on
a CPU core); a workspace whose people cannot be compared skips that, with one log line.

It also clocks the time spent training (sync point to sync point, across runs) and the device, and
writes them to ``training_cost.json`` at each save: what ``compare`` reports as each model's cost.
That file also keeps ``never_trained_on``: per side, the held-out frames of every run so far (their
intersection), so quality can tell whether a model really never saw the frames it is measured on.

The engine imports this module when it starts (the train job imports it at its top), so what measuring
needs (the held-out faces with numpy, torch, the identity meter) is imported when a run starts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine import settings
from engine.atomic import atomic_write_json, read_json
from engine.errors import UserError
from engine.quality import history
from engine.quality.cost import estimate_seconds
from engine.workspace import Workspace

FACES = 32
COST_FILE = "training_cost.json"
#: A gap between two sync points longer than this is a pause (machine asleep, debugger), not training.
PAUSE_S = 300.0
#: Expression figures carried by the metrics events (all of them go to quality_history.json).
LIVE_EXPRESSION = ("expr_mouth_ratio", "expr_eyes_ratio", "expr_pose_ratio", "expr_mouth_corr", "expr_mouth_corr_recon")


def device_name(device: Any) -> str:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


class TrainingQuality:
    def __init__(self, ws: Workspace, model_dir: Path, resolution: int, device: Any, log=None) -> None:
        from engine.quality.reconstruct import held_out_faces

        self.model_dir = Path(model_dir)
        self.ws = ws
        self.device = device
        self.every = int(settings.read(ws, "quality")["every_iters"])
        self.latest: dict[str, Any] = {}
        self.last_iteration = -1
        self._log = log
        #: engine.quality.likeness meter, made at the first save (None before; False: unavailable).
        self._likeness: Any = None
        #: The mediapipe mesh for expression fidelity, made at the first measurement (False: unavailable).
        self._finder: Any = None
        self.faces: dict[str, Any] = {}
        try:
            if ws.alignments_path("dst").is_file() and ws.alignments_path("src").is_file():
                self.faces = {side: held_out_faces(ws, side, resolution, FACES) for side in ("src", "dst")}
        except UserError as exc:  # damaged records: training reports that itself; no measuring here
            if log is not None:
                log(f"Quality is not measured during this run: {exc.message}")
        if not any(len(f.crops) for f in self.faces.values()):
            self.faces = {}
        cost = read_json(self.model_dir / COST_FILE, default=None)
        self.estimated = False
        if not isinstance(cost, dict) and (self.model_dir / "loss_history.json").is_file():
            # Trained before its cost was recorded: start from the loss-history estimate, and never
            # claim to know which frames the earlier runs saw.
            cost = {"train_seconds": estimate_seconds(self.model_dir), "train_seconds_estimated": True,
                    "never_trained_on": None}
        cost = cost if isinstance(cost, dict) else {}
        self.seconds = float(cost.get("train_seconds", 0.0) or 0.0)
        self.estimated = bool(cost.get("train_seconds_estimated"))
        self.never_trained_on = (_never_trained_on(ws, cost.get("never_trained_on"))
                                 if cost.get("never_trained_on", []) is not None else None)
        self.device_text = device_name(device)
        self._tick = time.monotonic()

    @property
    def enabled(self) -> bool:
        return bool(self.faces) and self.every > 0

    def _clock(self) -> None:
        now = time.monotonic()
        if now - self._tick <= PAUSE_S:
            self.seconds += now - self._tick
        self._tick = now

    def step(self, network: Any, iteration: int) -> None:
        """At a sync point: count the time, and measure when ``every`` iterations have passed."""
        self._clock()
        if self.enabled and iteration // self.every > max(self.last_iteration, 0) // self.every:
            self.measure(network, iteration)

    def saved(self, network: Any, iteration: int) -> None:
        """After a checkpoint: measure that iteration (once) and record the training cost."""
        self._clock()
        if self.enabled and (iteration != self.last_iteration or self._identity_ready()):
            self.measure(network, iteration, identity=self._identity_ready())
        atomic_write_json(self.model_dir / COST_FILE, {"train_seconds": round(self.seconds, 2),
                                                       "train_seconds_estimated": self.estimated,
                                                       "device": self.device_text, "iteration": iteration,
                                                       "never_trained_on": self.never_trained_on})

    def _identity_ready(self) -> bool:
        if self._likeness is None:
            from engine.quality.likeness import likeness_meter

            self._likeness = likeness_meter(self.ws, self._log) or False
        held = self.faces.get("dst")
        return self._likeness is not False and held is not None and len(held.crops) > 0

    def measure(self, network: Any, iteration: int, identity: bool = False) -> dict[str, Any]:
        from engine.quality.reconstruct import reconstruction_metrics

        values = reconstruction_metrics(network, self.faces, self.device)
        values.update(self._expression(network))
        if identity:
            from engine.quality.likeness import swap_likeness

            values.update(swap_likeness(network, self.faces["dst"], self.device, self._likeness))
        history.append(self.model_dir, iteration, "training", values)
        # Identity is measured only at saves: its latest values stay until the next one.
        kept = {k: v for k, v in self.latest.items() if k.startswith("quality_id_")} if not identity else {}
        self.latest = {**kept, **{f"quality_{k}": v for k, v in values.items()
                                  if (k.startswith(("ssim", "psnr", "id_")) and k != "id_faces") or k in LIVE_EXPRESSION}}
        self.last_iteration = iteration
        self._tick = time.monotonic()  # the measurement itself is not training time
        return values


    def _expression(self, network: Any) -> dict[str, Any]:
        """Expression fidelity of the swaps of a few held-out destination faces against their
        reconstructions (``engine.quality.expression``); {} when the mesh cannot be loaded."""
        from engine.quality.expression import expression_fidelity

        held = self.faces.get("dst")
        if held is None or not len(held.crops) or self._finder is False:
            return {}
        if self._finder is None:
            try:
                from engine.faces.detect import FaceFinder

                self._finder = FaceFinder(min_presence=0.0)
            except Exception as exc:  # noqa: BLE001 - a side measurement: said once, then skipped
                self._finder = False
                if self._log is not None:
                    self._log(f"Expression fidelity is not measured: {type(exc).__name__}: {exc}")
                return {}
        return expression_fidelity(network, held, self.device, self._finder)


def _never_trained_on(ws: Workspace, before: Any) -> dict[str, list[int]] | None:
    """This run's held-out frames per side, intersected with those recorded by earlier runs."""
    from engine.faces.split import held_out_frames

    try:
        now = {side: held_out_frames(ws, side) for side in ("src", "dst")
               if ws.alignments_path(side).is_file()}
    except UserError:
        return before if isinstance(before, dict) else None
    if isinstance(before, dict):
        now = {side: frames & set(before.get(side, [])) for side, frames in now.items()}
    return {side: sorted(frames) for side, frames in now.items()}
