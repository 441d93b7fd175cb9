"""``swapwizard bench NAME ...``: benchmarks run in a subprocess (they import torch; the CLI must not)."""

from __future__ import annotations

import subprocess
import sys

import typer

from tui.cli.app import bench_app

_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _run(name: str, ctx: typer.Context) -> None:
    code = subprocess.call([sys.executable, "-m", "engine.bench", name, *ctx.args])
    raise typer.Exit(code)


@bench_app.command("extract", context_settings=_CONTEXT)
def bench_extract(ctx: typer.Context) -> None:
    """Extraction frames/s on a clip, and its ratios to decode-only and bare detector+mesh (--json)."""
    _run("extract", ctx)


@bench_app.command("train", context_settings=_CONTEXT)
def bench_train(ctx: typer.Context) -> None:
    """Training iterations/s, samples/s and the loop's overhead ratio (--preset P, --json)."""
    _run("train", ctx)


@bench_app.command("merge", context_settings=_CONTEXT)
def bench_merge(ctx: typer.Context) -> None:
    """Merge frames/s at 512x512 and 1080p, prediction timed separately (--json)."""
    _run("merge", ctx)


@bench_app.command("identity", context_settings=_CONTEXT)
def bench_identity(ctx: typer.Context) -> None:
    """Face descriptor ms per face; people linked on an A-B-A clip: accuracy and cost (--a, --b, --json)."""
    _run("identity", ctx)


@bench_app.command("c2pa", context_settings=_CONTEXT)
def bench_c2pa(ctx: typer.Context) -> None:
    """Seconds Content Credentials signing adds: the sample's export, a PNG frame, a 1080p minute (--json)."""
    _run("c2pa", ctx)


@bench_app.command("segment", context_settings=_CONTEXT)
def bench_segment(ctx: typer.Context) -> None:
    """Segmenter: held-out IoU with synthetic occluders, faces/s on the CPU, 1080p merge with hull*segment (--json)."""
    _run("segment", ctx)


@bench_app.command("expression", context_settings=_CONTEXT)
def bench_expression(ctx: typer.Context) -> None:
    """Expression fidelity of training recipes at a fixed iteration budget (--workspace, --candidates, --iters, --table)."""
    _run("expression", ctx)


@bench_app.command("limits", context_settings=_CONTEXT)
def bench_limits(ctx: typer.Context) -> None:
    """The engine under a hostile local client: RSS with non-reading subscribers, log bytes per bad request, status under a connect flood (--json, --only)."""
    _run("limits", ctx)
