"""Shared helpers for CLI commands: the consoles, opening a workspace, failing cleanly, the consent reminder.

Running a job in the engine is ``tui.cli.follow.run_job`` (follow imports this module, never the reverse).
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from engine.errors import UserError
from engine.workspace import Workspace

#: Diagnostics go to stderr; stdout belongs to output (JSON, tables). Markup is off: user text (paths,
#: model names, "[merge] erode") prints as it is; a line with markup says markup=True and escapes its text.
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
out = Console(highlight=False, soft_wrap=True, markup=False)

EXIT_DONE, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Jobs that work on the faces of the people shown: the CLI reminds the user when consent is not recorded.
CONSENT_KINDS = ("extract", "train", "merge", "run")


def fail(message: str, hint: str = "", code: int = EXIT_USAGE) -> NoReturn:
    """Print one clear sentence (and a hint) to stderr and exit; never a traceback."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    if hint:
        err.print(f"[dim]hint:[/] {escape(hint)}", markup=True)
    raise typer.Exit(code)


def remind_consent(ws: Workspace) -> None:
    """The one consent reminder, printed once per workspace (by ``new`` or the first job) while none is recorded."""
    if ws.consent_confirmed():
        return
    marker = ws.state_dir / "consent-reminded"
    if marker.exists():
        return
    err.print("[yellow]note:[/] no consent is recorded for this workspace: only swap the faces of people who "
              f"agreed, and record it with: swapwizard consent {escape(str(ws.root))}", markup=True)
    try:
        ws.state_dir.mkdir(mode=0o700, exist_ok=True)
        marker.touch()
    except OSError:
        pass


def open_workspace(path: str) -> Workspace:
    try:
        return Workspace.open(path)
    except UserError as exc:
        fail(exc.message, exc.hint)
