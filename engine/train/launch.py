"""``--gpus N``: training under DistributedDataParallel, one process per GPU, launched by torchrun.

The job process runs ``python -m torch.distributed.run --standalone --nproc_per_node N -m
engine.ddp_worker ...`` and relays rank 0's events (JSON lines on its stdout, marked with
``PREFIX``) to the engine. Client commands and cancel travel the other way through a control file
in the model folder that rank 0 reads at each sync point; SIGTERM is passed on to torchrun, which
passes it to every rank (they save and stop together). Without GPUs the ranks use gloo on the CPU,
which is how the tests check it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from engine.errors import JobCancelled, UserError
from engine.report import Reporter
from engine.train.options import RunConfig
from engine.train.signals import stop_on_sigterm
from engine.workspace import Workspace

PREFIX = "@@swapwizard-event "
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def control_path(model_dir: Path) -> Path:
    return model_dir / ".control" / "commands.jsonl"


def run_distributed(ws: Workspace, config: RunConfig, gpus: int, report: Reporter) -> dict:
    """Train the resolved ``config`` on ``gpus`` processes; each rank gets the config as JSON."""
    control = control_path(config.model_dir)
    control.parent.mkdir(parents=True, exist_ok=True)
    control.write_text("")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           "-m", "engine.ddp_worker", "--ws", str(ws.root), "--control", str(control),
           "--config", json.dumps(config.to_json())]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    report.log(f"Starting {gpus} training processes (DistributedDataParallel).")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, cwd=PROJECT_ROOT, env=env)
    outcome: dict[str, Any] = {}

    def relay() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith(PREFIX):
                sys.stderr.write(line)
                continue
            event = json.loads(line[len(PREFIX):])
            if event.get("type") in ("_result", "_error"):
                outcome.update(event)
            else:
                report.emit(event)

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    cancel_sent = term_sent = False
    with stop_on_sigterm() as stopped:
        while proc.poll() is None:
            lines = [json.dumps(c) for c in report.commands()]
            if report.cancelled and not cancel_sent:
                lines.append(json.dumps({"command": "cancel"}))
                cancel_sent = True
            if lines:
                with open(control, "a", encoding="utf-8") as handle:
                    handle.write("\n".join(lines) + "\n")
            if stopped() and not term_sent:
                proc.terminate()  # torchrun passes SIGTERM on to the ranks, which save and stop
                term_sent = True
            time.sleep(0.2)
    reader.join(timeout=10)
    if outcome.get("type") == "_error":
        raise UserError(outcome.get("message", "Distributed training failed."), outcome.get("hint", ""))
    if "result" not in outcome:
        raise UserError(f"Distributed training stopped unexpectedly (exit status {proc.returncode}).",
                        "The engine log has the ranks' output; try --gpus 1 to see the error directly.")
    result = outcome["result"]
    if result.get("stopped") == "cancelled":
        raise JobCancelled()
    return result
