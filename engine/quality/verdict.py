"""What a model's figures mean for its user: one sentence per finding, with what to do about it.

    verdicts({"expr_mouth_corr": 0.43, "expr_mouth_spread": 0.25, ...}, arch="df-ud")
    -> [Verdict("poor", "The mouth barely moves with the destination's (it opens 0.25x as far; correlation
       0.43, 90 % interval 0.10 to 0.70): train longer, or try liae (--arch liae-ud) / a pretrained model;
       or move the swap's lips with the destination's at merge ([merge] mouth = follow).")]
    states(figures) -> {"identity": "holds", "mouth": "fails", "eyes": "unknown"}

The only place verdict text is made: ``quality``, ``compare``, ``attach``, the Train and Compare
screens all call it with the figures they have (keys with or without the ``quality_`` prefix of the
metrics events); ``states`` is the same decision without words, for rules such as ``train --until good``
and ``[merge] mouth = auto``. Pure Python: the wizard imports it without numpy or torch.

The mouth and the eyes follow when their opening moves **with** the destination's (correlation at
least ``CORR_FOLLOWS``) **and as far** (the spread of the swap's opening over the destination's within
``SPREAD_FOLLOWS``), both measured by ``engine.quality.expression`` over the faces. Correlation alone
was fooled (issue 25): a swapped mouth that opened a quarter as far as the destination's scored 0.43
and an error ratio of 0.98x once each path's average shape was set aside. Calibrated on anchors
(``swapwizard bench expression --anchors [--clip]``, docs/expression.md; sample pair, the 200 faces of
the clip): the destination itself scores mouth correlation 0.97 and spread 0.95; drawn 4 % larger 0.94
and 1.05; the same faces shuffled 0.00 and the source's own faces 0.14 (spreads near 1); the destination
with one face's mouth pasted on all (frozen mouth) 0.69 and 0.19: it passes by correlation, and only
the spread fails it (0.51 on the 20 held-out faces, hence the "partly" band starting at 0.6). The landmark error ratio (swap over reconstruction, after the average shapes are set
aside) still fails a feature above ``PARTLY`` and alone decides the head pose.

No verdict where the measured faces cannot tell: fewer than ``MIN_FACES`` faces, or a destination whose
opening hardly varies over them (standard deviation under ``MIN_SPREAD`` of the face width: twice the
measurement's own noise, the spread of the difference between the openings read on a destination crop
and on its soft copy: 0.009 for the mouth, 0.0025 for the eyes on the sample pair; a destination that
moves only that much gives a perfect swap a correlation of 0.89). The last 20 faces of a clip, the old
held-out rule, can be that still: 20-face stretches of the sample destination go down to 0.007 (mouth). Early in training the reconstruction
does not follow either (its own correlation ``expr_mouth_corr_recon`` is low): that is said as "still
learning", not blamed on the swap. Identity uses the share of swapped faces closer to the source person
than to the destination one (``engine.quality.likeness``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FOLLOWS, PARTLY = 1.5, 2.5
CORR_FOLLOWS, CORR_PARTLY = 0.6, 0.3
#: The swap's opening spread over the destination's: follows inside the first range, partly inside the second.
SPREAD_FOLLOWS, SPREAD_PARTLY = (0.7, 1.4), (0.6, 2.0)
#: Standard deviation of the destination's opening (over the face width) below which there is nothing to follow.
MIN_SPREAD = {"mouth": 0.018, "eyes": 0.005}
MIN_FACES = 8
ID_GOOD, ID_PARTLY = 0.9, 0.5
LEVELS = ("good", "fair", "poor")
#: What ``states`` says of each verdict.
STATES = ("holds", "partly", "fails", "unknown")
#: feature -> (its words, "does not" / "do not", "follows" / "follow", "it opens" / "they open").
_FEATURES = {"mouth": ("the mouth", "does not", "follows", "it opens"),
             "eyes": ("the eyes", "do not", "follow", "they open")}


@dataclass(frozen=True)
class Verdict:
    level: str  # "good", "fair" or "poor"
    text: str
    topic: str = "expression"  # "expression" or "identity"


def _figure(figures: dict[str, Any], key: str) -> float | None:
    for name in (key, f"quality_{key}"):
        value = figures.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            return float(value)
    return None


def _advice(arch: str | None) -> str:
    if arch and arch.startswith("liae"):
        return "train longer, or start from a pretrained model (--pretrain)"
    return "train longer, or try liae (--arch liae-ud) / a pretrained model"


def _interval(figures: dict[str, Any], key: str) -> str:
    lo, hi = _figure(figures, f"{key}_lo"), _figure(figures, f"{key}_hi")
    return f", 90% interval {lo:.2f} to {hi:.2f}" if lo is not None and hi is not None else ""


def motion_state(figures: dict[str, Any], feature: str) -> tuple[str, str]:
    """(state, why) of the mouth or the eyes: "holds", "partly", "fails" or "unknown" (why: "faces",
    "still" (the destination hardly moves), "unmeasured"; else the failing figure: "corr", "spread",
    "ratio", or "")."""
    corr = _figure(figures, f"expr_{feature}_corr")
    spread = _figure(figures, f"expr_{feature}_spread")
    ratio = _figure(figures, f"expr_{feature}_ratio")
    faces = _figure(figures, "expr_faces")
    moves = _figure(figures, f"expr_{feature}_dst_spread")
    if spread is None and moves is None:
        return "unknown", "unmeasured"  # no motion figures (nothing measured, or measured before they existed)
    if faces is not None and faces < MIN_FACES:
        return "unknown", "faces"
    if moves is None or moves < MIN_SPREAD[feature] or corr is None or spread is None:
        return "unknown", "still"
    if not SPREAD_PARTLY[0] <= spread <= SPREAD_PARTLY[1]:
        return "fails", "spread"
    if corr < CORR_PARTLY:
        return "fails", "corr"
    if ratio is not None and ratio > PARTLY:
        return "fails", "ratio"
    if corr < CORR_FOLLOWS:
        return "partly", "corr"
    if not SPREAD_FOLLOWS[0] <= spread <= SPREAD_FOLLOWS[1]:
        return "partly", "spread"
    return "holds", ""


def identity_state(figures: dict[str, Any]) -> str:
    share = _figure(figures, "id_closer_src")
    if share is None:
        return "unknown"
    return "holds" if share >= ID_GOOD else "partly" if share >= ID_PARTLY else "fails"


def states(figures: dict[str, Any]) -> dict[str, str]:
    """Whether each verdict holds, from a quality record (a ``quality`` result's metrics, a quality
    history point or the metrics events' ``quality_*`` values): identity, mouth and eyes, each
    "holds", "partly", "fails" or "unknown" (not measured, or the faces cannot tell)."""
    return {"identity": identity_state(figures), "mouth": motion_state(figures, "mouth")[0],
            "eyes": motion_state(figures, "eyes")[0]}


def _merged_words(figures: dict[str, Any]) -> str:
    """What the mouth does as merged (``expr_mouth_merged_*``: measured where ``[merge] mouth`` moves the
    swap's lips with the destination's), as the end of a mouth verdict; "" when not measured."""
    corr, spread = _figure(figures, "expr_mouth_merged_corr"), _figure(figures, "expr_mouth_merged_spread")
    if corr is None or spread is None:
        return ""
    follows = corr >= CORR_FOLLOWS and SPREAD_FOLLOWS[0] <= spread <= SPREAD_FOLLOWS[1]
    return (f". As merged, with the swap's lips moved with the destination's ([merge] mouth), it "
            f"{'follows' if follows else 'still does not follow'} (correlation {corr:.2f}, {spread:.2f}x as far)")


def _motion_verdict(figures: dict[str, Any], feature: str, arch: str | None) -> Verdict | None:
    words, negative, follows, opens = _FEATURES[feature]
    state, why = motion_state(figures, feature)
    corr = _figure(figures, f"expr_{feature}_corr")
    spread = _figure(figures, f"expr_{feature}_spread")
    ratio = _figure(figures, f"expr_{feature}_ratio")
    if state == "holds" or why == "unmeasured":
        return None
    if why == "faces":
        return Verdict("fair", f"Cannot tell whether {words} {follows} the destination: only "
                               f"{_figure(figures, 'expr_faces'):.0f} faces were measured.")
    if why == "still":
        moves = _figure(figures, f"expr_{feature}_dst_spread")
        amount = f" (spread {moves:.3f} of the face width)" if moves is not None else ""
        return Verdict("fair", f"Cannot tell whether {words} {follows} the destination: the destination's "
                               f"{feature} hardly {'moves' if feature == 'mouth' else 'move'} in the measured "
                               f"faces{amount}.")
    figures_text = (f"correlation {corr:.2f}{_interval(figures, f'expr_{feature}_corr')}; {opens} "
                    f"{spread:.2f}x as far{_interval(figures, f'expr_{feature}_spread')}")
    merged = _merged_words(figures) if feature == "mouth" else ""
    fix = _advice(arch) + ("; or move the swap's lips with the destination's at merge ([merge] mouth = follow)"
                           if feature == "mouth" and not merged else "") + merged
    recon = _figure(figures, f"expr_{feature}_corr_recon")
    if state == "fails" and feature == "mouth" and recon is not None and recon < CORR_FOLLOWS:
        return Verdict("fair", f"The mouth does not open and close with the destination's yet, in the swap "
                               f"({figures_text}) nor in the reconstruction (correlation {recon:.2f}): the model "
                               "is still learning faces; train longer.")
    if state == "fails":
        if why == "ratio":
            figures_text = f"error {ratio:.1f}x the reconstruction's; {figures_text}"
            said = f"{words.capitalize()} {negative} follow the destination's shape yet"
        elif why == "spread" and spread < 1:
            said = f"{words.capitalize()} barely {'moves' if feature == 'mouth' else 'move'} with the destination's"
        elif why == "spread":
            said = f"{words.capitalize()} {'moves' if feature == 'mouth' else 'move'} much more than the destination's"
        else:
            said = f"{words.capitalize()} {negative} open and close with the destination's"
        return Verdict("poor", f"{said} ({figures_text}): {fix}.")
    return Verdict("fair", f"{words.capitalize()} {follows} the destination only partly ({figures_text}): "
                           "train longer.")


def expression_verdicts(figures: dict[str, Any], arch: str | None = None) -> list[Verdict]:
    """Does the swap follow the destination's mouth, eyes and head pose? Worst first; one good
    verdict when everything measured follows; empty when nothing was measured."""
    found = [v for v in (_motion_verdict(figures, f, arch) for f in _FEATURES) if v is not None]
    pose = _figure(figures, "expr_pose_ratio")
    if pose is not None and pose > FOLLOWS:
        found.append(Verdict("poor" if pose > PARTLY else "fair",
                             f"The head pose does not follow the destination (error {pose:.1f}x the reconstruction's): "
                             f"{_advice(arch)}." if pose > PARTLY else
                             f"The head pose follows the destination only partly (error {pose:.1f}x the "
                             "reconstruction's): train longer."))
    held = [f for f in _FEATURES if motion_state(figures, f)[0] == "holds"]
    if found:
        return sorted(found, key=lambda v: -LEVELS.index(v.level))
    if not held and pose is None:
        return []
    parts = [f"{f} correlation {_figure(figures, f'expr_{f}_corr'):.2f}, "
             f"{_figure(figures, f'expr_{f}_spread'):.2f}x as far" for f in held]
    if pose is not None:
        parts.append(f"pose {pose:.1f}x the reconstruction's error")
    return [Verdict("good", f"Expression follows the destination ({'; '.join(parts)}).")]


def identity_verdicts(figures: dict[str, Any]) -> list[Verdict]:
    share = _figure(figures, "id_closer_src")
    if share is None:
        return []
    percent = f"{share:.0%} of faces closer to the source"
    state = identity_state(figures)
    if state == "holds":
        return [Verdict("good", f"The swap looks like the source person ({percent}).", "identity")]
    if state == "partly":
        return [Verdict("fair", f"The swap looks like the source person only partly ({percent}): train longer.",
                        "identity")]
    return [Verdict("poor", f"The swap still looks more like the destination person ({percent}): train longer, "
                            "or check that the source faces are all of one person (swapwizard check).", "identity")]


def verdicts(figures: dict[str, Any], arch: str | None = None) -> list[Verdict]:
    """Identity, then expression: every finding, worst first within each."""
    return identity_verdicts(figures) + expression_verdicts(figures, arch)


def worst(found: list[Verdict]) -> str | None:
    """The worst level among ``found`` (None when empty)."""
    return max((v.level for v in found), key=LEVELS.index) if found else None


def summary(figures: dict[str, Any], arch: str | None = None, limit: int = 2) -> str:
    """The most important verdicts as one line (the worst ``limit``, identity first when it is as
    bad); "" when there is nothing to say."""
    found = sorted(verdicts(figures, arch), key=lambda v: -LEVELS.index(v.level))
    return " ".join(v.text for v in found[:limit])
