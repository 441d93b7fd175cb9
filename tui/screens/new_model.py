"""The questions a new model needs: its preset, then when to stop (when it is good, offered first, with the
preset's target as the ceiling; or at an iteration the user gives)."""

from __future__ import annotations

import os
import shutil
import subprocess
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


def gpus_found() -> list[str]:
    """The NVIDIA GPUs this machine shows (``nvidia-smi -L``, honouring CUDA_VISIBLE_DEVICES=""), by name;
    torch-free, so the wizard stays light: the engine's training runs on the same machine."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return []
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        listed = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[1].split("(UUID")[0].strip() for line in listed.splitlines()
            if line.startswith("GPU ") and ":" in line]


def default_preset(settings: dict[str, Any], gpus: list[str]) -> tuple[str, str]:
    """The preset to highlight for a new model, and why: the workspace's own choice, else one that suits
    the hardware found (on a CPU the others take hours to days)."""
    chosen = settings.get("preset")
    if chosen in OFFERED:
        return str(chosen), "as workspace.toml's [train] preset says"
    if gpus:
        more = f" and {len(gpus) - 1} more" if len(gpus) > 1 else ""
        return "quick", f"as a GPU was found ({gpus[0]}{more})"
    return "tiny", "as no GPU was found (nvidia-smi lists none): the others take hours to days on a CPU"


def model_exists(ws: Workspace) -> bool:
    return (ws.model_dir(ws.model_name()) / "model.json").is_file()


def stop_choices(ceiling: int) -> list[tuple[str, str]]:
    """When training stops (``[train] until``): when the model is good first."""
    return [("good", f"When it is good: identity, mouth and eyes follow, sharpness levelled off (or at a plateau, "
                     f"or at the ceiling: iteration {ceiling:,})"),
            ("target", "At an iteration I choose")]


def ask_new_model(app: App, ws: Workspace, chosen: Callable[[dict[str, Any]], None]) -> None:
    """Ask for preset and when to stop; calls ``chosen({"preset", "iters", "until"})`` unless cancelled."""
    settings = ws.section("train")

    def preset_chosen(preset: str | None) -> None:
        if preset is None:
            return
        target = int(settings.get("iters") or PRESETS[preset].iters)

        def target_chosen(answer: str | None) -> None:
            if answer is not None and answer.isdigit():
                chosen({"preset": preset, "iters": int(answer), "until": "target"})

        def until_chosen(until: str | None) -> None:
            if until == "good":
                chosen({"preset": preset, "iters": target, "until": "good"})
            elif until == "target":
                app.push_screen(AskScreen("Train until iteration (0: until you stop it):", str(target),
                                          restrict=r"[0-9]*"), target_chosen)

        app.push_screen(ChoiceScreen("When should training stop?", stop_choices(target),
                                     settings.get("until") or "good"), until_chosen)

    highlighted, why = default_preset(settings, gpus_found())
    app.push_screen(ChoiceScreen(f"A new model: pick its preset ({highlighted} is highlighted {why}).",
                                 PRESET_CHOICES, highlighted), preset_chosen)
