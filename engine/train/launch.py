"""``--gpus N``: training under DistributedDataParallel, one process per GPU, launched by torchrun.

The job process runs ``python -m torch.distributed.run --standalone --nproc_per_node N -m
engine.ddp_worker ...`` and relays rank 0's events (JSON lines on its stdout, marked with
``PREFIX``) to the engine. Client commands and cancel travel the other way through a control file
in the model folder that rank 0 reads at each sync point; SIGTERM is passed on to torchrun, which
passes it to every rank (they save and stop together). Without GPUs the ranks use gloo on the CPU,
which is how the tests check it.

Several machines (``--nnodes M --node-rank R --master HOST:PORT``): the same command on each machine,
torchrun's static rendezvous at ``HOST:PORT`` (the machine of node 0, which must be reachable from the
others). Node 0's workspace is the one that counts: it holds the model, writes checkpoints, previews
and events. The other nodes need the same faces in their workspace (``swapwizard faceset pack`` /
``unpack``, or one shared filesystem) and read nothing else: before training, global rank 0 sends
every rank its resolved run (model shape, options) and its latest checkpoint over the process group
(``share_run``), so all ranks start from the same weights, optimizer state and iteration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import JobCancelled, UserError
from engine.report import Reporter
from engine.train.options import RunConfig
from engine.train.signals import stop_on_sigterm
from engine.workspace import Workspace

if TYPE_CHECKING:
    from engine.train.dist import Dist

PREFIX = "@@swapwizard-event "
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def control_path(model_dir: Path) -> Path:
    return model_dir / ".control" / "commands.jsonl"


def parse_master(master: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) as (host, port), or a ``UserError``."""
    host, _, port = master.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--master {master!r} is not HOST:PORT.",
                        "Give node 0's address and a free port, e.g. --master 10.0.0.5:29500.")
    return host, int(port)


def launcher_args(gpus: int, nnodes: int = 1, node_rank: int = 0, master: str = "") -> list[str]:
    """torchrun's arguments: one machine (``--standalone``), or node ``node_rank`` of ``nnodes``."""
    if nnodes <= 1:
        return ["--standalone", f"--nproc_per_node={gpus}"]
    if not 0 <= node_rank < nnodes:
        raise UserError(f"--node-rank {node_rank} is not between 0 and {nnodes - 1}.",
                        "Number the machines 0, 1, ... with node 0 the one whose workspace holds the model.")
    if not master:
        raise UserError("Training on several machines needs --master HOST:PORT (node 0's address).",
                        "For example: --nnodes 2 --node-rank 1 --master 10.0.0.5:29500.")
    host, port = parse_master(master)
    return [f"--nnodes={nnodes}", f"--node_rank={node_rank}", f"--master_addr={host}", f"--master_port={port}",
            f"--nproc_per_node={gpus}"]


def run_distributed(ws: Workspace, config: RunConfig, gpus: int, report: Reporter, nnodes: int = 1,
                    node_rank: int = 0, master: str = "", until: dict[str, Any] | None = None) -> dict:
    """Train the resolved ``config`` on ``gpus`` processes (on each of ``nnodes`` machines); each rank
    gets the config as JSON, and ``until`` (the stop rule's keywords: ``--until good``, ``--for``)."""
    args = launcher_args(gpus, nnodes, node_rank, master)
    control = control_path(config.model_dir)
    control.parent.mkdir(parents=True, exist_ok=True)
    control.write_text("")
    cmd = [sys.executable, "-m", "torch.distributed.run", *args,
           "-m", "engine.ddp_worker", "--ws", str(ws.root), "--control", str(control),
           "--config", json.dumps(config.to_json()), *(["--until", json.dumps(until)] if until else [])]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    where = f" on node {node_rank} of {nnodes} (rendezvous {master})" if nnodes > 1 else ""
    report.log(f"Starting {gpus} training process{'es' if gpus > 1 else ''}{where} (DistributedDataParallel).")
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
    if nnodes > 1 and node_rank > 0:  # a helping node: node 0 has the events, the result and the model
        if proc.returncode != 0:
            raise UserError(f"This node's training processes stopped (exit status {proc.returncode}).",
                            "The engine log has their output; node 0's job says why the run ended.")
        return {"node_rank": node_rank, "nnodes": nnodes, "stopped": "finished on node 0"}
    if outcome.get("type") == "_error":
        raise UserError(outcome.get("message", "Distributed training failed."), outcome.get("hint", ""))
    if "result" not in outcome:
        raise UserError(f"Distributed training stopped unexpectedly (exit status {proc.returncode}).",
                        "The engine log has the ranks' output; try --gpus 1 to see the error directly.")
    result = outcome["result"]
    if result.get("stopped") == "cancelled":
        raise JobCancelled()
    return result


def share_run(dist: Dist, config: RunConfig, ws: Workspace) -> RunConfig:
    """Several machines: every rank takes global rank 0's resolved run, and the ranks on other machines
    get its latest checkpoint written into their own workspace's model folder (atomically), so that
    they load what rank 0 loads. One machine (or one rank): ``config`` as it is."""
    world_local = int(os.environ.get("LOCAL_WORLD_SIZE", str(dist.world)))
    if not dist.enabled or world_local >= dist.world:
        return config
    import torch  # the ranks have it loaded already; the engine's start path imports this module without it

    device = torch.device("cuda", dist.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    shared = dist.broadcast_json(config.to_json() if dist.main else None, device)
    assert isinstance(shared, dict)
    remote = int(os.environ.get("GROUP_RANK", "0")) > 0
    local_model_dir = ws.model_dir(Path(shared["model_dir"]).name) if remote else Path(shared["model_dir"])
    mine = RunConfig.from_json({**shared, "model_dir": str(local_model_dir)})
    files: dict[str, Any] = {}
    if dist.main:
        from engine.train.checkpoint import CheckpointStore

        store = CheckpointStore(config.model_dir)
        latest = next(iter(store.candidates()), None)
        if latest is not None and (latest / "state.json").is_file():
            files = {"name": latest.name, "files": sorted(p.name for p in latest.iterdir() if p.is_file())}
    files = dist.broadcast_json(files, device)
    assert isinstance(files, dict)
    received = {name: dist.broadcast_bytes((Path(config.model_dir) / "checkpoints" / files["name"] / name)
                                           .read_bytes() if dist.main else None, device)
                for name in files.get("files", [])}
    if remote and received:
        folder = local_model_dir / "checkpoints" / files["name"]
        if not folder.is_dir():
            tmp = local_model_dir / "checkpoints" / f".tmp-{files['name']}-{os.getpid()}"
            tmp.mkdir(parents=True, exist_ok=True)
            for name, data in received.items():
                (tmp / name).write_bytes(data)
            os.replace(tmp, folder)
    return mine
