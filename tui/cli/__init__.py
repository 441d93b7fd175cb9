"""The ``swapwizard`` command.

``swapwizard [WS]`` opens the wizard; ``swapwizard COMMAND ...`` runs one command (``--help`` lists
them). Each module in this package adds its commands to ``app`` (from ``tui.cli.app``); they are
imported here so a new module needs no registration. Exit codes: 0 done, 1 job failed, 2 bad usage
or input.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from tui.cli.app import app

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("app", "common"):
        importlib.import_module(f"{__name__}.{_info.name}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: routes ``swapwizard`` and ``swapwizard PATH`` to the wizard."""
    args = list(sys.argv[1:] if argv is None else argv)
    import typer.main

    command_names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    if not args or (not args[0].startswith("-") and args[0] not in command_names):
        args = ["open", *args]
    app(args=args, prog_name="swapwizard")
