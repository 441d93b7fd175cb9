"""One training rank under torchrun (see engine.train.launch); not meant to be run by hand.

A process entry point, so it sits on the engine's process floor (docs/architecture.md), not in
``engine.train``: it may use every floor below (training, and the quality measured while training).

    python -m torch.distributed.run --standalone --nproc_per_node N -m engine.ddp_worker \
        --ws WS --control FILE --config JSON [--until JSON]

Rank 0 prints events as JSON lines (``PREFIX`` + JSON) for the launching job to relay, and reads
client commands from the control file.
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

from engine.errors import JobCancelled, UserError
from engine.quality.training import TrainingQuality
from engine.quality.until import UntilGood
from engine.report import NullReporter, Reporter
from engine.train.dist import Dist
from engine.train.launch import PREFIX, share_run
from engine.train.loop import TrainingRun
from engine.train.options import RunConfig
from engine.train.signals import stop_on_sigterm
from engine.workspace import Workspace


class StdoutReporter(Reporter):
    """Rank 0's reporter: events to stdout, commands (and cancel) from the control file."""

    def __init__(self, control: Path) -> None:
        super().__init__()
        self.control = control
        self.offset = 0
        self._cancelled = False
        self._pending: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> None:
        sys.stdout.write(PREFIX + json.dumps(event) + "\n")
        sys.stdout.flush()

    def _read(self) -> None:
        try:
            with open(self.control, encoding="utf-8") as handle:
                handle.seek(self.offset)
                text = handle.read()
        except OSError:
            return
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            try:
                command = json.loads(line)
            except ValueError:
                continue
            if command.get("command") == "cancel":
                self._cancelled = True
            else:
                self._pending.append(command)

    @property
    def cancelled(self) -> bool:
        self._read()
        return self._cancelled

    def commands(self) -> list[dict[str, Any]]:
        self._read()
        pending, self._pending = self._pending, []
        return pending


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="engine.ddp_worker")
    parser.add_argument("--ws", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--config", required=True, help="The resolved RunConfig as JSON (RunConfig.to_json).")
    parser.add_argument("--until", default="", help="The stop rule's keywords as JSON (--until good, --for).")
    args = parser.parse_args(argv)
    faulthandler.enable()  # a rank that crashes in native code says where (the engine log keeps stderr)
    dist = Dist.from_env()
    report = StdoutReporter(Path(args.control)) if dist.main else NullReporter()
    finished = False
    try:
        ws = Workspace.open(args.ws)
        config = share_run(dist, RunConfig.from_json(json.loads(args.config)), ws)  # several machines: rank 0's
        keywords = json.loads(args.until) if args.until else None
        until = functools.partial(UntilGood, good=bool(keywords["good"]), limit_s=keywords["limit_s"]) if keywords else None
        with stop_on_sigterm() as stopped:
            try:
                result = TrainingRun(ws, config, report, dist, stopped, watch=TrainingQuality, until=until).run()
            except JobCancelled:
                result = {"stopped": "cancelled"}
        finished = True
    except UserError as exc:
        if dist.main:
            report.emit({"type": "_error", "message": exc.message, "hint": exc.hint})
        return 1
    finally:
        dist.close(finished)
    if dist.main:
        report.emit({"type": "_result", "result": result})
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without the interpreter's and the native libraries' teardown: everything is written (the
    # checkpoints atomically, the events flushed). A finished rank once aborted at its end ("terminate
    # called without an active exception": a native thread destroyed unjoined), which failed its node's
    # job and left node 0's torchrun waiting 5 minutes at its exit barrier.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
