"""The two questions a new model needs: its preset, then its target iteration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App

from engine.workspace import Workspace
from tui.screens.ask import AskScreen
from tui.screens.choice import ChoiceScreen

#: The presets a new model can start from, with what a person needs to choose (engine/train/options.py).
PRESETS = [
    ("tiny", "tiny: 64 px, minutes on a CPU; for trying the flow"),
    ("quick", "quick: 96 px, a first usable result in about an hour on a GPU"),
    ("saehd", "saehd: 128 px LIAE, full quality; a day or more on a GPU"),
]
#: A target to suggest per preset (0 trains until stopped).
SUGGESTED_TARGET = {"tiny": 300, "quick": 50000, "saehd": 200000}


def model_exists(ws: Workspace) -> bool:
    return (ws.model_dir(ws.model_name()) / "model.json").is_file()


def ask_new_model(app: App, ws: Workspace, chosen: Callable[[dict[str, Any]], None]) -> None:
    """Ask for preset and target; calls ``chosen({"preset": ..., "iters": ...})`` unless cancelled."""
    settings = ws.section("train")

    def preset_chosen(preset: str | None) -> None:
        if preset is None:
            return
        target = str(settings.get("iters") or SUGGESTED_TARGET.get(preset, 0))

        def target_chosen(answer: str | None) -> None:
            if answer is not None and answer.isdigit():
                chosen({"preset": preset, "iters": int(answer)})

        app.push_screen(AskScreen("Train until iteration (0: until you stop it):", target, restrict=r"[0-9]*"),
                        target_chosen)

    app.push_screen(ChoiceScreen("A new model: pick its preset", PRESETS, settings.get("preset") or "quick"),
                    preset_chosen)
