"""engine/bench/gpu_script.py, the GPU server's one prepared script (issue 30), on the CPU: its plan, the
prepared folder, and a smoke run of some parts with the device's missing packages hidden."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.bench import gpu_script

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[2]


def script(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.bench.gpu_script", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_the_plan_shares_the_budget_among_every_part_in_order():
    steps = gpu_script.plan(540, smoke=False)
    assert [s["part"] for s in steps] == ["env", "train", "profile", "quality", "merge", "workers"]
    assert sum(s["limit_s"] for s in steps) <= 540 * 0.98  # the parent's own seconds fit in the rest
    quality = next(s for s in steps if s["part"] == "quality")
    assert 0 < quality["minutes"] * 60 < quality["limit_s"]  # training leaves time for its stops' measurements
    assert next(s for s in gpu_script.plan(540, False, quality_min=30) if s["part"] == "quality")["minutes"] == 30
    device, smoke = gpu_script.settings_for(False), gpu_script.settings_for(True)
    assert device["presets"] == ["saehd", "quick"] and device["workers"] == [1, 2, 4, 8, 16]
    assert set(device["variants"]) == set(gpu_script.VARIANTS) and "compile" not in smoke["variants"]


def test_an_unknown_part_is_one_sentence(capsys):
    assert gpu_script.main(["run", "--parts", "train,nope", "--cpu-smoke"]) == 2
    err = capsys.readouterr().err
    assert "--parts names nope, which is not a part." in err and "hint: Parts: env, train" in err


@pytest.mark.slow
def test_prepare_then_a_smoke_run_measures_with_the_device_packages_hidden_and_goes_on_past_a_failure(tmp_path):
    prepared = script("prepare", "--dir", str(tmp_path / "device"), "--skip-ffmpeg")
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    assert "carried: working tree" in prepared.stdout and "TOO BIG" not in prepared.stdout
    assert (tmp_path / "device" / "ws" / "workspace.toml").is_file()
    assert (tmp_path / "device" / "site" / "tomli_w" / "__init__.py").is_file()
    assert not (tmp_path / "device" / "site" / "imageio_ffmpeg" / "binaries" / "ffmpeg-linux-x86_64-v9.0.2").exists()

    out = tmp_path / "out"
    done = script("run", "--cpu-smoke", "--dir", str(tmp_path / "device"), "--out", str(out), "--parts",
                  "env,profile", "--budget-s", "2000")  # the profile part gets 200 s: the machine is shared
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])  # the last line: one JSON object
    assert report == json.loads((out / "result.json").read_text())
    env, profile = report["env"], report["profile"]
    assert env["version_mediapipe"] is None and env["version_c2pa"] is None  # hidden, as on the device
    assert env["version_tomli_w"] and env["version_imageio_ffmpeg"]  # carried in .device/site
    assert "error" not in profile, profile["error"]
    labels = profile["labels"]
    for label in ("data", "augmentation", "step", "forward+loss", "optimizer", "sync point"):
        assert labels[label]["cpu_ms_per_iter"] > 0, label
    assert labels["step"]["cpu_ms_per_iter"] >= labels["forward+loss"]["cpu_ms_per_iter"]
    assert profile["wall_ms_per_iter"] > 0 and profile["top_cpu_ops"]
    assert (out / "profile-trace.json.gz").stat().st_size > 0
    table = (out / "table.md").read_text()
    assert "Where an iteration goes (tiny" in table and "| forward+loss |" in table

    # A part that fails prints its error, and the script goes on and ends with its table all the same
    # (a part out of time is the same path; which part runs out of time depends on the machine, so the
    # failure here is made certain: the carried destination clip is no video).
    from engine.workspace import Workspace

    Workspace.open(tmp_path / "device" / "ws").source("dst").write_bytes(b"not a video")
    short = script("run", "--cpu-smoke", "--dir", str(tmp_path / "device"), "--out", str(tmp_path / "out2"),
                   "--parts", "env,workers", "--budget-s", "2000")
    assert short.returncode == 0, short.stderr[-2000:]
    last = json.loads(short.stdout.strip().splitlines()[-1])
    assert "error" in last["workers"] and "workers FAILED (going on)" in short.stdout
    assert "gpu" in last["env"]
