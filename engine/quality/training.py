"""Quality during training: held-out reconstruction every few hundred iterations, and the training cost.

The train job hands ``TrainingQuality`` to the training loop as its watcher (``engine.train.loop.Watcher``;
training itself never imports quality): ``step`` at every sync point, ``saved`` after every checkpoint.
Neither measures in the loop: each copies the network's weights and hands them to a low-priority
thread beside training (``engine.quality.beside``) and returns; a request the thread has not started
is replaced by a newer one. Iteration 0 (an untrained model) is never measured. The thread measures
dst->dst and src->src SSIM/PSNR on the held-out faces (``engine.quality.reconstruct``; at most
``FACES`` per side, loaded at its first measurement) every ``[quality] every_iters`` iterations (500
by default; 0 turns it off; more often while the run is young: ``next_measurement``) and at each save, appends the values to ``quality_history.json`` (source
"training") and puts them in ``latest`` with ``measured_iteration``: the loop's next metrics event
carries them (``quality_ssim_dst`` ...), and the loop may read them as the newest measurement.
At the same points it measures expression fidelity (``engine.quality.expression``: the swaps and
reconstructions of ``TRAINING_FACES`` held-out destination faces through the mediapipe mesh, mouth,
eyes and pose error as the ratio swap / reconstruction, and the mouth-opening correlation; the
events carry ``quality_expr_mouth_ratio`` ...; about 2 s on a CPU core).
At each save (and at every measurement until it holds) it also measures the identity of the swaps of a
few held-out destination faces (``engine.quality.likeness``: ``id_src``, ``id_dst``, ``id_closer_src``;
about 1.3 s for 16 faces on a CPU core); a workspace whose people cannot be compared skips that, with
one log line. Where ``[merge] mouth`` moves the swap's lips with the destination's (auto, follow) or
pastes the destination's mouth, the mouth is also measured as merged (``expr_mouth_merged_*``): what
``train --until good`` counts (``engine.quality.until``).
A run that reaches its target waits for its last measurement (``finish``); a cancel or a stop drops
it (``drop``). What the thread has to say, and an error that stops it, are said by the loop's thread.

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
from engine.quality.beside import Beside
from engine.quality.cost import estimate_seconds
from engine.quality.mouth_auto import merged_mouth
from engine.quality.verdict import ID_GOOD
from engine.workspace import Workspace

FACES = 32
COST_FILE = "training_cost.json"
#: While the run is young, measure once the iteration has grown by this share (``TrainingQuality.due``).
EARLY_GROWTH = 0.08
#: A gap between two sync points longer than this is a pause (machine asleep, debugger), not training.
PAUSE_S = 300.0
#: Expression figures carried by the metrics events (all of them go to quality_history.json).
LIVE_EXPRESSION = ("expr_mouth_ratio", "expr_eyes_ratio", "expr_pose_ratio", "expr_mouth_corr", "expr_mouth_corr_recon",
                   "expr_faces", *(f"expr_{f}_{k}" for f in ("mouth", "eyes") for k in
                                   ("corr", "corr_lo", "corr_hi", "spread", "spread_lo", "spread_hi", "dst_spread")),
                   "expr_openings", "expr_mouth_merged_corr", "expr_mouth_merged_spread")


def next_measurement(last: int, every: int) -> int:
    """The iteration of the next held-out measurement after one at ``last``: ``every`` iterations later,
    or sooner while the run is young: once the iteration has grown by ``EARLY_GROWTH``, but never within
    ``every / 5``. Learning curves move along ln(iteration), so the same growth holds about the same
    change; the estimate of when the model is good (``engine.quality.estimate``) needs a few measurements
    early, and the SSIM's trend 8 in the newer half of the run: 500 iterations apart, a 20-minute CPU run
    of 3 500 iterations had 7 in all, too few for either."""
    return last + min(every, max(every // 5, int(last * EARLY_GROWTH), 1))


def device_name(device: Any) -> str:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


class TrainingQuality:
    def __init__(self, ws: Workspace, model_dir: Path, resolution: int, device: Any, log=None) -> None:
        self.model_dir = Path(model_dir)
        self.ws = ws
        self.device = device
        self.resolution = resolution
        self.every = int(settings.read(ws, "quality")["every_iters"])
        #: The newest measurement's figures (``quality_ssim_dst`` ...): the metrics events carry them.
        self.latest: dict[str, Any] = {}
        #: The iteration ``latest`` was measured at (-1: none yet), and the last one asked for.
        self.measured_iteration = -1
        self.last_iteration = -1
        self._identity_at = -1
        #: Did the last identity measurement hold (``engine.quality.verdict.ID_GOOD``)?
        self.identity_holds = False
        self._log = log
        #: Written by the measuring thread, said (log) or raised (an error) by the loop's thread.
        self._said: list[str] = []
        self._error: Exception | None = None
        #: engine.quality.likeness meter, made at the first save (None before; False: unavailable).
        self._likeness: Any = None
        #: The mediapipe mesh for expression fidelity, made at the first measurement (False: unavailable).
        self._finder: Any = None
        #: The held-out faces, loaded by the measuring thread at its first measurement (None before).
        self.faces: dict[str, Any] | None = None
        #: A copy of the network the thread measures (weights copied in from each request).
        self._shadow: Any = None
        self._beside = Beside(self._measure_request)
        #: Seconds the measuring thread spent (beside training, not in the loop).
        self.measuring_s = 0.0
        self._extracted = ws.alignments_path("dst").is_file() and ws.alignments_path("src").is_file()
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
        return self.every > 0 and self.faces != {} and self._error is None and self._extracted

    def _clock(self) -> None:
        now = time.monotonic()
        if now - self._tick <= PAUSE_S:
            self.seconds += now - self._tick
        self._tick = now

    def _news(self) -> None:
        """What the measuring thread had to say, said here (the loop's thread owns the reporter)."""
        while self._said and self._log is not None:
            self._log(self._said.pop(0))
        if self._error is not None:
            error, self.faces = self._error, {}
            raise error

    def step(self, network: Any, iteration: int) -> None:
        """At a sync point: count the time, and ask for a measurement when ``every`` iterations have passed."""
        self._clock()
        self._news()
        if self.enabled and self.due(iteration):
            # Identity too while it does not hold yet (the estimate of when the model is good needs its
            # trend; a first save can be 10 minutes away); once it holds, at saves only.
            self.request(network, iteration, identity=not self.identity_holds)

    def due(self, iteration: int) -> bool:
        """Is a measurement due at ``iteration`` (``next_measurement``)?"""
        return iteration >= next_measurement(max(self.last_iteration, 0), self.every)

    def saved(self, network: Any, iteration: int) -> None:
        """After a checkpoint: ask for that iteration's measurement with identity, and record the training
        cost. Iteration 0 (an untrained model: nothing to learn from it) is not measured."""
        self._clock()
        self._news()
        if self.enabled and iteration > 0 and self._identity_at != iteration:
            self.request(network, iteration, identity=True)
        atomic_write_json(self.model_dir / COST_FILE, {"train_seconds": round(self.seconds, 2),
                                                       "train_seconds_estimated": self.estimated,
                                                       "device": self.device_text, "iteration": iteration,
                                                       "never_trained_on": self.never_trained_on})

    def request(self, network: Any, iteration: int, identity: bool = False) -> None:
        """Copy the weights and hand them to the measuring thread; returns at once (a request it has
        not started yet is replaced)."""
        import copy

        import torch

        with torch.no_grad():
            if self._shadow is None:
                self._shadow = copy.deepcopy(network)
                weights = None
            else:
                weights = {k: v.detach().clone() for k, v in network.state_dict().items()}
        self.last_iteration = iteration
        if identity:
            self._identity_at = iteration
        self._beside.submit((weights, iteration, identity))

    def finish(self, cancelled=lambda: False) -> bool:
        """Wait for the measurement asked for last (a run that reached its target); False if cancelled."""
        done = self._beside.wait(cancelled)
        self._news()
        return done

    def drop(self) -> None:
        """Forget a measurement not started; give a running one a second (a cancel or a stop)."""
        self._beside.drop()

    # -- on the measuring thread ---------------------------------------------------------------------
    def _measure_request(self, request: tuple[Any, int, bool]) -> None:
        weights, iteration, identity = request
        started = time.monotonic()
        try:
            if weights is not None:
                self._shadow.load_state_dict(weights)
            if self.faces is None:
                self.faces = self._held_out()
            if self.faces:
                self.measure(self._shadow, iteration, identity=identity and self._identity_ready())
        except Exception as exc:  # noqa: BLE001 - raised in the loop's thread, which reports it once
            self._error = exc
        self.measuring_s += time.monotonic() - started

    def _held_out(self) -> dict[str, Any]:
        from engine.quality.reconstruct import held_out_faces

        try:
            faces = {side: held_out_faces(self.ws, side, self.resolution, FACES) for side in ("src", "dst")}
        except UserError as exc:  # damaged records: training reports that itself; no measuring here
            self._said.append(f"Quality is not measured during this run: {exc.message}")
            return {}
        return faces if any(len(f.crops) for f in faces.values()) else {}

    def _identity_ready(self) -> bool:
        if self._likeness is None:
            from engine.quality.likeness import likeness_meter

            self._likeness = likeness_meter(self.ws, self._said.append) or False
        held = (self.faces or {}).get("dst")
        return self._likeness is not False and held is not None and len(held.crops) > 0

    def measure(self, network: Any, iteration: int, identity: bool = False) -> dict[str, Any]:
        from engine.quality.reconstruct import reconstruction_metrics

        values = reconstruction_metrics(network, self.faces, self.device)
        if self._beside.dropped:
            return values
        values.update(self._expression(network))
        if identity and not self._beside.dropped:
            from engine.quality.likeness import swap_likeness

            values.update(swap_likeness(network, self.faces["dst"], self.device, self._likeness))
            share = values.get("id_closer_src")
            self.identity_holds = isinstance(share, (int, float)) and share >= ID_GOOD
        history.append(self.model_dir, iteration, "training", values)
        # Identity is measured at saves (and while it does not hold): its latest values stay until the next one.
        kept = {k: v for k, v in self.latest.items() if k.startswith("quality_id_")} if not identity else {}
        self.latest = {**kept, **{f"quality_{k}": v for k, v in values.items()
                                  if (k.startswith(("ssim", "psnr", "id_")) and k != "id_faces") or k in LIVE_EXPRESSION}}
        self.measured_iteration = iteration
        return values

    def _expression(self, network: Any) -> dict[str, Any]:
        """Expression fidelity of the swaps of a few held-out destination faces against their
        reconstructions (``engine.quality.expression``); {} when the mesh cannot be loaded."""
        from engine.quality.expression import expression_fidelity

        held = (self.faces or {}).get("dst")
        if held is None or not len(held.crops) or self._finder is False:
            return {}
        if self._finder is None:
            try:
                from engine.faces.detect import FaceFinder

                self._finder = FaceFinder(min_presence=0.0)
            except Exception as exc:  # noqa: BLE001 - a side measurement: said once, then skipped
                self._finder = False
                self._said.append(f"Expression fidelity is not measured: {type(exc).__name__}: {exc}")
                return {}
        return expression_fidelity(network, held, self.device, self._finder, mouth=merged_mouth(self.ws))


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
