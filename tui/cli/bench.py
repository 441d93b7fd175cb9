"""``swapwizard bench NAME ...``: benchmarks run in a subprocess (they import torch; the CLI must not).

Each subcommand hands its arguments, ``--help`` included, to ``python -m engine.bench NAME``, whose own
parser documents its options; the line each one gets in ``swapwizard bench --help`` is in ``BENCHES``.
"""

from __future__ import annotations

import subprocess
import sys

import typer

from tui.cli.app import bench_app

_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}

#: Subcommand -> its help line (the options named are the engine benchmark's own).
BENCHES = {
    "extract": "Extraction frames/s on a clip, and its ratios to decode-only and bare detector+mesh (--json).",
    "train": "Training iterations/s, samples/s and the loop's overhead ratio (--preset P, --json).",
    "merge": "Merge frames/s at 512x512 and 1080p, prediction timed separately (--json); --runtime: PyTorch "
             "against ONNX Runtime at 1080p.",
    "identity": "Face descriptor ms per face; people linked on an A-B-A clip: accuracy and cost (--a, --b, --json).",
    "c2pa": "Seconds Content Credentials signing adds: the sample's export, a PNG frame, a 1080p minute (--json).",
    "segment": "Segmenter: held-out IoU with synthetic occluders, faces/s on the CPU, 1080p merge with "
               "hull*segment (--json).",
    "expression": "Expression fidelity of training recipes at a fixed iteration budget (--workspace, --candidates, "
                  "--iters, --table); the pairs table (--pairs NAME=WS,... --seeds 1,2); the anchors (--anchors).",
    "limits": "The engine under a hostile local client: RSS with non-reading subscribers, log bytes per bad "
              "request, status under a connect flood (--json, --only).",
    "until": "How often the 'good in about...' estimate made at a quarter of a run holds the iteration reached "
             "(quality_history.json files, --at, --json).",
}


def _add(name: str, help_line: str) -> None:
    """Register ``swapwizard bench NAME``: runs ``python -m engine.bench NAME ARGS...`` and exits with its code."""

    def bench(ctx: typer.Context) -> None:
        code = subprocess.call([sys.executable, "-m", "engine.bench", name, *ctx.args])
        raise typer.Exit(code)

    bench.__name__ = f"bench_{name}"
    bench_app.command(name, help=help_line, context_settings=_CONTEXT)(bench)


for _name, _help in BENCHES.items():
    _add(_name, _help)
