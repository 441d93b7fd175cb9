"""The two questions a new model needs: its preset, then its target iteration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App

from engine.train.options import PRESETS
from engine.workspace import Workspace
from tui.screens.ask import AskScreen
from tui.screens.choice import ChoiceScreen

#: The presets the wizard offers a new model (amp and cnn: from the CLI), each shown as declared in
#: engine/train/options.py: shape, batch, target and what it is for.
OFFERED = ("tiny", "quick", "saehd")
PRESET_CHOICES = [(name, PRESETS[name].line(name)) for name in OFFERED]


def model_exists(ws: Workspace) -> bool:
    return (ws.model_dir(ws.model_name()) / "model.json").is_file()


def ask_new_model(app: App, ws: Workspace, chosen: Callable[[dict[str, Any]], None]) -> None:
    """Ask for preset and target; calls ``chosen({"preset": ..., "iters": ...})`` unless cancelled."""
    settings = ws.section("train")

    def preset_chosen(preset: str | None) -> None:
        if preset is None:
            return
        target = str(settings.get("iters") or PRESETS[preset].iters)

        def target_chosen(answer: str | None) -> None:
            if answer is not None and answer.isdigit():
                chosen({"preset": preset, "iters": int(answer)})

        app.push_screen(AskScreen("Train until iteration (0: until you stop it):", target, restrict=r"[0-9]*"),
                        target_chosen)

    app.push_screen(ChoiceScreen("A new model: pick its preset", PRESET_CHOICES, settings.get("preset") or "quick"),
                    preset_chosen)
