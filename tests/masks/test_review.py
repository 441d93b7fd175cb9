"""The mask review's marks change the result: an accepted mask becomes a painted label (it outranks the
segmenter's, in merging and in training the segmenter), a rejected face's segmenter mask is used nowhere
and its label is not taught, the rejected faces export for painting; the merge's resume fingerprint
follows the masks; a bad ``masks import`` folder is a usage error (exit 2). A real engine, a real quick
segmenter on the sample destination, the real CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine.client import EngineClient
from engine.merge.render import _fingerprint
from engine.merge.settings import MergeSettings
from engine.segment import review, store
from engine.segment.data import load_faces, side_records
from engine.segment.exchange import worst_first
from engine.segment.trainer import labels_fingerprint
from tests.helpers import cli, run_job, stop_engine
from tests.masks.conftest import segmented_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = segmented_workspace(tmp_path_factory.mktemp("review") / "review ws")
    try:
        yield ws
    finally:
        stop_engine(ws)


@pytest.fixture(autouse=True)
def no_marks(ws):
    """Each test starts without marks or painted labels."""
    side_dir = ws.side_dir("dst")
    for path in (side_dir / store.MARKS,):
        path.unlink(missing_ok=True)
    for path in (side_dir / store.USER).glob("*.png") if (side_dir / store.USER).is_dir() else []:
        path.unlink()
    yield


def test_the_review_lists_the_faces_in_the_one_worst_first_order(ws):
    faces = review.faces(ws, "dst")
    records = side_records(ws, "dst")
    assert len(faces) == len(records) >= 70
    doubts = [face["doubt"] for face in faces]
    assert doubts == sorted(doubts, reverse=True) and doubts[0] > doubts[-1]
    # the same order as masks export --worst and the segment job's review sheet
    ordered = [store.stem(r.file) for r in worst_first(ws.side_dir("dst"), records)]
    assert [f["name"] for f in faces][:10] == ordered[:10]
    assert faces[0]["frame"] == next(r.frame for r in records if store.stem(r.file) == faces[0]["name"])
    picture = review.overlay(ws, "dst", faces[0])
    crop = cv2.imread(str(ws.side_dir("dst") / faces[0]["file"]))
    drawn = cv2.imread(str(picture))
    assert drawn.shape[0] == crop.shape[0] and drawn.shape[1] > 2 * crop.shape[1]
    assert np.array_equal(drawn[:, :crop.shape[1]], crop)  # the crop as it is, then the crop with its mask over it
    assert not np.array_equal(drawn[:, -crop.shape[1]:], crop)


def test_accept_makes_the_mask_a_painted_label_that_outranks_and_clear_takes_it_back(ws):
    side_dir = ws.side_dir("dst")
    face = review.faces(ws, "dst")[0]
    crop_file, name = face["file"], face["name"]
    before = labels_fingerprint(ws, ["dst"])
    review.set_mark(ws, "dst", name, "accept")
    painted = side_dir / store.USER / f"{name}.png"
    assert painted.read_bytes() == (side_dir / store.MASKS / f"{name}.png").read_bytes()
    assert store.mask_for(side_dir, crop_file) == painted  # merge and the face model's training use it
    assert labels_fingerprint(ws, ["dst"]) != before  # the next segment job retrains
    faces = load_faces(ws, ["dst"], 64)
    assert faces.painted[[f for _, f in faces.files].index(crop_file)]  # taught as a painted label
    assert json.loads((side_dir / store.MARKS).read_text())["faces"][name]["mark"] == "accept"
    review.set_mark(ws, "dst", name, None)
    assert not painted.exists() and store.mask_for(side_dir, crop_file) == side_dir / store.MASKS / f"{name}.png"
    assert review.faces(ws, "dst")[0]["mark"] is None

    # a label painted in an image editor is the user's: accept keeps it, clear leaves it
    mine = np.zeros((128, 128), np.uint8)
    mine[20:100, 30:90] = 255
    painted.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(painted), mine)
    review.set_mark(ws, "dst", name, "accept")
    review.set_mark(ws, "dst", name, None)
    assert np.array_equal(cv2.imread(str(painted), cv2.IMREAD_GRAYSCALE), mine)


def test_reject_leaves_the_face_out_everywhere_and_exports_it_to_paint(ws, tmp_path):
    side_dir = ws.side_dir("dst")
    first, second = review.faces(ws, "dst")[:2]
    before = labels_fingerprint(ws, ["dst"])
    review.set_mark(ws, "dst", first["name"], "reject")
    review.set_mark(ws, "dst", second["name"], "accept")
    assert store.mask_for(side_dir, first["file"]) is None  # merging and training fall back to the hull
    assert labels_fingerprint(ws, ["dst"]) != before
    taught = [f for _, f in load_faces(ws, ["dst"], 64).files]
    assert first["file"] not in taught and second["file"] in taught
    assert review.counts(review.faces(ws, "dst"))["rejected"] == 1

    folder = tmp_path / "to paint"
    end, _ = run_job(ws, "masks_export", {"side": "dst", "folder": str(folder), "marked": "rejected"})
    assert end.TYPE == "job_finished", end
    assert sorted(p.name for p in folder.glob("*.png")) == sorted([f"{first['name']}.png", f"{first['name']}_mask.png"])
    result = cli("masks", "export", str(ws.root), "--marked", "everything")
    assert result.returncode == 2 and "--marked everything is not one of" in result.stderr

    # painting it and importing it settles the rejection: the painted label decides
    mask = cv2.imread(str(folder / f"{first['name']}_mask.png"), cv2.IMREAD_GRAYSCALE)
    mask[:40] = 0
    cv2.imwrite(str(folder / f"{first['name']}_mask.png"), mask)
    result = cli("masks", "import", str(ws.root), str(folder), "--side", "dst", "--no-retrain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert store.mask_for(side_dir, first["file"]) == side_dir / store.USER / f"{first['name']}.png"
    assert first["name"] not in store.marks(side_dir)


def test_a_merge_resumes_only_with_the_masks_it_started_with(ws):
    dst = ws.source("dst")
    segment, hull = MergeSettings(mask="hull*segment"), MergeSettings(mask="hull")

    def prints():
        return _fingerprint(ws, segment, "default", None, dst, 250), _fingerprint(ws, hull, "default", None, dst, 250)

    with_segment, with_hull = prints()
    assert prints() == (with_segment, with_hull)  # nothing changed: an interrupted merge resumes
    name = review.faces(ws, "dst")[0]["name"]
    review.set_mark(ws, "dst", name, "reject")
    rejected = prints()
    assert rejected[0] != with_segment and rejected[1] == with_hull
    review.set_mark(ws, "dst", name, None)
    end, _ = run_job(ws, "segment", {"side": "dst", "iters": 70}, timeout=300)  # re-segmented: new weights
    assert end.TYPE == "job_finished" and end.result["train"]["trained"] == 10, end
    again = prints()
    assert again[0] != with_segment and again[1] == with_hull


def test_a_bad_import_folder_is_a_usage_error_and_queues_nothing(ws, tmp_path):
    face = review.faces(ws, "dst")[0]
    with EngineClient(ws) as client:
        seq = client.status()["last_seq"]

    def refused(folder, *words) -> None:
        result = cli("masks", "import", str(ws.root), str(folder), "--side", "dst", "--no-retrain")
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "hint:" in result.stderr
        for word in words:
            assert word in result.stderr.replace("\n", " "), result.stderr
        assert not list((ws.side_dir("dst") / store.USER).glob("*.png")), "a bad folder imported something"

    refused(tmp_path / "nowhere", "There is no folder")
    small = tmp_path / "small"
    small.mkdir()
    cv2.imwrite(str(small / f"{face['name']}_mask.png"), np.zeros((64, 64), np.uint8))
    refused(small, "is 64 x 64 pixels, but its face crop is 128 x 128")
    colour = tmp_path / "colour"
    colour.mkdir()
    cv2.imwrite(str(colour / f"{face['name']}_mask.png"), np.dstack([np.zeros((128, 128), np.uint8)] * 2
                                                                    + [np.full((128, 128), 200, np.uint8)]))
    refused(colour, "is not greyscale")
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    cv2.imwrite(str(stranger / "stranger_mask.png"), np.zeros((128, 128), np.uint8))
    refused(stranger, "match no dst face: stranger_mask.png", "nothing was imported")
    with EngineClient(ws) as client:
        assert client.status()["last_seq"] == seq  # no job was queued
