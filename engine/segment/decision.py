"""The recorded ``[merge] mask = auto`` decision (``WS/segmenter/auto.json``, made by ``engine.segment.auto``)
and the one line that says it. No torch or OpenCV: the wizard's Check, Merge and Export steps read it.
"""

from __future__ import annotations

from typing import Any

from engine.atomic import read_json
from engine.segment import store

DECISION = "auto.json"


def alignments_id(ws: Any) -> list[Any]:
    path = ws.alignments_path("dst")
    return [path.stat().st_size, int(path.stat().st_mtime)] if path.is_file() else []


def recorded(ws: Any) -> dict[str, Any] | None:
    """The decision made on the destination's current faces, or None."""
    made = read_json(store.segmenter_dir(ws) / DECISION, default=None)
    if isinstance(made, dict) and made.get("alignments") == alignments_id(ws):
        return made
    return None


def _cost(made: dict[str, Any]) -> str:
    """`` (about 6 minutes on this CPU)``: the recorded estimate of the segmenter's training and masks."""
    seconds, device = made.get("estimate_s"), made.get("device", "cpu")
    if seconds is None:
        return "" if device == "cpu" else f" (on {device})"
    minutes = max(1, round(seconds / 60))
    return f" (about {minutes} minute{'s' if minutes > 1 else ''} on this CPU)"


def sentence(ws: Any, made: dict[str, Any] | None, short: bool = False) -> str:
    """The decision in one line for ``check`` and the wizard (no torch): what the merge will do and why.
    ``short``: the wizard's Merge step, beside the settings (the mask first, the counts as the reason)."""
    ready = made is not None and made["segment"] and store.has_masks(ws, "dst")
    if short:
        if made is None:
            return "Mask auto: decided when the merge starts (hull*segment if faces are covered, else the hull)."
        why = f"{made['occluded']} of {made['faces']} faces have something in front"
        if not made["segment"]:
            why = f"{why}: too few for a segmenter" if made["occluded"] else f"none of {made['faces']} faces is covered"
            return f"Mask auto: the hull at no cost ({why})."
        then = "its masks are ready" if ready else f"fine-tuned first{_cost(made)}"
        return f"Mask auto: hull*segment, {why}; segmenter {then}."
    if made is None:
        return ("Mask auto: decided when the merge starts (or by the data check): hull*segment if the "
                "destination's faces have something in front of them, else the landmark hull.")
    if not made["segment"]:
        return (f"No occlusions found ({made['occluded']} of {made['faces']} destination faces looked at have "
                "something in front of them): the merge uses the landmark hull at no cost.")
    found = (f"Occlusions: {made['occluded']} of {made['faces']} destination faces have something in front of "
             f"them ({made['hands']} with a hand found at extraction, {made['doubted']} where the segmenter "
             "doubts the face)")
    if ready:
        return f"{found}: the merge uses hull*segment with the segmenter's masks, which are ready."
    return f"{found}: the merge will use hull*segment and fine-tune the segmenter first{_cost(made)}."
