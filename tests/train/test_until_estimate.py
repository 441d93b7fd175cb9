"""When will it be good? The estimate (engine.quality.estimate) replayed against histories whose future
is known (engine.bench.until): curves of known shape with the measurement noise of 16 faces."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from engine.bench.until import hit_rate, replay, replay_every
from engine.quality import estimate


def _history(seed: int, end: int = 12_000, every: int = 250) -> list[dict]:
    """A model whose mouth correlation climbs along ln(iteration) with the noise of 16 measured faces
    (about 0.05), everything else already holding, the SSIM levelled off."""
    rng = random.Random(seed)
    slope = rng.uniform(0.12, 0.25)
    points = []
    for i in range(every, end + 1, every):
        corr = 0.6 + slope * math.log(i / 6000) + rng.gauss(0, 0.05)
        points.append({"iteration": i, "source": "training", "ssim_dst": 0.85 + rng.gauss(0, 0.001),
                       "id_closer_src": 1.0, "expr_faces": 16, "expr_mouth_ratio": 1.1, "expr_mouth_corr": corr,
                       "expr_mouth_spread": 0.9, "expr_mouth_dst_spread": 0.03, "expr_eyes_ratio": 1.1,
                       "expr_eyes_corr": 0.8, "expr_eyes_spread": 0.9, "expr_eyes_dst_spread": 0.006})
    return points


def test_the_range_made_at_a_quarter_holds_the_iteration_reached_about_as_often_as_it_says():
    rows = [r for seed in range(40) for r in replay(_history(seed)) if r["verdict"] == "mouth"]
    hits, decided = hit_rate(rows)
    assert decided >= 30
    # The range is about 80 % of the slope's spread; the first crossing of a noisy figure comes early,
    # so it holds the truth less often than that, but most of the time.
    assert 0.55 <= hits / decided <= 0.98, (hits, decided)
    # And it is an estimate, not a shrug: its middle is, typically, within a factor of 1.5 of the truth.
    ratios = sorted(r["estimate"] / r["reached"] for r in rows if r["estimate"])
    assert 1 / 1.5 <= ratios[len(ratios) // 2] <= 1.5, ratios


def test_a_figure_that_heads_away_is_not_in_sight():
    points = [{"iteration": i, "source": "training", "expr_mouth_corr": 0.5 - i / 100_000} for i in range(250, 4001, 250)]
    best, low, high, why = estimate.crossing(estimate.series(points, "expr_mouth_corr"), 0.6, True, 4000)
    assert best is None and why == "not getting closer"


def test_the_sentence_gives_minutes_and_their_range():
    est = estimate.Estimate("good", iteration=10_000, low=7000, high=16_000)
    text = estimate.words(est, 4000, rate=2.5)
    assert text == "good in about 40 min, between 20 and 1 h 20 min (iteration 10 000, 7 000 to 16 000)."
    there = estimate.words(estimate.Estimate("good", iteration=37_280, low=37_280, high=37_280), 37_792, rate=5.0)
    assert there == "good at the next measurements: the trend is there already (iteration 37 280, 37 280 to 37 280)."
    open_ended = estimate.words(estimate.Estimate("good", iteration=10_000, low=7000), 4000, rate=2.5)
    assert open_ended == ("good in about 40 min, 20 min at the soonest, the latest not in sight "
                          "(iteration 10 000, 7 000 to not in sight).")
    assert estimate.words(estimate.Estimate("good", why="the mouth: not getting closer"), 4000, 2.5) == \
        "not in sight yet: the mouth: not getting closer."
    assert estimate.words(estimate.overall(estimate.estimates(_history(0)[:2], 500)), 500, 2.5).startswith(
        "too early to tell: the mouth: 2 of 4 measurements")



def test_one_dip_of_the_ssim_is_not_a_plateau():
    rising = [(i, 0.5 + 0.05 * math.log(i / 250)) for i in range(250, 8001, 250)]
    dipped = rising[:-1] + [(8000, rising[-1][1] - 0.06)]  # the last measurement swings down
    assert not estimate.sharpness(dipped, 8000).met
    flat = rising[:16] + [(i, rising[15][1] + (0.01 if i % 500 else -0.01)) for i in range(4250, 8001, 250)]
    assert estimate.sharpness(flat, 8000).met


def test_the_mouth_as_merged_counts_and_is_what_is_followed():
    """``[merge] mouth`` auto/follow moves the swap's lips with the destination's where the model's own
    do not: the rule counts the mouth as merged (``expr_mouth_merged_*``), and follows its trend."""
    points = _history(1, end=4000)
    for p in points:
        p.update({"expr_mouth_corr": 0.2, "expr_mouth_spread": 0.3,  # the model's own mouth fails throughout
                  "expr_mouth_merged_corr": 0.9, "expr_mouth_merged_spread": 1.0,
                  "expr_mouth_merged_dst_spread": 0.03, "expr_mouth_merged_faces": 16})
    assert estimate.estimates(points, 4000)["mouth"].met
    assert not estimate.estimates(points, 4000, merged=False)["mouth"].met
    # A merged mouth still short of the spread, heading there along ln(iteration): its own estimate.
    for p in points:
        p["expr_mouth_merged_spread"] = 0.3 + 0.1 * math.log(p["iteration"] / 250)
    last = points[-1]["expr_mouth_merged_spread"]
    mouth = estimate.estimates(points, 4000)["mouth"]
    assert last < 0.7 and not mouth.met and mouth.iteration is not None
    assert abs(math.log(mouth.iteration / (250 * math.exp(4.0)))) < 0.05, mouth  # where 0.3 + 0.1 ln(i/250) = 0.7
    # Measured without the merged mouth (a workspace with [merge] mouth = swap): the model's own, as before.
    own = [{k: v for k, v in p.items() if not k.startswith("expr_mouth_merged_")} for p in points]
    assert estimate.merged_view(own[-1]) is None and estimate.estimates(own, 4000)["mouth"].why == estimate.AWAY


def test_measurements_come_often_enough_for_the_estimate_on_a_short_run():
    """The trainer's schedule (``next_measurement``) at the default 500: a 20-minute CPU run (3 500
    iterations) has 4 measurements by a quarter of it and the 8 the SSIM's trend needs in its newer half;
    never more than 500 apart nor closer than 100; a long run settles at every 500."""
    from engine.quality.training import next_measurement

    done = [0]
    while done[-1] < 100_000:
        done.append(next_measurement(done[-1], 500))
    done = done[1:]
    gaps = [b - a for a, b in zip(done, done[1:])]
    assert done[0] == 100 and min(gaps) >= 100 and max(gaps) == 500
    assert sum(i <= 3500 / 4 for i in done) >= estimate.MIN_POINTS
    assert sum(3500 / 2 <= i <= 3500 for i in done) >= 2 * estimate.MIN_POINTS
    assert all(g == 500 for g in gaps[-100:])
    assert next_measurement(0, 4) == 1 and next_measurement(1000, 4) == 1004  # small settings (tests)


def test_the_mouth_verdict_says_what_the_merge_makes_of_it():
    from engine.quality.verdict import summary

    figures = {"expr_faces": 16, "expr_mouth_corr": 0.3, "expr_mouth_spread": 0.25, "expr_mouth_dst_spread": 0.03,
               "expr_mouth_corr_recon": 0.8}
    assert summary(figures).endswith("at merge ([merge] mouth = follow).")
    said = summary({**figures, "quality_expr_mouth_merged_corr": 0.93, "quality_expr_mouth_merged_spread": 1.01})
    assert said.startswith("The mouth barely moves") and "[merge] mouth = follow" not in said
    assert said.endswith("it follows (correlation 0.93, 1.01x as far).")
    assert "still does not follow" in summary({**figures, "expr_mouth_merged_corr": 0.4, "expr_mouth_merged_spread": 0.5})


def test_an_ssim_still_speeding_up_is_too_early_to_tell_not_out_of_sight():
    """Early in training the SSIM can rise faster and faster (its gain over the last quarter grows): its
    fall has not begun, so there is nothing to follow yet; a real run read that as "not getting closer"
    and levelled off four times later."""
    speeding = [(i, 0.5 + 0.02 * math.log(i / 100) ** 2) for i in range(100, 4001, 100)]
    est = estimate.sharpness(speeding, 4000)
    assert not est.met and est.iteration is None and est.early and est.why == estimate.STILL_GROWING
    assert estimate.words(estimate.overall({"sharpness": est}), 4000, 2.0).startswith("too early to tell: the SSIM")
    # A gain that falls (the SSIM bending over) still gets its estimate.
    bending = [(i, 0.8 - 0.3 * (i / 100) ** -0.5) for i in range(100, 4001, 100)]
    assert estimate.sharpness(bending, 4000).iteration is not None


RECORDED = Path(__file__).parent / "data" / "katie_aoc_tiny_s1.quality_history.json"


def test_a_young_run_whose_figure_turns_away_is_too_early_to_tell_not_out_of_sight():
    """Before the SSIM's trend can be read (``window_gain`` needs 8 measurements in the newer half), the
    model is still learning fast and its figures swing: a trend away is "too early to tell". A recorded
    run (Katie -> AOC, ``tiny``, seed 1, 2026-12-07) shows why: its eyes' correlation turned down at 600
    and the eyes held at 2 744; at 600 the estimate used to say "not getting closer"."""
    points = json.loads(RECORDED.read_text())["points"]
    young = [p for p in points if p["iteration"] <= 600]
    eyes = estimate.estimates(young, 600)["eyes"]
    assert not eyes.met and eyes.early and eyes.why.endswith(estimate.LEARNING), eyes
    assert estimate.words(estimate.overall({"eyes": eyes}), 600, 4.0).startswith("too early to tell: the eyes")
    assert next(r for r in replay(points) if r["verdict"] == "eyes")["hit"] is None  # no claim, no miss
    # Once the SSIM's trend is read, a figure heading away is "not getting closer" again (a real claim).
    away = _history(2, end=8000)
    for p in away:
        p.update({"ssim_dst": 0.7 + 0.02 * math.log(p["iteration"] / 250), "expr_mouth_corr": 0.5 - p["iteration"] / 100_000})
    assert estimate.estimates(away, 8000)["mouth"].why == estimate.AWAY
    assert estimate.estimates(away[:3], 750)["mouth"].why != estimate.AWAY  # the same trend, three measurements in


def test_along_a_recorded_run_what_the_screen_said_is_checked_against_what_came():
    """``replay_every``: every measurement's estimate, against the run's own future. On the recorded
    run no verdict is called out of sight before its trend can be read, and most ranges held the truth."""
    points = json.loads(RECORDED.read_text())["points"]
    rows = replay_every(points)
    eyes = [r for r in rows if r["verdict"] == "eyes"]
    assert eyes and all(r["reached"] == 2744 for r in eyes)
    assert all(r["hit"] is None for r in eyes if r["made_at"] <= 1100)  # too early to tell, not a claim
    hits, decided = hit_rate(eyes)
    assert decided >= 8 and hits / decided >= 0.7, (hits, decided)
    # The simulated runs, at every measurement: the range holds the truth most of the time.
    simulated = [r for seed in range(10) for r in replay_every(_history(seed)) if r["verdict"] == "mouth"]
    hits, decided = hit_rate(simulated)
    assert decided >= 100 and 0.6 <= hits / decided <= 0.98, (hits, decided)
