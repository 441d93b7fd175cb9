"""What a model's figures mean for its user: one sentence per finding, with what to do about it.

    verdicts({"expr_mouth_ratio": 2.8, ...}, arch="df-ud")
    -> [Verdict("poor", "The mouth does not follow the destination yet (error 2.8x the reconstruction's):
       train longer, or try liae / a pretrained model.")]

The only place verdict text is made: ``quality``, ``compare``, ``attach``, the Train and Compare
screens all call it with the figures they have (keys with or without the ``quality_`` prefix of the
metrics events). Pure Python: the wizard imports it without numpy or torch.

Thresholds (measured, README "Training"): the expression error ratio is the swap's landmark error
against the destination over the reconstruction's (``engine.quality.expression``). The unswapped
destination scores 1.0; a swap whose expressions are unrelated to the destination's (the same held-out
faces in shuffled order) scored 3.8 (mouth) and 2.7 (eyes) on the sample pair, and the source's own
faces 6.1 and 4.8. So up to ``FOLLOWS`` the feature follows, up to ``PARTLY`` it follows partly, above
that it does not. The mouth-opening correlation is near 0 for unrelated mouths (-0.04 shuffled) and
should reach ``CORR_FOLLOWS`` (the issue's target). Early in training the reconstruction does not follow
either (its own correlation ``expr_mouth_corr_recon`` is low, and the ratios sit near 1 because both
paths draw the same average mouth): that is said as "still learning", not blamed on the swap. Identity uses the share of swapped faces closer to
the source person than to the destination one (``engine.quality.likeness``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FOLLOWS, PARTLY = 1.5, 2.5
CORR_FOLLOWS, CORR_PARTLY = 0.6, 0.3
ID_GOOD, ID_PARTLY = 0.9, 0.5
LEVELS = ("good", "fair", "poor")
#: feature -> (its words, "does not" / "do not", "follows" / "follow").
_FEATURES = (("mouth", ("the mouth", "does not", "follows")), ("eyes", ("the eyes", "do not", "follow")),
             ("pose", ("the head pose", "does not", "follows")))


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


def expression_verdicts(figures: dict[str, Any], arch: str | None = None) -> list[Verdict]:
    """Does the swap follow the destination's mouth, eyes and head pose? Worst first; one good
    verdict when everything follows; empty when nothing was measured."""
    ratios = {name: _figure(figures, f"expr_{name}_ratio") for name, _ in _FEATURES}
    corr = _figure(figures, "expr_mouth_corr")
    found: list[Verdict] = []
    for name, (words, negative, follows) in _FEATURES:
        ratio = ratios[name]
        if ratio is None or ratio <= FOLLOWS:
            continue
        if ratio > PARTLY:
            found.append(Verdict("poor", f"{words.capitalize()} {negative} follow the destination yet (error "
                                         f"{ratio:.1f}x the reconstruction's): {_advice(arch)}."))
        else:
            found.append(Verdict("fair", f"{words.capitalize()} {follows} the destination only partly (error "
                                         f"{ratio:.1f}x the reconstruction's): train longer."))
    recon_corr = _figure(figures, "expr_mouth_corr_recon")
    if corr is not None and corr < CORR_FOLLOWS and (ratios["mouth"] is None or ratios["mouth"] <= PARTLY):
        if recon_corr is not None and recon_corr < CORR_FOLLOWS:
            found.append(Verdict("fair", f"The mouth does not open and close with the destination's yet, in the swap "
                                         f"(correlation {corr:.2f}) nor in the reconstruction ({recon_corr:.2f}): "
                                         "the model is still learning faces; train longer."))
        elif corr < CORR_PARTLY:
            found.append(Verdict("poor", f"The mouth does not open and close with the destination's (correlation "
                                         f"{corr:.2f}): {_advice(arch)}."))
        else:
            found.append(Verdict("fair", f"The mouth opens and closes with the destination's only partly "
                                         f"(correlation {corr:.2f}): train longer."))
    if found:
        return sorted(found, key=lambda v: -LEVELS.index(v.level))
    measured = [f"{name} {ratios[name]:.1f}x" for name, _ in _FEATURES if ratios[name] is not None]
    if not measured:
        return []
    tail = f"; mouth-opening correlation {corr:.2f}" if corr is not None else ""
    return [Verdict("good", f"Expression follows the destination ({', '.join(measured)} the reconstruction's "
                            f"error{tail}).")]


def identity_verdicts(figures: dict[str, Any]) -> list[Verdict]:
    share = _figure(figures, "id_closer_src")
    if share is None:
        return []
    percent = f"{share:.0%} of faces closer to the source"
    if share >= ID_GOOD:
        return [Verdict("good", f"The swap looks like the source person ({percent}).", "identity")]
    if share >= ID_PARTLY:
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
