"""How good is "good in about 40 min"? Replays recorded quality histories against their own future.

    swapwizard bench until WS/model/NAME/quality_history.json [...] [--at 0.25] [--json]

For each history (``engine.quality.history``, the trainer's held-out measurements) and each verdict
``train --until good`` waits for (``engine.quality.estimate.VERDICTS``, and ``good``: all of them), it
finds the first measurement at which the verdict holds (the iteration actually reached), takes the
estimate ``engine.quality.estimate`` made from the points up to ``--at`` of that iteration (a quarter by
default: the question the issue asks), and says whether the reached iteration lies in the estimate's
range ("not in sight" counts as a miss when it was reached; "too early to tell", with too few
measurements, gave no range and is not counted). A verdict that holds from the first measurement has
nothing to predict and is left out; one never reached in the history counts as a miss only if the
estimate's whole range lay inside the history.
Pure Python and fast: ``tests/train/test_until_estimate.py`` runs it on committed histories.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.quality import estimate


def reached(points: list[dict[str, Any]], verdict: str) -> int | None:
    """The first iteration at which ``verdict`` holds, measuring as the trainer does (None: never)."""
    for point in points:
        upto = [p for p in points if p["iteration"] <= point["iteration"]]
        found = estimate.estimates(upto, point["iteration"])
        if (estimate.overall(found).met if verdict == "good" else found[verdict].met):
            return int(point["iteration"])
    return None


def _training(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training measurements of a history, oldest first."""
    return sorted((p for p in points if p.get("source", "training") == "training" and p.get("iteration", 0) > 0),
                  key=lambda p: p["iteration"])


def _row(verdict: str, now: int, est: estimate.Estimate, actual: int | None, end: int) -> dict[str, Any]:
    """An estimate made at ``now`` against the iteration ``actual`` the verdict was reached (None: never
    within the history, which ends at ``end``): ``hit`` True, False, or None (no claim to judge)."""
    if est.early:
        hit = None  # "too early to tell": no range was given
    elif actual is not None:  # a range that holds it; "not in sight" of a verdict reached is a miss
        hit = est.iteration is not None and (est.low or 0) <= actual <= (est.high if est.high is not None else float("inf"))
    else:  # never reached within the history: a miss only if the whole range lay inside it
        hit = None if est.iteration is None or est.high is None or est.high > end else False
    return {"verdict": verdict, "made_at": now, "estimate": est.iteration, "low": est.low, "high": est.high,
            "reached": actual, "end": end, "hit": hit, "why": est.why}


def replay(points: list[dict[str, Any]], at: float = 0.25) -> list[dict[str, Any]]:
    """One row per verdict: reached, the estimate made at ``at`` of it, and whether it hit."""
    points = _training(points)
    if not points:
        return []
    end = int(points[-1]["iteration"])
    rows = []
    for verdict in (*estimate.VERDICTS, "good"):
        actual = reached(points, verdict)
        when = int(at * (actual if actual is not None else end))
        upto = [p for p in points if p["iteration"] <= when]
        if not upto or (actual is not None and actual <= upto[-1]["iteration"]):
            continue  # held from the start (or before the estimate): nothing to predict
        now = int(upto[-1]["iteration"])
        found = estimate.estimates(upto, now)
        est = estimate.overall(found) if verdict == "good" else found[verdict]
        if not est.met:
            rows.append(_row(verdict, now, est, actual, end))
    return rows


def replay_every(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the screen said at every measurement, against the history's future: one row per measurement
    and verdict not yet held, with ``hit`` as in ``replay`` (a range given: did it hold the iteration
    reached; "not in sight" (heading away, too slow) where the verdict was reached after all: a miss;
    "too early to tell": None). ``replay`` asks the issue's one question (the estimate at a quarter);
    this one shows how the estimate reads along a real run, where a quarter is often too early."""
    points = _training(points)
    if not points:
        return []
    end = int(points[-1]["iteration"])
    actual = {v: reached(points, v) for v in (*estimate.VERDICTS, "good")}
    rows = []
    for point in points:
        now = int(point["iteration"])
        found = estimate.estimates([p for p in points if p["iteration"] <= now], now)
        for verdict, when in actual.items():
            est = estimate.overall(found) if verdict == "good" else found[verdict]
            if not est.met and (when is None or when > now):
                rows.append(_row(verdict, now, est, when, end))
    return rows


def hit_rate(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(hits, decided): rows whose outcome is known."""
    decided = [r for r in rows if r["hit"] is not None]
    return sum(bool(r["hit"]) for r in decided), len(decided)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="swapwizard bench until", description=__doc__.splitlines()[0])
    parser.add_argument("histories", nargs="+", help="quality_history.json files")
    parser.add_argument("--at", type=float, default=0.25, help="the share of the run at which the estimate is made")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    every = []
    for path in args.histories:
        points = json.loads(Path(path).read_text()).get("points", [])
        for row in replay(points, args.at):
            every.append({"history": path, **row})
    hits, decided = hit_rate(every)
    along = [row for path in args.histories for row in replay_every(json.loads(Path(path).read_text()).get("points", []))]
    along_hits, along_decided = hit_rate(along)
    early = sum(r["hit"] is None and r["reached"] is not None for r in along)
    if args.json:
        print(json.dumps({"rows": every, "hits": hits, "decided": decided, "every_measurement": {
            "hits": along_hits, "decided": along_decided, "too_early_then_reached": early}}, indent=2))
        return 0
    for row in every:
        print(f"{row['history']}: {row['verdict']:<9} estimated at {row['made_at']}: {row['estimate']} "
              f"({row['low']} to {row['high']}; {row['why'] or 'in sight'}), reached {row['reached']}, "
              f"hit {row['hit']}")
    print(f"hit rate: {hits} of {decided}")
    print(f"at every measurement: {along_hits} of {along_decided} said right (a range that held the iteration "
          f"reached; 'not in sight' of a verdict reached later, or a range wholly inside a history that never "
          f"reached it, is wrong); {early} times 'too early to tell' of a verdict reached later")
    return 0
