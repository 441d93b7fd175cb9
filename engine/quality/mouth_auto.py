"""``[merge] mouth = auto``: the swap's lips moved to the destination's mouth when the model's latest quality
says its own mouth does not follow.

    mode, said = merge_mouth(ws.model_dir("default"), "auto")   # ("follow", "Mouth: the swap's lips ...")

The merge and its preview ask this before merging (the merge layer cannot read quality: it sits below
it, docs/architecture.md), then paste with ``mode`` ("swap" or "follow", ``engine.merge.mouth``)
while ``[merge] mouth`` stays "auto" in workspace.toml. The latest quality record is the last point of
the model's quality history (``engine.quality.history``: the trainer's held-out measurement, or a
``quality`` run); its mouth state comes from ``engine.quality.verdict.states``:

- "fails" or "partly": ``follow``, the swap's own lips moved to the destination's mouth shape with the
  destination's mouth opening in the gap (the identity stays the swap's; ``destination``, which pastes the
  destination's whole mouth region, cost identity on a man -> woman pair: docs/expression.md);
- "holds": the model's own;
- "unknown" (never measured, measured before the motion figures existed, or a destination whose mouth
  hardly moves on the measured faces): the model's own, and the sentence says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import settings
from engine.errors import UserError
from engine.quality import history
from engine.quality.verdict import motion_state


def latest_record(model_dir: Path) -> dict:
    """The model's last quality history point that measured expression ({} when none did)."""
    points = [p for p in history.read(model_dir) if p.get("expr_faces")]
    return max(points, key=lambda p: (int(p.get("iteration", 0)), p.get("time", 0))) if points else {}


def merge_mouth(model_dir: Path, setting: str) -> tuple[str, str]:
    """(the mouth the merge pastes, "swap" or "follow" for auto; the sentence that says why, "" unless auto)."""
    if setting != "auto":
        return setting, ""
    record = latest_record(model_dir)
    state, why = motion_state(record, "mouth")
    at = f"at iteration {record.get('iteration')}" if record else ""
    if state in ("fails", "partly"):
        corr, spread = record.get("expr_mouth_corr"), record.get("expr_mouth_spread")
        figures = f"correlation {corr:.2f}, {spread:.2f}x as far" if corr is not None and spread is not None else why
        return "follow", (f"Mouth: the swap's lips moved to follow the destination's ([merge] mouth = auto): the "
                          f"model's mouth does not follow the destination's {at} ({figures}). Set [merge] mouth = swap "
                          "to keep the model's.")
    if state == "holds":
        return "swap", f"Mouth: the model's own ([merge] mouth = auto): it follows the destination's {at}."
    reason = {"unmeasured": "its quality was not measured with the motion figures yet (swapwizard quality WS measures it)",
              "faces": "too few faces were measured to tell",
              "still": "the destination's mouth hardly moves in the measured faces"}.get(why, why)
    return "swap", (f"Mouth: the model's own ([merge] mouth = auto): {reason}. Set [merge] mouth = follow to move "
                    "its lips with the destination's.")


def merged_mouth(ws: Any) -> str:
    """The mouth the merge will paste when the model's own does not follow, for measuring it as merged:
    "follow" for ``[merge] mouth = auto`` (what auto picks then) or ``follow``, "destination" for that,
    "swap" (the model's own, nothing more to measure) otherwise."""
    try:
        mode = str(settings.read(ws, "merge").get("mouth", "auto"))
    except UserError:
        return "swap"  # a damaged workspace.toml: training says so itself
    return {"auto": "follow", "follow": "follow", "destination": "destination"}.get(mode, "swap")
