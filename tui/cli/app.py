"""The typer application that every ``tui.cli`` module adds its commands to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="swapwizard",
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
