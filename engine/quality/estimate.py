"""When will the model be good? An estimate per verdict from the quality history, with its range.

    estimates(points, iteration)  -> {"identity": Estimate(...), "mouth": ..., "eyes": ..., "sharpness": ...}
    overall(found, iteration)     -> Estimate of the last verdict to be met (None: not in sight)
    words(est, iteration, rate)   -> "good in about 40 min, between 25 and 70 (iteration 9 000, 7 500 to 12 000)"

Whether a verdict holds now is ``engine.quality.verdict.states`` (the decision the user's verdict
sentences come from; a destination that hardly moves its eyes has nothing to follow and does not hold a
stop back). Until it holds, each of its figures still short of the verdict's own threshold (imported
from there: one set of thresholds) is followed to that threshold:

- identity: ``id_closer_src`` up to ``ID_GOOD``;
- mouth, eyes: ``expr_<f>_corr`` up to ``CORR_FOLLOWS``, ``expr_<f>_spread`` into ``SPREAD_FOLLOWS``
  (up or down, from where it is), ``expr_<f>_ratio`` down to ``PARTLY``;
- sharpness: the held-out SSIM (``ssim_dst``) no longer rising: its trend gained less than ``GAIN`` over
  the last ``SHARE`` of the iterations so far, at the last two measurements (``window_gain``: the trend is
  fitted over the newer half of the run, at least ``2 * MIN_POINTS`` measurements).

Learning curves are close to straight lines against the logarithm of the iteration, so each figure is
fitted by least squares on ln(iteration) over the newer half of its points (at least ``MIN_POINTS``) and
the line is followed to the threshold. The range turns the line about its centre by ``Z`` standard errors
of its slope: the steeper line meets the threshold first (the low end), the flatter one last (the high
end; none when it does not head there). The SSIM's window gain shrinks roughly as a power of the
iteration, so its logarithm is fitted the same way, down to ln(GAIN). ``tests/train/test_until_estimate.py``
replays recorded histories and counts how often the estimate made at a quarter of the run holds the
iteration actually reached (docs/until-good.md).

Pure Python: the wizard, the browser view and the CLI import it (and ``read_state``) without numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import read_json
from engine.quality.verdict import CORR_FOLLOWS, ID_GOOD, PARTLY, SPREAD_FOLLOWS, motion_state, states

#: The SSIM has stopped rising when it gained less than GAIN over the last SHARE of the iterations.
SHARE, GAIN = 0.25, 0.005
#: Points a fit needs; Z: standard errors of the slope either side (about an 80 % range for a normal error).
MIN_POINTS, Z = 4, 1.28
#: An estimate further than this many times the current iteration is "not in sight".
HORIZON = 20.0
#: The verdicts a good model holds (``engine.quality.verdict.states``), then the SSIM's levelling off.
HELD = ("identity", "mouth", "eyes")
VERDICTS = (*HELD, "sharpness")
#: Why a trend gives no iteration: it heads away from the threshold, or would take past ``HORIZON``.
AWAY, SLOW = "not getting closer", "too slow to see"
#: Why the SSIM has no estimate while its gain is still growing (too early to tell, like too few measurements).
STILL_GROWING = "its gain still growing over the last measurements"
#: Why a verdict heading away (or too slowly) is not yet "not in sight": too young a run for the SSIM's
#: trend (``window_gain``) to be read, the model still learning fast and its figures swinging with it (two
#: real runs' eyes turned down at 400 and 600 and held at 1 772 and 2 744: docs/until-good.md).
LEARNING = "the model still learning fast"
#: Why a verdict has no estimate at all: its figures are not measured (identity: at the first save), or too
#: few faces were.
UNMEASURED = "not measured yet, or on too few faces"
#: The mouth as the merge pastes it: ``expr_mouth_merged_corr`` ... (``engine.quality.expression``).
MERGED = "expr_mouth_merged_"
#: A model's last estimate or stop (``engine.quality.until`` writes it; ``status`` and the browser view read it).
UNTIL_FILE = "until.json"
#: verdict -> how a sentence names it.
NAMES = {"identity": "the identity", "mouth": "the mouth", "eyes": "the eyes", "sharpness": "the SSIM to level off"}


@dataclass(frozen=True)
class Estimate:
    """When one verdict (or all: ``overall``) is met. ``met``: it holds now. Otherwise ``iteration`` is the
    best guess and ``low``/``high`` its range; ``high`` None: the flatter trend never gets there;
    ``iteration`` None: the trend heads away or is too slow to see (``why`` says which), or too few points."""

    verdict: str
    met: bool = False
    iteration: int | None = None
    low: int | None = None
    high: int | None = None
    why: str = ""

    @property
    def known(self) -> bool:
        return self.met or self.iteration is not None

    @property
    def early(self) -> bool:
        """Too early to tell: too few measurements for a trend, or none, or the model still learning fast."""
        return self.iteration is None and self.why.endswith((" measurements", UNMEASURED, LEARNING))


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def series(points: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(iteration, value) of the training measurements of ``key``, oldest first (``quality_`` prefix or not)."""
    found = []
    for point in points:
        if point.get("source", "training") != "training":
            continue
        value = _number(point.get(key, point.get(f"quality_{key}")))
        iteration = point.get("iteration", point.get("iter"))
        if value is not None and isinstance(iteration, int) and iteration > 0:
            found.append((iteration, value))
    return found


def _line(xs: list[float], ys: list[float]) -> tuple[float, float, float, float, float]:
    """Least squares y = centre_y + slope (x - centre_x): (centre_x, centre_y, slope, slope's standard
    error, the points' own standard deviation about the line)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return mx, my, 0.0, math.inf, 0.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys))
    noise = math.sqrt(residual / max(n - 2, 1))
    return mx, my, slope, noise / math.sqrt(sxx), noise


def crossing(found: list[tuple[int, float]], threshold: float, rising: bool, now: int) -> tuple[int | None, int | None, int | None, str]:
    """Where the trend of ``found`` (iteration, value) meets ``threshold``: (best, low, high, why)."""
    if len(found) < MIN_POINTS:
        return None, None, None, f"{len(found)} of {MIN_POINTS} measurements"
    recent = found[len(found) // 2:] if len(found) >= 3 * MIN_POINTS else found
    xs, ys = [math.log(i) for i, _ in recent], [v for _, v in recent]
    mx, my, slope, se, noise = _line(xs, ys)
    sign = 1.0 if rising else -1.0
    x_now, x_far = math.log(max(now, 1)), math.log(max(now, 1) * HORIZON)

    def reach(s: float, shift: float = 0.0) -> float | None:
        if s * sign <= 0:
            return None
        x = mx + (threshold - sign * shift - my) / s
        return max(x, x_now) if x <= x_far else None

    best = reach(slope)
    steep, flat = slope + sign * Z * se, slope - sign * Z * se
    # The low end also allows for a measurement's own noise: a noisy figure first crosses the threshold
    # before its trend does (that first crossing is what a stop sees).
    low, high = reach(steep, Z * noise), reach(flat)
    if best is None:
        return None, None, None, AWAY if slope * sign <= 0 else SLOW
    as_iter = lambda x: int(round(math.exp(x)))  # noqa: E731
    return as_iter(best), as_iter(low if low is not None else best), None if high is None else as_iter(high), ""


def window_gain(found: list[tuple[int, float]], at: int, share: float = SHARE) -> float | None:
    """What the figure's trend gained over the last ``share`` of the iterations up to ``at``: its
    least-squares slope on ln(iteration) over the newer half of the run (a figure of a training model
    swings from one measurement to the next; a quarter of the run holds too few of them to see a trend)
    times the quarter's length in ln(iteration); None with fewer than ``2 * MIN_POINTS`` points there."""
    inside = [(i, v) for i, v in found if at / 2 <= i <= at]
    if len(inside) < 2 * MIN_POINTS:
        return None
    slope = _line([math.log(i) for i, _ in inside], [v for _, v in inside])[2]
    return slope * -math.log(1.0 - share)


def sharpness(found: list[tuple[int, float]], now: int) -> Estimate:
    """The held-out SSIM no longer rising: met when its window gain is under ``GAIN`` at the last two
    measurements (the held-out SSIM of a training model swings by a few hundredths from one measurement
    to the next: one dip at the window's end is not a plateau)."""
    gains = [(i, window_gain(found, i)) for i, _ in found]
    last = [g for _, g in gains[-2:]]
    if len(last) == 2 and all(g is not None and g < GAIN for g in last):
        return Estimate("sharpness", met=True)
    positive = [(i, math.log(g)) for i, g in gains if g is not None and g > 0]
    best, low, high, why = crossing(positive, math.log(GAIN), False, now)
    if why == AWAY:
        # The gain is still growing: the SSIM is rising faster and faster, as it does early in training;
        # its fall has not begun, so there is nothing to follow yet ("not getting closer" misled on a
        # real run whose SSIM levelled off four times later: docs/until-good.md).
        why = STILL_GROWING
    return Estimate("sharpness", iteration=best, low=low, high=high, why=why)


def merged_view(figures: dict[str, Any]) -> dict[str, Any] | None:
    """The figures with the mouth as the merge pastes it (``expr_mouth_merged_*``,
    ``engine.quality.expression.merged_figures``) in place of the model's own; None when not measured."""
    plain = {k.removeprefix("quality_"): v for k, v in figures.items()}
    merged = {k[len(MERGED):]: v for k, v in plain.items() if k.startswith(MERGED)}
    if _number(merged.get("spread")) is None and _number(merged.get("dst_spread")) is None:
        return None
    view = {k: v for k, v in plain.items() if not k.startswith("expr_mouth_")}
    view.update({f"expr_mouth_{k}": v for k, v in merged.items() if k != "faces"})
    view["expr_faces"] = merged.get("faces")
    return view


def holds(figures: dict[str, Any], verdict: str, merged: bool = True) -> bool | None:
    """Does ``verdict`` hold for these figures (``engine.quality.verdict.states``)? A destination that
    hardly moves (nothing to follow) holds; None: it cannot be told (not measured, too few faces).
    The mouth holds when the model's own does or, with ``merged``, when the mouth as merged does (the
    merge moves the swap's lips with the destination's where the model's do not: ``[merge] mouth``)."""
    own = _holds(figures, verdict)
    view = merged_view(figures) if merged and verdict == "mouth" and own is not True else None
    return own if view is None else _holds(view, verdict)


def _holds(figures: dict[str, Any], verdict: str) -> bool | None:
    state = states(figures)[verdict]
    if state == "unknown":
        return True if verdict != "identity" and motion_state(figures, verdict)[1] == "still" else None
    return state == "holds"


def targets(figures: dict[str, Any], verdict: str) -> list[tuple[str, float, bool]]:
    """(figure, threshold, rising) of each figure of ``verdict`` still short of its threshold."""
    if verdict == "identity":
        return [("id_closer_src", ID_GOOD, True)]
    found = []
    corr, spread, ratio = (_number(figures.get(f"expr_{verdict}_{k}")) for k in ("corr", "spread", "ratio"))
    if corr is not None and corr < CORR_FOLLOWS:
        found.append((f"expr_{verdict}_corr", CORR_FOLLOWS, True))
    if spread is not None and not SPREAD_FOLLOWS[0] <= spread <= SPREAD_FOLLOWS[1]:
        low = spread < SPREAD_FOLLOWS[0]
        found.append((f"expr_{verdict}_spread", SPREAD_FOLLOWS[0] if low else SPREAD_FOLLOWS[1], low))
    if ratio is not None and ratio > PARTLY:
        found.append((f"expr_{verdict}_ratio", PARTLY, False))
    return found


def latest_figures(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest value of every figure of the training measurements (identity is measured at saves only)."""
    figures: dict[str, Any] = {}
    for point in points:
        if point.get("source", "training") == "training":
            figures.update({k: v for k, v in point.items() if v is not None})
    return figures


def estimates(points: list[dict[str, Any]], now: int, merged: bool = True) -> dict[str, Estimate]:
    """Every verdict's estimate from a quality history (``engine.quality.history`` points) at iteration ``now``;
    ``merged``: the mouth as the merge pastes it counts (``holds``), and is what is followed when measured."""
    found: dict[str, Estimate] = {}
    latest = latest_figures(points)
    for verdict in HELD:
        met = holds(latest, verdict, merged)
        if met:
            found[verdict] = Estimate(verdict, met=True)
            continue
        figures, history = latest, points
        view = merged_view(latest) if merged and verdict == "mouth" else None
        if view is not None:
            figures = view
            history = [merged_view(p) or {k: v for k, v in p.items() if not k.startswith("expr_mouth_")}
                       for p in points]
        parts = [crossing(series(history, key), threshold, rising, now)
                 for key, threshold, rising in targets(figures, verdict)]
        unknown = [p for p in parts if p[0] is None]
        if met is None or not parts:
            found[verdict] = Estimate(verdict, why=UNMEASURED)
        elif unknown:
            found[verdict] = Estimate(verdict, why=unknown[0][3])
        else:  # every figure must get there: the last one decides
            high = None if any(p[2] is None for p in parts) else max(p[2] for p in parts)  # type: ignore[type-var]
            found[verdict] = Estimate(verdict, iteration=max(p[0] for p in parts),  # type: ignore[type-var]
                                      low=max(p[1] for p in parts), high=high)  # type: ignore[type-var]
    found["sharpness"] = sharpness(series(points, "ssim_dst"), now)
    if found["sharpness"].why.endswith(f" of {MIN_POINTS} measurements"):
        # Before the SSIM's trend can be read at all, a figure's trend away (or a crawl) is no forecast:
        # the model is still learning fast and its figures swing with it. Say so, not "not in sight".
        for verdict, est in found.items():
            if est.iteration is None and est.why in (AWAY, SLOW):
                found[verdict] = Estimate(verdict, why=f"{est.why} yet, {LEARNING}")
    return found


def overall(found: dict[str, Estimate]) -> Estimate:
    """When every verdict is met: the last of them (unknown when any is unknown)."""
    waiting = [e for e in found.values() if not e.met]
    if not waiting:
        return Estimate("good", met=True)
    unknown = [e for e in waiting if e.iteration is None]
    if unknown:
        return Estimate("good", why=f"{NAMES[unknown[0].verdict]}: {unknown[0].why}")
    high = None if any(e.high is None for e in waiting) else max(e.high for e in waiting)  # type: ignore[type-var]
    return Estimate("good", iteration=max(e.iteration for e in waiting),  # type: ignore[type-var]
                    low=max(e.low or 0 for e in waiting), high=high)


def minutes(seconds: float) -> str:
    """A duration as people say it: "40 min", "2 h 10 min"."""
    m = max(1, int(round(seconds / 60)))
    return f"{m} min" if m < 60 else f"{m // 60} h" + (f" {m % 60} min" if m % 60 else "")


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def words(est: Estimate, now: int, rate: float | None, found: dict[str, Estimate] | None = None) -> str:
    """One sentence: "good in about 40 min, between 25 and 70 (iteration 9 000, 7 500 to 12 000)"."""
    if est.met:
        return "good now: every verdict holds."
    waiting = "" if not found else " (waiting for " + ", ".join(NAMES[e.verdict] for e in found.values()
                                                                 if not e.met) + ")"
    if est.iteration is None:
        return f"{'too early to tell' if est.early else 'not in sight yet'}: {est.why}{waiting}."
    iters = f"iteration {_thousands(est.iteration)}, {_thousands(est.low or est.iteration)} to " + \
            (_thousands(est.high) if est.high is not None else "not in sight")
    if not rate or rate <= 0:
        return f"good at about {iters}{waiting}."
    if est.high is not None and est.high <= now:  # the trend is there already; the measurements must show it
        return f"good at the next measurements: the trend is there already ({iters}){waiting}."
    mid = minutes((est.iteration - now) / rate)
    if est.high is None:  # the flatter trend never gets there: a soonest, no latest
        soonest = minutes(((est.low or est.iteration) - now) / rate)
        return f"good in about {mid}, {soonest} at the soonest, the latest not in sight ({iters}){waiting}."
    low = minutes(((est.low or est.iteration) - now) / rate).removesuffix(" min")
    return f"good in about {mid}, between {low} and {minutes((est.high - now) / rate)} ({iters}){waiting}."


def metrics_values(found: dict[str, Estimate], now: int, rate: float | None) -> dict[str, Any]:
    """What the metrics events carry (``until_*``): the overall estimate and its sentence."""
    est = overall(found)
    eta = None if est.iteration is None or not rate else round(max(est.iteration - now, 0) / rate, 1)
    return {"until_text": words(est, now, rate, found), "until_met": est.met, "until_iter": est.iteration,
            "until_low": est.low, "until_high": est.high, "until_eta_s": eta,
            "until_waiting": ", ".join(v for v, e in found.items() if not e.met)}


def read_state(model_dir: Path) -> dict[str, Any]:
    """The last estimate or stop of a model (``until.json``); {} when it never trained with the rule."""
    data = read_json(Path(model_dir) / UNTIL_FILE, default=None)
    return data if isinstance(data, dict) else {}
