"""People, not just tracks: a destination of A, then B, then A again (hard cuts), targeted by a photo.

Real clips cut with real ffmpeg, real mediapipe and the real dlib descriptor; no part of ours mocked.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.errors import UserError
from engine.faces import identity
from engine.faces.records import read_alignments, target_track_ids
from engine.jobs import get_kind
from engine.report import NullReporter
from engine.workspace import Workspace
from tests.helpers import SAMPLES, cli, stop_engine
from tests.identity.conftest import person_of


def run_job(ws: Workspace, kind: str, params: dict) -> dict:
    job = get_kind(kind)
    return job.module.run(ws, job.parse_params(params), NullReporter())


def targeted(ws: Workspace, side: str = "dst") -> tuple[dict, list]:
    header, records = read_alignments(ws.alignments_path(side))
    return header, [r for r in records if r.track in target_track_ids(header)]


@pytest.fixture(scope="module")
def joined_ws(media, tmp_path_factory):
    ws = Workspace.create(tmp_path_factory.mktemp("joined") / "ws", SAMPLES / "src.mp4", media["joined"])
    ws.record_consent("tests")
    result = run_job(ws, "extract", {"side": "dst", "reference": str(media["photo_a"])})
    yield ws, result["sides"]["dst"]
    stop_engine(ws)


@pytest.mark.timeout(240)
def test_a_photo_of_a_targets_both_a_segments_and_none_of_b(joined_ws) -> None:
    ws, result = joined_ws
    header, records = read_alignments(ws.alignments_path("dst"))
    assert len(records) == 95 and result["faces"] == 95
    # The tracker keeps one track across a hard cut between two centred talking heads; identity
    # splits it at both cuts and links the two A pieces into one person.
    assert result["identity"]["splits"] == 2
    assert len(header["people"]) == 2 and len(header["tracks"]) == 3
    wanted = {r.frame for r in records if person_of(r.frame) == "A"}
    _, chosen = targeted(ws)
    assert {r.frame for r in chosen} == wanted  # both A segments, every frame; no frame of B
    assert len({r.person for r in records if person_of(r.frame) == "A"}) == 1
    assert {r.person for r in records if person_of(r.frame) == "B"} == {1 - header["target_person"]}
    assert result["reference"] == "a.jpg" and result["distance"] < identity.THRESHOLD
    for person in header["people"]:
        assert (ws.side_dir("dst") / person["thumb"]).is_file() and len(person["embedding"]) == 128
    # Sampled per track, not every frame: 95 faces cost far fewer embeddings.
    assert result["identity"]["embedded"] <= 20
    assert result["identity"]["ms_per_face"] > 0


@pytest.mark.timeout(240)
def test_choosing_again_by_frame_photo_or_number_needs_no_extraction(joined_ws, media) -> None:
    ws, _ = joined_ws
    started = time.monotonic()
    result = run_job(ws, "extract", {"side": "dst", "reference": "45"})["sides"]["dst"]  # a frame of B
    assert result["retargeted"] and "frame 45" in result["reference"]
    _, chosen = targeted(ws)
    assert {person_of(r.frame) for r in chosen} == {"B"} and len(chosen) == 30
    result = run_job(ws, "extract", {"side": "dst", "reference": str(media["photo_a"])})["sides"]["dst"]
    _, chosen = targeted(ws)
    assert {person_of(r.frame) for r in chosen} == {"A"} and len(chosen) == 65
    result = run_job(ws, "extract", {"side": "dst", "person": 1 - result["target_person"]})["sides"]["dst"]
    assert {person_of(r.frame) for r in targeted(ws)[1]} == {"B"}
    result = run_job(ws, "extract", {"side": "dst", "track": 0})["sides"]["dst"]  # track 0 is A's first
    assert {person_of(r.frame) for r in targeted(ws)[1]} == {"A"}
    assert time.monotonic() - started < 60


@pytest.mark.timeout(240)
def test_bad_references_get_one_sentence_and_a_hint(joined_ws, media) -> None:
    ws, _ = joined_ws
    cases = {"blank": "No face was found in the reference photo", "not_a_photo": "could not be read as an image",
             "others": "the nearest, person"}
    for name, words in cases.items():
        with pytest.raises(UserError) as caught:
            run_job(ws, "extract", {"side": "dst", "reference": str(media[name])})
        assert words in caught.value.message and caught.value.hint, (name, caught.value.message)
    with pytest.raises(UserError) as caught:
        run_job(ws, "extract", {"side": "dst", "reference": str(media["others"])})
    assert "the nearest, person" in caught.value.message and "distance" in caught.value.message
    with pytest.raises(UserError) as caught:
        run_job(ws, "extract", {"side": "dst", "reference": "/no/such/photo.jpg"})
    assert "There is no reference photo" in caught.value.message
    with pytest.raises(UserError) as caught:
        run_job(ws, "extract", {"side": "dst", "reference": "5000"})
    assert "Frame 5000 has no face" in caught.value.message
    with pytest.raises(UserError) as caught:
        run_job(ws, "extract", {"side": "both", "reference": str(media["photo_a"])})
    assert "needs one side" in caught.value.message
    with pytest.raises(UserError) as caught:
        run_job(ws, "extract", {"side": "dst", "person": 7})
    assert "no person 7" in caught.value.message


@pytest.mark.timeout(120)
def test_a_photo_without_a_face_fails_before_the_clip_is_extracted(media, tmp_path) -> None:
    ws = Workspace.create(tmp_path / "ws", SAMPLES / "src.mp4", media["joined"])
    started = time.monotonic()
    with pytest.raises(UserError):
        run_job(ws, "extract", {"side": "dst", "reference": str(media["blank"])})
    assert not ws.alignments_path("dst").exists() and time.monotonic() - started < 30


@pytest.mark.timeout(120)
def test_a_photo_with_several_faces_says_which_was_used(media) -> None:
    reference = identity.reference_from_photo(media["others"])
    assert reference.faces_in_photo >= 2 and "the largest of its" in reference.described


@pytest.mark.timeout(120)
def test_embeddings_tell_a_from_b_and_a_photo_matches_the_crops(joined_ws, media) -> None:
    ws, _ = joined_ws
    header, records = read_alignments(ws.alignments_path("dst"))
    sample = records[::8]
    vectors = identity.Embedder().embed_records(ws.side_dir("dst"), sample)
    photo = identity.reference_from_photo(media["photo_a"]).embedding
    same = np.array([person_of(r.frame) == "A" for r in sample])
    distances = identity.distance(vectors, photo)
    assert distances[same].max() < identity.THRESHOLD < distances[~same].min()


@pytest.mark.timeout(300)
def test_extract_reference_through_the_cli(media, tmp_path) -> None:
    ws = Workspace.create(tmp_path / "ws", SAMPLES / "src.mp4", media["joined"])
    ws.record_consent("tests")
    try:
        done = cli("extract", str(ws.root), "--side", "dst", "--reference", str(media["photo_a"]), timeout=280)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "target person" in done.stdout + done.stderr
        assert {person_of(r.frame) for r in targeted(ws)[1]} == {"A"}
        done = cli("extract", str(ws.root), "--side", "dst", "--reference", str(media["blank"]), timeout=120)
        assert done.returncode != 0 and "No face was found in the reference photo" in done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
    finally:
        stop_engine(ws)
