"""The demo workspace: the sample clips the project ships, ready for a first run."""

from __future__ import annotations

from pathlib import Path

import engine
from engine.workspace import CONFIG_NAME, Workspace

SAMPLES = Path(engine.__file__).resolve().parent / "samples"
DEMO_NAME = "swapwizard-demo"


def default_demo_path() -> Path:
    return Path.cwd() / DEMO_NAME


def demo_workspace(path: Path | None = None) -> Workspace:
    """Open the demo workspace at ``path``, creating it from the sample clips the first time."""
    path = path or default_demo_path()
    if (path / CONFIG_NAME).is_file():
        return Workspace.open(path)
    return Workspace.create(path, src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
