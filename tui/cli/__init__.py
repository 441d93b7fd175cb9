"""The ``swapwizard`` command.

``swapwizard [WS]`` opens the wizard; ``swapwizard COMMAND ...`` runs one command (``--help`` lists
them). Each module in this package adds its commands to ``app`` (from ``tui.cli.app``); they are
imported here so a new module needs no registration. Exit codes: 0 done, 1 job failed, 2 bad usage
or input.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys
from pathlib import Path

from tui.cli.app import app, panel_of

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("app", "common"):
        importlib.import_module(f"{__name__}.{_info.name}")
# Each command's help panel comes from one table (tui.cli.app.PANELS), not from each module.
for _command in app.registered_commands:
    _command.rich_help_panel = panel_of(_command.name or (_command.callback.__name__ if _command.callback else ""))
for _group in app.registered_groups:
    _group.rich_help_panel = panel_of(_group.name or "")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: routes ``swapwizard`` and ``swapwizard PATH`` to the wizard.

    A first word that is neither a command nor a folder, and close to a command, is a typo: it gets
    "No such command ... Did you mean ...?" instead of being opened as a workspace."""
    args = list(sys.argv[1:] if argv is None else argv)
    import typer.main

    command_names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    if args and not args[0].startswith("-") and args[0] not in command_names and not Path(args[0]).expanduser().exists():
        try:
            _refuse_unknown(args[0], sorted(command_names), len(args) > 1)
        except typer.Exit as exc:
            raise SystemExit(exc.exit_code) from None
    if not args or (not args[0].startswith("-") and args[0] not in command_names):
        args = ["open", *args]
    app(args=args, prog_name="swapwizard")


def _refuse_unknown(word: str, commands: list[str], more: bool) -> None:
    """Exit 2 on a word that reads as a mistyped command, or is followed by more words (``WORD WS``,
    ``WORD --help``: the wizard takes one folder); return for what may be a workspace path."""
    from tui.cli.common import fail

    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.6)
    looks_like_path = "/" in word or "." in word or word.startswith("~")
    if close and not looks_like_path:
        fail(f"No such command '{word}'. Did you mean '{close[0]}'?", "swapwizard --help lists the commands.")
    if more:
        fail(f"No such command '{word}', and no folder of that name.",
             "swapwizard --help lists the commands; swapwizard open --help tells how to open the wizard.")
