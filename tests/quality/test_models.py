"""Quality on the sample pair with micro models: held-out split, direction of the metrics, the
unswapped baseline, and compare/quality through the real CLI and engine."""

from __future__ import annotations

import json
import subprocess

import pytest

from engine.atomic import read_json
from engine.faces.records import target_records
from engine.faces.split import training_faces
from engine.media.encode import ffmpeg_exe, png_text
from engine.quality.evaluate import evaluate
from engine.quality.history import read as read_history
from engine.quality.sheet import video_tile_size
from tests.helpers import cli
from tests.quality.conftest import LONG_ITERS, SHORT_ITERS

FAST_ENV = {"OMP_NUM_THREADS": "1"}


@pytest.mark.timeout(120)
def test_held_out_frames_are_recorded_and_never_trained_on(extracted_ws) -> None:
    for side in ("src", "dst"):
        everything = target_records(extracted_ws, side)
        trained = {r.frame for r in training_faces(extracted_ws, side)}
        recorded = read_json(extracted_ws.side_dir(side) / "holdout.json")
        held, guard = set(recorded["frames"]), set(recorded["guard"])
        assert len(held) == max(3, -(-len(everything) // 10))
        assert not (held | guard) & trained
        assert len(trained) == len(everything) - len(held) - len(guard)


@pytest.mark.timeout(240)
def test_a_model_trained_longer_scores_better(trained_ws) -> None:
    short = evaluate(trained_ws, "short", frames=6, device="cpu")
    long = evaluate(trained_ws, "long", frames=6, device="cpu")
    assert (short["iteration"], long["iteration"]) == (SHORT_ITERS, LONG_ITERS)
    assert long["held_out"] and long["frames"] == short["frames"]
    s, lo = short["metrics"], long["metrics"]
    for side in ("src", "dst"):
        assert lo[f"ssim_{side}"] > s[f"ssim_{side}"] + 0.05, (side, s, lo)
        assert lo[f"psnr_{side}"] > s[f"psnr_{side}"] + 1.0, (side, s, lo)
    assert lo["pose_error"] < s["pose_error"], (s, lo)
    points = read_history(trained_ws.model_dir("long"))
    assert points[-1]["iteration"] == LONG_ITERS and points[-1]["ssim_dst"] == lo["ssim_dst"]


@pytest.mark.timeout(60)
def test_training_records_quality_over_iterations_and_its_cost(trained_ws) -> None:
    points = [p for p in read_history(trained_ws.model_dir("long")) if p["source"] == "training"]
    iterations = [p["iteration"] for p in points]
    # Nothing is measured at iteration 0 (an untrained model teaches nothing); then about every 50 (beside
    # the loop, at the iteration its copy of the weights had) and at the end.
    assert 0 < iterations[0] < LONG_ITERS and iterations[-1] == LONG_ITERS and len(iterations) >= 3
    assert iterations == sorted(iterations)
    assert points[-1]["ssim_dst"] > points[0]["ssim_dst"] + 0.05
    cost = read_json(trained_ws.model_dir("long") / "training_cost.json")
    assert cost["device"].startswith("cpu") and cost["train_seconds"] > 0 and cost["iteration"] == LONG_ITERS


@pytest.mark.timeout(240)
def test_the_unswapped_destination_is_the_perfect_baseline(extracted_ws) -> None:
    result = evaluate(extracted_ws, "none", frames=8, video="data_dst.mp4")
    m = result["metrics"]
    assert result["model"] is None and m["faces"] == 8 and m["faces_lost"] == 0
    assert m["pose_error"] == 0.0 and m["eyes_error"] == 0.0 and m["mouth_error"] == 0.0
    # Flicker is measured over pairs of consecutive frames; the held-out frames are stretches over the clip.
    pairs = sum(b == a + 1 for a, b in zip(result["frames"], result["frames"][1:]))
    assert len(result["frames"]) == 8 and pairs >= 4
    assert m["extra_flicker"] == 0.0 and m["flicker_ratio"] == 1.0 and m["frame_pairs"] == pairs
    assert m["sharpness"] == 1.0
    assert m["ssim_dst"] is None  # no model: no reconstruction
    assert read_json(extracted_ws.root / "output" / "quality_video.json")["metrics"] == m


@pytest.mark.timeout(300)
def test_compare_writes_the_table_video_and_contact_sheet(trained_ws) -> None:
    done = cli("compare", str(trained_ws.root), "--models", "short", "long", "--frames", "6", "--device", "cpu",
               "--json", timeout=280, env=FAST_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert [m["name"] for m in result["models"]] == ["short", "long"]
    assert [m["cost"]["iterations"] for m in result["models"]] == [SHORT_ITERS, LONG_ITERS]
    assert not any(m["cost"]["train_seconds_estimated"] for m in result["models"])
    assert [m["unseen"] for m in result["models"]] == ["yes", "yes"]  # held-out frames, recorded as never trained on
    rows = {row["metric"]: row for row in result["table"]}
    assert rows["ssim_dst"]["best"] == ["long"] and rows["psnr_src"]["best"] == ["long"]
    assert rows["ssim_dst"]["clear"] and rows["ssim_dst"]["noise"] > 0
    folder = trained_ws.root / "output" / "compare"
    assert read_json(folder / "compare.json") == result
    sheet = (folder / "contact_sheet.png").read_bytes()
    assert png_text(sheet)["synthetic_media"] == "true"
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(folder / "side_by_side.mp4")],
                           capture_output=True, text=True)
    assert "synthetic_media" in probe.stderr and "Synthetic media" in probe.stderr
    # Both pictures also carry signed Content Credentials naming the two models.
    from engine.media.credentials import read_credentials

    for name in ("contact_sheet.png", "side_by_side.mp4"):
        found = read_credentials(folder / name)
        assert found["signed"] and found["content_intact"] and found["ai_generated"], name
        assert [m["name"] for m in found["assertions"]["org.swapwizard.model"]["models"]] == ["short", "long"]
    tile_width, _ = video_tile_size(512, 512)
    assert f" {3 * tile_width}x" in probe.stderr  # destination | short | long
    # The table is also printed for people.
    shown = cli("compare", str(trained_ws.root), "--models", "short", "long", "--frames", "2", "--device", "cpu",
                timeout=280, env=FAST_ENV)
    assert shown.returncode == 0 and "ssim_dst" in shown.stdout and "*" in shown.stdout
    # each model's verdicts in their colours, not as markup text
    assert "short: " in shown.stdout and "[/]" not in shown.stdout and "[green]" not in shown.stdout


@pytest.mark.timeout(200)
def test_quality_command_prints_json_and_refuses_a_missing_model(trained_ws) -> None:
    done = cli("quality", str(trained_ws.root), "--model", "long", "--frames", "3", "--device", "cpu", "--json",
               timeout=180, env=FAST_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["model"] == "long" and result["iteration"] == LONG_ITERS and len(result["frames"]) == 3
    shown = cli("quality", str(trained_ws.root), "--model", "long", "--frames", "3", "--device", "cpu",
                timeout=180, env=FAST_ENV)
    assert shown.returncode == 0, shown.stderr[-2000:]
    said = [v["text"] for v in result["verdicts"]]
    assert said and all(text in shown.stdout.replace("\n", " ") or text[:40] in shown.stdout for text in said)
    assert "[/]" not in shown.stdout and "[green]" not in shown.stdout and "[yellow]" not in shown.stdout
    missing = cli("quality", str(trained_ws.root), "--model", "nope", timeout=120, env=FAST_ENV)
    assert missing.returncode == 1
    assert "no trained model 'nope'" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.timeout(60)
def test_a_model_trained_before_costs_were_recorded_is_not_claimed_unseen(extracted_ws, tmp_path) -> None:
    import torch

    from engine.atomic import atomic_write_json
    from engine.quality.cost import training_cost, unseen_check
    from engine.quality.training import TrainingQuality

    old = tmp_path / "old-model"
    atomic_write_json(old / "loss_history.json", {"points": [[4, 1.0, 1.0, 1000.0], [8, 0.9, 0.9, 1060.0]]})
    quality = TrainingQuality(extracted_ws, old, 32, torch.device("cpu"))
    assert quality.never_trained_on is None and quality.seconds == 60.0
    quality.every = 0  # record the cost without measuring (no network here)
    quality.saved(None, 8)
    cost = training_cost(old)
    assert cost["train_seconds_estimated"] and unseen_check(cost, [70, 71]).startswith("unknown (trained before")
    (old / "pretrained").mkdir()  # where the train job keeps the pretrained weights a model started from
    assert unseen_check(training_cost(old), [70, 71]) == \
        "unknown (pretrained on other faces first, which may include these frames)"
    fresh = TrainingQuality(extracted_ws, tmp_path / "new-model", 32, torch.device("cpu"))
    recorded = read_json(extracted_ws.side_dir("dst") / "holdout.json")
    assert fresh.never_trained_on["dst"] == sorted(recorded["frames"] + recorded["guard"])
