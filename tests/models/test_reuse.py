"""Reusing a trained model on another clip (merge --dst) and moving a model between workspaces
(pack --model / unpack --model), through the real CLI and engine."""

from __future__ import annotations

import json
import subprocess

import pytest

from engine.media.decode import iter_frames
from engine.workspace import Workspace
from tests.helpers import SAMPLES, cli, run_job, stop_engine
from tests.models.conftest import TINY


@pytest.fixture(scope="module")
def trained(models_ws):
    final, _ = run_job(models_ws, "train", {**TINY, "model": "reuse", "iters": 4}, timeout=300)
    assert final.TYPE == "job_finished", getattr(final, "error", "")
    yield models_ws
    stop_engine(models_ws)


def _signature(path, env=None):
    shown = cli("verify", str(path), "--json", env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return json.loads(shown.stdout)


@pytest.mark.timeout(600)
def test_merge_another_clip_leaves_the_workspace_destination_alone(trained, tmp_path):
    ws = trained
    own = {p: p.stat().st_mtime_ns for p in [ws.alignments_path("dst"), ws.source("dst")]}
    result_before = (ws.output_dir / "result.mp4").stat().st_mtime_ns if (ws.output_dir / "result.mp4").exists() else None
    merge_step = ws.steps().get("merge", {}).get("status", "todo")
    own_faces = sorted(p.name for p in ws.aligned_dir("dst").iterdir())
    copied = tmp_path / "exports" / "hamilton swapped.mp4"
    copied.parent.mkdir()
    done = cli("merge", str(ws.root), "--model", "reuse", "--dst", str(SAMPLES / "hamilton.mp4"),
               "--output", str(copied), "--mask", "hull", timeout=500)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = ws.root / "extra_dst" / "hamilton"
    result = folder / "output" / "result.mp4"
    assert result.is_file() and (folder / "data_dst" / "alignments.jsonl").is_file()
    assert any((folder / "data_dst" / "aligned").iterdir())
    # The second result has the other clip's size and frames, and is labelled and signed like any output.
    frames = list(iter_frames(result))
    assert frames[0][2].shape[:2] == (360, 640)
    assert len(frames) == sum(1 for _ in iter_frames(SAMPLES / "hamilton.mp4"))
    signed = _signature(result)
    assert signed["signed"] and signed["content_intact"] and signed["ai_generated"]
    assert copied.read_bytes() == result.read_bytes()
    # The workspace's own destination, its faces and its merge step are untouched.
    assert {p: p.stat().st_mtime_ns for p in own} == own
    assert sorted(p.name for p in ws.aligned_dir("dst").iterdir()) == own_faces
    result_after = (ws.output_dir / "result.mp4").stat().st_mtime_ns if (ws.output_dir / "result.mp4").exists() else None
    assert result_after == result_before
    assert ws.steps().get("merge", {}).get("status", "todo") == merge_step


@pytest.mark.timeout(300)
def test_a_clip_without_a_face_is_refused_in_one_sentence(trained, tmp_path):
    import imageio_ffmpeg

    blank = tmp_path / "blank.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=gray:s=160x120:d=1:r=10", "-pix_fmt", "yuv420p", str(blank)], check=True)
    done = cli("merge", str(trained.root), "--model", "reuse", "--dst", str(blank), timeout=200)
    assert done.returncode != 0
    assert "No face was found in" in done.stderr and "hint:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    missing = cli("merge", str(trained.root), "--dst", str(tmp_path / "nope.mp4"))
    assert missing.returncode == 2 and "There is no video at" in missing.stderr


@pytest.mark.timeout(300)
def test_unpack_a_model_into_an_existing_workspace_and_say_so(trained, tmp_path):
    archive = tmp_path / "reuse.tar.gz"
    packed = cli("pack", str(trained.root), str(archive), "--model", "reuse")
    assert packed.returncode == 0, packed.stderr
    other = Workspace.create(tmp_path / "other", dst=SAMPLES / "hamilton.mp4")
    done = cli("unpack", str(archive), str(other.root), "--model", "copied")
    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "model 'copied'" in said and "iteration 4" in said and "swapwizard merge" in said
    moved = json.loads((other.model_dir("copied") / "model.json").read_text())
    assert moved["iteration"] == 4 and moved["name"] == "copied"
    # A workspace archive is not a model: --model says so; unpacking the model again refuses to overwrite.
    again = cli("unpack", str(archive), str(other.root), "--model", "copied")
    assert again.returncode != 0 and "already has a model named 'copied'" in again.stderr
