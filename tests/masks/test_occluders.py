"""Occluders stay in front: a microphone composited over the sample destination's mouth (real ffmpeg),
extraction, the segmenter trained with automatic labels only, a tiny face model, and merges through a
real engine. With ``--mask hull*segment`` most of the microphone is kept in every occluded frame and all of
it, within codec tolerance, in the typical one, while the face around it changes; with ``--mask hull`` the
face is pasted over it (the check can fail).

Small sizes to stay fast: 128-pixel crops, a 64-pixel segmenter, a tiny face model for a few iterations.
The IoU target (0.9 at the defaults) is measured by ``swapwizard bench segment``, not here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from engine.faces.records import load_header, load_records, target_track_ids
from engine.media.decode import iter_frames
from engine.segment import store
from tests.helpers import SAMPLES, cli, make_workspace, run_job, stop_engine
from tests.masks.conftest import OCCLUDED, occluder_at

# The face model at 128 px (not the tiny preset's 64): at 64 one crop pixel is 8 pixels of this frame, too
# coarse a mask for a microphone's edge.
TINY_TRAIN = {"resolution": 128, "ae_dims": 32, "e_dims": 8, "d_dims": 8, "d_mask_dims": 4, "batch_size": 4, "threads": 1,
              "warmup_iters": 2, "preview_every_min": 60.0, "save_every_min": 60.0}
SEGMENT = {"resolution": 64, "iters": 700, "threads": 1}
#: Every frame with the microphone over the face.
CHECKED = tuple(OCCLUDED)


@pytest.fixture(scope="module")
def occ_ws(tmp_path_factory, occluded_video):
    ws = make_workspace(tmp_path_factory.mktemp("masks") / "masks ws", src=SAMPLES / "src.mp4", dst=occluded_video)
    ws.record_consent("tests")
    ws.update_settings("extract", {"size": 128, "crop_format": "png"})
    ws.update_settings("train", TINY_TRAIN)
    ws.update_settings("segment", SEGMENT)
    try:
        end, _ = run_job(ws, "extract", {"side": "both"}, timeout=300)
        assert end.TYPE == "job_finished", end
        yield ws
    finally:
        stop_engine(ws)


def test_run_trains_the_segmenter_when_the_mask_needs_it(occ_ws):
    from engine.jobs.pipeline import Params, plan

    assert [(kind, p.get("auto")) for kind, _, p in plan(occ_ws, Params()) if kind == "segment"] == [("segment", True)]
    occ_ws.update_settings("merge", {"mask": "hull"})
    assert "segment" not in [kind for kind, _, _ in plan(occ_ws, Params())]
    occ_ws.update_settings("merge", {"mask": "hull*segment"})
    try:
        assert [kind for kind, _, _ in plan(occ_ws, Params())] == ["check", "segment", "train", "merge"]
    finally:
        occ_ws.update_settings("merge", {"mask": "hull"})


@pytest.fixture(scope="module")
def segmented(occ_ws):
    end, events = run_job(occ_ws, "segment", {}, timeout=600)
    assert end.TYPE == "job_finished", end
    assert any(e.TYPE == "progress" and e.stage == "segment_train" for e in events)
    return end.result


def _merged(ws, mask: str) -> dict[int, np.ndarray]:
    end, _ = run_job(ws, "merge", {"mask": mask, "colour": "none", "blur": 4, "crf": 12, "c2pa": False, "restart": True},
                     timeout=300)
    assert end.TYPE == "job_finished", end
    return {i: f for i, _, f in iter_frames(ws.output_dir / "result.mp4") if i in CHECKED}


def _regions(ws, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the microphone's core over the face, the face around it, the microphone's core far below the face
    where no merge touches it: the codec's own error on its texture) in frame ``index``."""
    targets = target_track_ids(load_header(ws, "dst"))
    record = next(r for r in load_records(ws, "dst") if r.frame == index and r.track in targets)
    alpha = occluder_at(index, (512, 512))
    # 20 px in from its edge: 5 pixels of the 128-pixel model crop, where the merge blurs the mask edge
    core = cv2.erode((alpha > 0.99).astype(np.uint8), np.ones((41, 41), np.uint8)) > 0
    face = np.zeros((512, 512), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(record.landmarks.astype(np.int32)), 1)
    face = cv2.erode(face, np.ones((31, 31), np.uint8)) > 0
    around = face & ~(cv2.dilate((alpha > 0.01).astype(np.uint8), np.ones((41, 41), np.uint8)) > 0)
    hull = np.zeros((512, 512), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(record.landmarks.astype(np.int32)), 1)
    untouched = core & ~(cv2.dilate(hull, np.ones((61, 61), np.uint8)) > 0)
    # the microphone's core over the face (its handle runs down out of it)
    return core & (cv2.dilate(face.astype(np.uint8), np.ones((31, 31), np.uint8)) > 0), around, untouched


@pytest.mark.timeout(900)
def test_hull_times_segment_keeps_the_microphone_in_front(occ_ws, segmented, occluded_video):
    ws = occ_ws
    assert segmented["train"]["iteration"] == SEGMENT["iters"]
    assert segmented["masks"]["dst"]["faces"] >= 70
    # The segmenter finds the microphone in the occluded frames, learnt without a single painted label.
    assert segmented["masks"]["dst"]["occluded"] >= len(OCCLUDED) // 2
    end, _ = run_job(ws, "train", {"preset": "tiny", "iters": 6}, timeout=300)
    assert end.TYPE == "job_finished", end
    original = {i: f.astype(int) for i, _, f in iter_frames(occluded_video) if i in CHECKED}
    kept = _merged(ws, "hull*segment")
    painted_over = _merged(ws, "hull")
    beyond_codec, figures = [], {}
    for index in CHECKED:
        core, around, untouched = _regions(ws, index)
        assert core.sum() > 500 and around.sum() > 2000 and untouched.sum() > 100, \
            (index, core.sum(), around.sum(), untouched.sum())
        with_segment = np.abs(kept[index].astype(int) - original[index])
        with_hull = np.abs(painted_over[index].astype(int) - original[index])
        codec = with_segment[untouched].mean()  # re-encoding alone changes the microphone's fine mesh this much
        assert codec < 6.0
        changed, hull_changed = with_segment[core].mean(), with_hull[core].mean()
        figures[index] = (round(changed, 1), round(codec, 1), round(hull_changed, 1))
        beyond_codec.append(changed - codec)
        # Every frame: the segmenter keeps most of the microphone, where the hull pastes the face over all
        # of it (the same check fails without the segmenter) ...
        assert changed < hull_changed / 3 and hull_changed > 8.0, f"frame {index}: {figures[index]}"
        assert with_segment[around].mean() > 6.0, f"frame {index}: the face changed by only {with_segment[around].mean():.1f}"
    # ... and in the typical frame all of it, within the codec's own error. (A few frames may lose an
    # edge of it: 700 iterations of a 64-pixel segmenter on automatic labels; which frames depends on the
    # machine's arithmetic. Seen: frames 20-22, where the microphone first appears, off by 8-12 on one
    # machine, the rest within 0-3 of the codec.)
    assert np.median(beyond_codec) < 1.5, figures


def test_check_counts_the_occluded_destination_faces(occ_ws, segmented):
    end, _ = run_job(occ_ws, "check", {}, timeout=300)
    assert end.TYPE == "job_finished", end
    assert end.result["dst_occluded"] >= len(OCCLUDED) // 2
    # the segment job's review sheet: the faces it doubts most first, mask over them
    assert (occ_ws.root / segmented["masks"]["dst"]["review"]).is_file()
    report = json.loads((occ_ws.root / "check" / "report.json").read_text())
    assert report["sides"]["dst"]["occluders"]["masked_faces"] >= 70
    assert report["sides"]["src"]["occluders"]["occluded_by_mask"] < 10
    result = cli("check", str(occ_ws.root), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "occluders: a hand near 0 faces; the segmenter's masks show an occluder on" in result.stdout


@pytest.mark.timeout(600)
def test_painted_masks_are_checked_then_outrank_and_retrain(occ_ws, segmented, tmp_path):
    ws = occ_ws
    end, _ = run_job(ws, "masks_export", {"side": "dst", "folder": str(tmp_path / "out"), "worst": 4})
    assert end.TYPE == "job_finished", end
    pairs = sorted((tmp_path / "out").glob("*_mask.png"))
    assert len(pairs) == 4 and all(p.with_name(p.name.replace("_mask", "")).is_file() for p in pairs)
    first = pairs[0]
    mask = cv2.imread(str(first), cv2.IMREAD_UNCHANGED)
    assert mask.ndim == 2 and mask.shape == (128, 128)

    def broken(name: str, change) -> None:
        folder = tmp_path / name
        shutil.copytree(tmp_path / "out", folder)
        change(folder)
        result = cli("masks", "import", str(ws.root), str(folder), "--side", "dst", "--no-retrain")
        assert result.returncode == 2, result.stdout + result.stderr  # the user's input: refused before any job
        assert "Traceback" not in result.stderr
        assert not (ws.side_dir("dst") / store.USER).exists(), "a bad folder imported something"
        return result.stderr

    text = broken("small", lambda f: cv2.imwrite(str(f / first.name), cv2.resize(mask, (64, 64))))
    assert "is 64 x 64 pixels, but its face crop is 128 x 128" in text and "hint:" in text
    colour = np.dstack([mask, mask // 2, mask])
    text = broken("colour", lambda f: cv2.imwrite(str(f / first.name), colour))
    assert "is not greyscale" in text
    text = broken("stranger", lambda f: cv2.imwrite(str(f / "stranger_mask.png"), mask))
    assert "match no dst face: stranger_mask.png" in text and "nothing was imported" in text

    painted = mask.copy()
    painted[: painted.shape[0] // 2] = 0  # the upper half is "not face"
    cv2.imwrite(str(first), painted)
    result = cli("masks", "import", str(ws.root), str(tmp_path / "out"), "--side", "dst", "--no-retrain")
    assert result.returncode == 0, result.stdout + result.stderr
    user = ws.side_dir("dst") / store.USER
    assert sorted(p.name for p in user.glob("*.png")) == sorted(p.name.replace("_mask", "") for p in pairs)
    name = first.name.replace("_mask", "")
    assert store.mask_for(ws.side_dir("dst"), f"aligned/{name}") == user / name  # painted outranks
    end, _ = run_job(ws, "segment", {"side": "dst", "iters": 20}, timeout=300)
    assert end.TYPE == "job_finished", end
    assert end.result["train"]["trained"] > 0 and end.result["train"]["painted"] == 4


def test_a_segmenter_moves_between_workspaces_as_safetensors_and_json(occ_ws, segmented, tmp_path):
    ws = occ_ws
    folder = tmp_path / "exported"
    end, _ = run_job(ws, "segment", {"side": "dst", "train": False, "apply": False, "export_to": str(folder)})
    assert end.TYPE == "job_finished", end
    assert sorted(p.name for p in folder.iterdir()) == sorted([store.WEIGHTS, store.CONFIG])
    assert json.loads((folder / store.CONFIG).read_text())["format"] == "swapwizard-segmenter"
    # Through the CLI, a relative folder is where the user stands, not in the workspace (where the engine runs).
    here = tmp_path / "here"
    here.mkdir()
    typed = subprocess.run([sys.executable, "-c", "from tui.cli import main; main()", "segment", str(ws.root), "--side",
                            "dst", "--no-train", "--export", "mine"], cwd=here, capture_output=True, text=True, timeout=300)
    assert typed.returncode == 0, typed.stderr
    assert (here / "mine" / store.WEIGHTS).is_file() and not (ws.root / "mine").exists()

    def refused(change) -> str:
        copy = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(folder, copy)
        change(copy)
        end, _ = run_job(ws, "segment", {"side": "dst", "train": False, "import_from": str(copy)})
        assert end.TYPE == "job_failed", end
        return end.error

    described = json.loads((folder / store.CONFIG).read_text())
    assert "does not hold the network" in refused(
        lambda c: (c / store.CONFIG).write_text(json.dumps({**described, "width": described["width"] + 2})))
    assert "not a readable safetensors file" in refused(lambda c: (c / store.WEIGHTS).write_bytes(b"\x80\x04K\x01."))
    assert "not a swapwizard segmenter" in refused(lambda c: (c / store.CONFIG).write_text("[1, 2]"))
    other = make_workspace(tmp_path / "other ws", src=None, dst=SAMPLES / "dst.mp4")
    other.update_settings("extract", {"size": 128, "crop_format": "png"})
    try:
        end, _ = run_job(other, "extract", {"side": "dst"}, timeout=300)
        assert end.TYPE == "job_finished", end
        end, _ = run_job(other, "segment", {"side": "dst", "train": False, "import_from": str(folder)}, timeout=300)
        assert end.TYPE == "job_finished", end
        assert end.result["masks"]["dst"]["faces"] >= 70 and store.has_masks(other, "dst")
    finally:
        stop_engine(other)


def test_segment_before_extraction_is_one_sentence(tmp_path):
    ws = make_workspace(tmp_path / "bare")
    result = cli("segment", str(ws.root), "--side", "dst")
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "have been extracted yet, so there is nothing to segment" in result.stderr
        assert "hint: Run: swapwizard extract" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        stop_engine(ws)
