"""``train --until good`` and ``--for 2h``: the stop rule the train job hands to the training loop.

    swapwizard train WS --until good [--iters 11500] [--for 2h]

``UntilGood`` is the loop's ``StopRule`` (``engine.train.loop``; training never imports quality): at each
sync point ``check`` sees the watcher's latest held-out measurement (``TrainingQuality.latest``) and, when
it is new, reads the quality history and decides:

- **good**: every verdict the user sees holds on the held-out faces (identity, the mouth and the eyes
  follow: ``engine.quality.verdict.states``, through ``engine.quality.estimate.holds``; the mouth as the
  user will get it: where ``[merge] mouth`` (auto, the default) moves the swap's lips with the
  destination's, the mouth as merged counts when the model's own does not follow) and the held-out
  SSIM has stopped rising (it gained less than ``estimate.GAIN`` over the last ``estimate.SHARE`` of the
  iterations). Then the same verdicts are measured over the whole destination clip (``CLIP_FACES`` faces,
  training frames included); the run stops only if they hold there too, else it says what does not and
  trains on (the clip is measured again after another ``SHARE`` of iterations; a resumed run keeps the
  model's last clip check from ``until.json``: ``clip_at``, ``clip``).
- **plateau**: the SSIM has stopped rising and no missing verdict is heading for its threshold (its
  estimate is "not in sight"), or the clip's missing verdict did not improve between two clip checks:
  it stops and says which verdict is missing and what to try (the verdict's own sentence).
- **time**: the run has lasted ``limit_s`` (``--for``), checked at every sync point.

The iteration ceiling stays the loop's target (``--iters``; ``run`` passes the preset's). At every new
measurement the rule refreshes its estimate of when the model will be good (``engine.quality.estimate``)
into ``latest`` (the metrics events' ``until_*`` values) and ``model/<name>/until.json`` (what ``status``
and the browser view read). The loop saves before it stops; the reason is logged and in the job's result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_json
from engine.errors import UserError
from engine.quality import estimate, history
from engine.quality.estimate import UNTIL_FILE
from engine.quality.mouth_auto import merged_mouth
from engine.workspace import Workspace

#: Destination faces of the whole clip measured before a "good" stop (evenly spread).
CLIP_FACES = 100
#: A plateau needs at least this many measurements (a young model's noise is not a plateau).
MIN_MEASUREMENTS = 2 * estimate.MIN_POINTS
#: What to try when a verdict stalls (a plateau): training longer no longer helps.
_LIAE, _PRETRAINED = "a liae model (--arch liae-ud)", "a pretrained start (--pretrain)"
TRY = {"identity": ("check that the source faces are all of one person (swapwizard check)",
                    "more varied source footage"),
       "mouth": (_LIAE, _PRETRAINED, "move the swap's lips with the destination's at merge ([merge] mouth = follow)"),
       "eyes": (_LIAE, _PRETRAINED)}
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")


def duration_seconds(text: str, source: str = "--for") -> float | None:
    """``"2h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` -> seconds; ``""`` -> None (no limit)."""
    if not text or not text.strip():
        return None
    found = _DURATION.match(text.lower())
    if not found or not any(found.groups()):
        raise UserError(f"{source} {text!r} is not a duration.", "Write hours, minutes or seconds: 2h, 90m, 1h30m, 45s.")
    hours, mins, secs = (float(g) if g else 0.0 for g in found.groups())
    seconds = hours * 3600 + mins * 60 + secs
    if seconds <= 0:
        raise UserError(f"{source} {text!r} is no time at all.", "Give a positive duration, such as 2h or 30m.")
    return seconds


def _clip_figures(ws: Workspace, network: Any, resolution: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The verdicts' figures over the whole destination clip (training frames included)."""
    from engine.faces.detect import FaceFinder
    from engine.quality.expression import expression_fidelity
    from engine.quality.likeness import likeness_meter, swap_likeness
    from engine.quality.reconstruct import clip_faces

    device = next(network.parameters()).device
    clip = clip_faces(ws, "dst", resolution, limit=CLIP_FACES)
    finder = FaceFinder(min_presence=0.0)
    try:
        figures = expression_fidelity(network, clip, device, finder, limit=CLIP_FACES, mouth=merged_mouth(ws))
    finally:
        finder.close()
    meter = likeness_meter(ws, log)
    if meter is not None:
        figures.update(swap_likeness(network, clip, device, meter, limit=CLIP_FACES))
    return figures


def _figures_text(figures: dict[str, Any]) -> str:
    shown = []
    for key, fmt in (("id_closer_src", "identity {:.0%}"), ("expr_mouth_corr", "mouth corr {:.2f}"),
                     ("expr_mouth_spread", "spread {:.2f}"), ("expr_mouth_merged_corr", "mouth as merged corr {:.2f}"),
                     ("expr_mouth_merged_spread", "spread {:.2f}"), ("expr_eyes_corr", "eyes corr {:.2f}"),
                     ("expr_eyes_spread", "spread {:.2f}"), ("ssim_dst", "SSIM {:.3f}")):
        value = figures.get(key, figures.get(f"quality_{key}"))
        if isinstance(value, (int, float)):
            shown.append(fmt.format(value))
    return ", ".join(shown)


def _try(verdicts: list[str]) -> str:
    """What to try for these stalled verdicts, each suggestion once."""
    return "What to try: " + "; ".join(dict.fromkeys(t for v in verdicts for t in TRY[v])) + "."


class UntilGood:
    """The stop rule (see the module's docstring). Made by the loop on rank 0, like the quality watcher:
    ``functools.partial(UntilGood, good=True, limit_s=7200)(ws, model_dir, resolution, device, log)``."""

    def __init__(self, ws: Workspace, model_dir: Path, resolution: int, device: Any = None,
                 log: Callable[[str], None] | None = None, *, good: bool = True, limit_s: float | None = None) -> None:
        self.ws, self.model_dir, self.resolution = ws, Path(model_dir), resolution
        self.good, self.limit_s = good, limit_s
        self._log = log or (lambda message: None)
        self.started = time.monotonic()
        #: The metrics events' until_* values (the estimate), refreshed at each new measurement.
        self.latest: dict[str, Any] = {}
        #: Why the run stopped: "good", "plateau" or "time" (set when ``check`` stops it), and the sentence.
        self.stopped = ""
        self.reason = ""
        self._seen: tuple | None = None
        self._first: tuple[int, float] | None = None
        self._clip_checks: list[tuple[int, dict[str, Any], list[str]]] = []
        #: The mouth as the merge pastes it counts (``[merge] mouth`` auto, follow or destination).
        self.merged = ws is None or merged_mouth(ws) != "swap"  # None: a replay, the defaults (auto)
        self._resume_clip_check()

    def _resume_clip_check(self) -> None:
        """A resumed run (a dropped SSH session, a reboot, a higher ceiling) keeps the last whole-clip check
        of the model (``until.json``): the next one comes after another ``SHARE`` of iterations and a
        plateau compares with it, as if the run had not stopped."""
        state = estimate.read_state(self.model_dir)
        at, figures = state.get("clip_at"), state.get("clip")
        if isinstance(at, int) and not isinstance(at, bool) and at > 0 and isinstance(figures, dict):
            self._clip_checks.append((at, figures, self._missing(figures)))

    def _missing(self, figures: dict[str, Any]) -> list[str]:
        """The verdicts that do not hold for these whole-clip figures."""
        return [v for v in estimate.HELD if estimate.holds(figures, v, self.merged) is False]

    # -- the loop's interface -------------------------------------------------------------------------
    def check(self, network: Any, iteration: int, quality: dict[str, Any]) -> str | None:
        """At a sync point: "good", "plateau" or "time" to stop (``reason`` says why), else None."""
        now = time.monotonic()
        if self._first is None:
            self._first = (iteration, now)
        if self.limit_s is not None and now - self.started >= self.limit_s:
            return self._stop("time", f"Stopped after {estimate.minutes(now - self.started)} (--for), at iteration "
                                      f"{iteration}: {self.latest.get('until_text', 'quality not measured yet.')}",
                              iteration)
        if not self._new(quality):
            return None
        return self.measured(network, iteration, history.read(self.model_dir), self.rate(iteration, now))

    def ended(self, network: Any, iteration: int, quality: dict[str, Any]) -> None:
        """The run reached its ceiling and its last measurement is in (the loop waited for it): the estimate
        from it, written for the stop's sentence; no stop decided here."""
        if not self._new(quality):
            return
        found = estimate.estimates(history.read(self.model_dir), iteration, self.merged)
        self.latest = estimate.metrics_values(found, iteration, self.rate(iteration, time.monotonic()))
        self._clip_said()
        self._write(iteration)

    def _new(self, quality: dict[str, Any]) -> bool:
        """Is ``quality`` (the watcher's latest values) a measurement the rule has not read yet?"""
        seen = tuple(sorted((k, v) for k, v in quality.items() if isinstance(v, (int, float))))
        if not self.good or not seen or seen == self._seen:
            return False
        self._seen = seen
        return True

    def rate(self, iteration: int, now: float) -> float | None:
        if self._first is None or now <= self._first[1] or iteration <= self._first[0]:
            return None
        return (iteration - self._first[0]) / (now - self._first[1])

    # -- the decision ----------------------------------------------------------------------------------
    def measured(self, network: Any, iteration: int, points: list[dict[str, Any]], rate: float | None) -> str | None:
        """A new held-out measurement is in ``points`` (the quality history): estimate, then stop or not."""
        found = estimate.estimates(points, iteration, self.merged)
        self.latest = estimate.metrics_values(found, iteration, rate)
        latest = estimate.latest_figures(points)
        measurements = len(estimate.series(points, "ssim_dst"))
        decision = None
        if all(e.met for e in found.values()):
            decision = self._clip_decision(network, iteration, latest)
            if decision is None:
                self._clip_said()
        elif found["sharpness"].met and measurements >= MIN_MEASUREMENTS:
            # Heading away or too slow to see; not "too early" or "cannot tell", which say nothing of a trend.
            stalled = [e for e in found.values() if not e.met and e.iteration is None
                       and e.why in (estimate.AWAY, estimate.SLOW)]
            if stalled and len(stalled) == sum(not e.met for e in found.values()):
                said = _try([e.verdict for e in stalled])
                decision = self._stop("plateau", f"Stopped at a plateau at iteration {iteration}: the held-out SSIM "
                                                 f"rose less than {estimate.GAIN} over the last "
                                                 f"{estimate.SHARE:.0%} of the iterations and "
                                                 f"{', '.join(estimate.NAMES[e.verdict] for e in stalled)} "
                                                 f"{'is' if len(stalled) == 1 and stalled[0].verdict != 'eyes' else 'are'} not getting there "
                                                 f"({_figures_text(latest)}). {said}".rstrip(), iteration)
        self._write(iteration)
        return decision

    def _clip_decision(self, network: Any, iteration: int, held: dict[str, Any]) -> str | None:
        last = self._clip_checks[-1][0] if self._clip_checks else None
        if last is not None and iteration < last * (1 + estimate.SHARE):
            return None
        figures = _clip_figures(self.ws, network, self.resolution, self._log)
        missing = self._missing(figures)
        self._clip_checks.append((iteration, figures, missing))
        if not missing:
            return self._stop("good", f"Good at iteration {iteration}: every verdict holds on the held-out faces "
                                      f"({_figures_text(held)}) and over the whole clip ({_figures_text(figures)}), "
                                      f"and the held-out SSIM has stopped rising.", iteration)
        words = ", ".join(estimate.NAMES[v] for v in missing)
        if len(self._clip_checks) >= 2 and not self._improved(missing):
            said = _try(missing)
            return self._stop("plateau", f"Stopped at a plateau at iteration {iteration}: the held-out faces are good "
                                         f"but over the whole clip {words} did not improve since iteration "
                                         f"{self._clip_checks[-2][0]} ({_figures_text(figures)}). {said}".rstrip(),
                              iteration)
        self._log(f"Good on the held-out faces at iteration {iteration}, but over the whole clip not yet: {words} "
                  f"({_figures_text(figures)}). Training on; the clip is measured again at iteration "
                  f"{int(iteration * (1 + estimate.SHARE))} or later.")
        self._clip_said()
        return None

    def _clip_said(self) -> None:
        """While the held-out faces are good and the last clip check was not, the estimate says that
        (not "good now"): the wizard, status, attach and a stop at the ceiling read it."""
        if not self.latest.get("until_met") or not self._clip_checks or not self._clip_checks[-1][2]:
            return
        at, figures, missing = self._clip_checks[-1]
        self.latest = {**self.latest, "until_met": False, "until_waiting": "clip: " + ", ".join(missing),
                       "until_text": f"good on the held-out faces; over the whole clip not yet (at iteration {at}): "
                                     f"{', '.join(estimate.NAMES[v] for v in missing)} ({_figures_text(figures)})."}

    def _improved(self, missing: list[str]) -> bool:
        """Did any figure of a missing verdict move toward its threshold between the last two clip checks?"""
        for verdict in missing:
            before, now = self._clip_checks[-2][1], self._clip_checks[-1][1]
            if verdict == "mouth" and self.merged and estimate.merged_view(now) is not None:
                before, now = estimate.merged_view(before) or {}, estimate.merged_view(now) or {}
            for key, _, rising in estimate.targets(now, verdict):
                a, b = before.get(key), now.get(key)
                if isinstance(a, (int, float)) and isinstance(b, (int, float)) and (b > a if rising else b < a):
                    return True
        return False

    def _stop(self, stopped: str, reason: str, iteration: int) -> str:
        self.stopped, self.reason = stopped, reason
        # The run's last metrics event carries the reason where the estimate was: the wizard, attach and
        # the browser view show it in the same place.
        self.latest = {**self.latest, "until_text": reason, "until_stopped": stopped}
        self._log(reason)
        self._write(iteration)
        return stopped

    def _write(self, iteration: int) -> None:
        state = {"iteration": iteration, "time": round(time.time(), 2), **self.latest,
                 "stopped": self.stopped or None, "reason": self.reason or None}
        if self._clip_checks:  # the last whole-clip check (a stop's own included): a resumed run reads it
            state["clip_at"], state["clip"] = self._clip_checks[-1][0], self._clip_checks[-1][1]
        atomic_write_json(self.model_dir / UNTIL_FILE, state)
