"""Moving a trained workspace to another machine: ``swapwizard pack`` carries each model's newest whole
checkpoint (weights and optimizer state) and leaves the rest behind unless ``--all-checkpoints``; the
copy unpacked elsewhere resumes at the same iteration and trains on exactly as the original does.
Replacing footage a model was trained on is refused without ``--force``."""

from __future__ import annotations

import re
import tarfile

import pytest

from engine.jobs.train import run
from engine.report import CallbackReporter
from engine.workspace import Workspace
from tests.helpers import SAMPLES, cli
from tests.train.conftest import tiny_params
from tests.train.test_resume import QUIET, assert_same_state, latest

MODEL = "moved"


@pytest.fixture(scope="module")
def packed(train_ws, tmp_path_factory):
    """A model trained to 6 with a save every 2 iterations (rolling checkpoints, a backup, a best),
    packed both ways through the CLI."""
    run(train_ws, tiny_params(MODEL, iters=6, save_every_iters=2), QUIET)
    folder = tmp_path_factory.mktemp("packed")
    default = cli("pack", str(train_ws.root), str(folder / "default.tgz"), timeout=300)
    everything = cli("pack", str(train_ws.root), str(folder / "all.tgz"), "--all-checkpoints", timeout=300)
    assert default.returncode == 0, default.stderr
    assert everything.returncode == 0, everything.stderr
    return folder, default, everything


def _checkpoint_folders(archive, model=MODEL):
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    marker = f"/model/{model}/"
    return sorted({name.split(marker, 1)[1].rsplit("/", 1)[0] for name in names
                   if marker in name and name.endswith("state.json")})


@pytest.mark.timeout(600)
def test_pack_carries_the_newest_whole_checkpoint_and_says_the_size_first(train_ws, packed):
    folder, default, everything = packed
    model_dir = train_ws.model_dir(MODEL)
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == \
        ["it000000002", "it000000004", "it000000006"]
    assert (model_dir / "best").is_dir() and (model_dir / "backups").is_dir()
    assert _checkpoint_folders(folder / "default.tgz") == ["checkpoints/it000000006"]
    every = _checkpoint_folders(folder / "all.tgz")
    assert {"checkpoints/it000000002", "checkpoints/it000000004", "checkpoints/it000000006"} <= set(every)
    assert any(name.startswith("best/") for name in every) and any(name.startswith("backups/") for name in every)
    # The size comes before the archive is written, and what stayed behind is named.
    assert "MB before compression" in default.stderr and "Wrote" in default.stdout
    assert f"model {MODEL}: checkpoints/it000000006 (the newest whole checkpoint)" in default.stderr
    assert "--all-checkpoints" in default.stderr
    assert (folder / "default.tgz").stat().st_size < (folder / "all.tgz").stat().st_size


@pytest.mark.timeout(600)
def test_unpacked_elsewhere_training_resumes_at_the_same_iteration_exactly(train_ws, packed, tmp_path):
    folder, _, _ = packed
    unpacked = cli("unpack", str(folder / "default.tgz"), str(tmp_path / "other machine" / "ws"), timeout=300)
    assert unpacked.returncode == 0, unpacked.stderr
    copy = Workspace.open(tmp_path / "other machine" / "ws")
    events = []
    result = run(copy, tiny_params(MODEL, iters=10, save_every_iters=2), CallbackReporter(events.append))
    assert f"Resumed {MODEL} at iteration 6." in [e.get("message") for e in events]
    assert result["iterations_this_run"] == 4
    run(train_ws, tiny_params(MODEL, iters=10, save_every_iters=2), QUIET)
    assert_same_state(latest(train_ws, MODEL), latest(copy, MODEL))


@pytest.mark.timeout(600)
def test_replacing_footage_a_model_was_trained_on_needs_force(packed, tmp_path):
    folder, _, _ = packed
    assert cli("unpack", str(folder / "default.tgz"), str(tmp_path / "ws")).returncode == 0
    ws = Workspace.open(tmp_path / "ws")
    for step in ("extract_src", "extract_dst", "check", "train"):
        ws.set_step(step, "done")
    faces = len(list(ws.aligned_dir("src").iterdir()))
    before = ws.source("src").read_bytes()
    refused = cli("sources", str(ws.root), "--src", str(SAMPLES / "dst.mp4"))
    assert refused.returncode == 2
    # The console wraps a long sentence at its width (also after a hyphen): compare without white space.
    said = "".join(refused.stderr.split())
    assert f"Replacingthesourceinvalidatesitsextraction({faces}facecrops),thedatacheck,model" in said
    # Every model with a checkpoint trained on the old faces is named (other tests of the session trained
    # some in the same workspace; MODEL is one of them).
    assert re.search(rf"models?[^(]*{MODEL}[^(]*\(trainedontheoldfaces\)", said), refused.stderr
    assert ws.source("src").read_bytes() == before
    assert all(record["status"] == "done" for name, record in ws.steps().items() if name != "merge")
    forced = cli("sources", str(ws.root), "--src", str(SAMPLES / "dst.mp4"), "--force")
    assert forced.returncode == 0, forced.stderr
    assert ws.source("src").read_bytes() == (SAMPLES / "dst.mp4").read_bytes()
    steps = ws.steps()
    assert [steps[s]["status"] for s in ("extract_src", "extract_dst", "check", "train")] == \
        ["todo", "done", "todo", "todo"]
    assert "Training continues from" in forced.stderr and "--model NEW_NAME" in forced.stderr
