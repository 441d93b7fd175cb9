"""Two machines, simulated on one over loopback: --nnodes 2, one gloo rank per node, torchrun's static
rendezvous. Node 0's workspace holds the model; node 1's holds only the faces (its data_src/data_dst
copied, as `faceset pack`/`unpack` or a shared filesystem would give it)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.errors import UserError
from engine.faces.extract import ExtractSettings, extract_side
from engine.jobs.train import Params, run
from engine.report import CallbackReporter, NullReporter
from engine.train.checkpoint import CheckpointStore
from engine.train.launch import launcher_args
from tests.helpers import make_workspace
from tests.train.conftest import as_dict, tiny_params

REPO = Path(__file__).resolve().parents[2]

NODE = textwrap.dedent("""
    import json, sys
    from engine.jobs.train import Params, run
    from engine.report import NullReporter
    from engine.workspace import Workspace
    result = run(Workspace.open(sys.argv[1]), Params(**json.loads(sys.argv[2])), NullReporter())
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    base = tmp_path_factory.mktemp("nodes")
    ws0 = make_workspace(base / "node0")
    for side in ("src", "dst"):
        extract_side(ws0, side, ExtractSettings(size=128, crop_format="png"), NullReporter())
    ws1 = make_workspace(base / "node1")
    for side in ("src", "dst"):  # the faces only: crops and their records
        shutil.rmtree(ws1.side_dir(side), ignore_errors=True)
        shutil.copytree(ws0.side_dir(side), ws1.side_dir(side))
    return ws0, ws1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_on_two_nodes(ws0, ws1, iters: int) -> tuple[dict, dict, list]:
    master = f"127.0.0.1:{free_port()}"
    params = dict(as_dict(tiny_params("multi", iters=iters)), nnodes=2, master=master)
    helper = subprocess.Popen([sys.executable, "-c", NODE, str(ws1.root), json.dumps({**params, "node_rank": 1})],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    events: list = []
    try:
        result = run(ws0, Params(**{**params, "node_rank": 0}), CallbackReporter(events.append))
        out, _ = helper.communicate(timeout=120)
    finally:
        if helper.poll() is None:
            helper.kill()
    assert helper.returncode == 0
    return result, json.loads(out.strip().splitlines()[-1]), events


@pytest.mark.timeout(400)
def test_two_nodes_train_together_and_node_0_keeps_the_model(nodes):
    ws0, ws1 = nodes
    result, helper, events = train_on_two_nodes(ws0, ws1, 6)
    assert result["iteration"] == 6 and result["stopped"] == "target"
    assert helper == {"node_rank": 1, "nnodes": 2, "stopped": "finished on node 0"}
    saved = CheckpointStore(ws0.model_dir("multi")).load()
    assert saved.state["world_size"] == 2 and len(saved.state["samplers"]) == 2
    last = [e["values"] for e in events if e["type"] == "metrics"][-1]
    assert last["samples_per_s"] == pytest.approx(last["iters_per_s"] * 16, rel=0.01)  # both nodes' batches
    assert not list(ws1.model_dir("multi").glob("checkpoints/*/state.json")), "only node 0 writes checkpoints"

    # Resumed: node 1 has no checkpoint of its own; it gets node 0's (weights, optimizer, iteration).
    again, helper, _ = train_on_two_nodes(ws0, ws1, 10)
    assert again["iteration"] == 10 and again["iterations_this_run"] == 4
    assert CheckpointStore(ws0.model_dir("multi")).load().state["iteration"] == 10


def test_bad_node_arguments_are_one_sentence():
    with pytest.raises(UserError, match="--master"):
        launcher_args(1, 2, 1, "")
    with pytest.raises(UserError, match="HOST:PORT"):
        launcher_args(1, 2, 1, "node0")
    with pytest.raises(UserError, match="between 0 and 1"):
        launcher_args(1, 2, 2, "10.0.0.5:29500")
    assert launcher_args(2, 2, 1, "[fe80::1]:29500") == ["--nnodes=2", "--node_rank=1", "--master_addr=fe80::1",
                                                         "--master_port=29500", "--nproc_per_node=2"]
    with pytest.raises(UserError, match="--master"):
        Params(nnodes=2, node_rank=1)
