"""The typer application that every ``tui.cli`` module adds its commands to."""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

#: ``swapwizard --help`` lists the commands in these panels, in the order of the work. A command that is
#: in none lands in "Other" (a test keeps that list empty).
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Start", ("open", "new", "sources", "consent", "probe")),
    ("Pipeline", ("run", "extract", "sort", "check", "train", "merge")),
    ("Models and masks", ("segment", "masks", "export-model", "import-model")),
    ("Engine", ("status", "attach", "cancel", "train-target", "train-save", "train-preview", "serve", "engine")),
    ("Files", ("pack", "unpack", "faceset", "verify")),
    ("Measure", ("quality", "compare", "study", "bench")),
)
OTHER_PANEL = "Other"


def panel_of(name: str) -> str:
    return next((panel for panel, names in PANELS if name in names), OTHER_PANEL)


class PanelGroup(TyperGroup):
    """The top-level group: its help lists commands under the panels of ``PANELS`` (plain text: help
    strings hold brackets such as "[merge] erode", which rich markup would eat)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = {name: cmd for name in self.list_commands(ctx)
                    if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden}
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name in commands)
        for panel in [p for p, _ in PANELS] + [OTHER_PANEL]:
            names = [n for p, names in PANELS if p == panel for n in names if n in commands] if panel != OTHER_PANEL \
                else [n for n in commands if panel_of(n) == OTHER_PANEL]
            if names:
                with formatter.section(panel):
                    formatter.write_dl([(name, commands[name].get_short_help_str(limit)) for name in names])


app = typer.Typer(
    name="swapwizard",
    cls=PanelGroup,
    help="Face-swap video from the terminal: a wizard, and a detached engine per workspace.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: Sub-groups, so that commands read ``swapwizard engine start WS`` and ``swapwizard bench train``.
engine_app = typer.Typer(help="Start, stop and inspect a workspace's engine.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: print measured speed (frames/s, iterations/s).", no_args_is_help=True)
app.add_typer(engine_app, name="engine")
app.add_typer(bench_app, name="bench")
