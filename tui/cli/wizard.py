"""``swapwizard [WS]``: open the wizard on a workspace (or on the workspace picker).

With no workspace and none in the current folder, the wizard starts on its workspace step, where
``d`` makes a demo workspace from the sample clips the project ships.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from engine.errors import UserError
from engine.workspace import CONFIG_NAME
from tui.cli.app import app
from tui.cli.common import fail


@app.command("open")
def open_wizard(
    workspace: Optional[str] = typer.Argument(None, help="Workspace folder (default: the current folder if it is one)."),
) -> None:
    """Open the wizard: a keyboard-driven guide from two videos to a finished result."""
    path = Path(workspace).expanduser() if workspace else None
    if path is None and (Path.cwd() / CONFIG_NAME).is_file():
        path = Path.cwd()
    if path is not None and not (path / CONFIG_NAME).is_file():
        fail(f"{path} is not a swapwizard workspace.",
             f"Create one with: swapwizard new {path} --src SOURCE --dst DESTINATION (or run swapwizard alone).")
    from tui.app import make_app  # only now: the CLI's other commands need no Textual
    from tui.graphics import detect, workspace_setting

    try:
        detect(workspace_setting(path))  # kitty / sixel / blocks: asks the terminal before Textual owns it
    except UserError as exc:
        fail(exc.message, exc.hint)
    make_app(path).run()
