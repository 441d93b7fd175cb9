"""A re-extraction (other settings, or --force) keeps the side's faces usable until it is complete: its
crops, thumbnails and records wait in ``data_<side>/.extract/new/`` and replace the old ones at the end,
the records last; one stopped while moving in is finished by the next extraction."""

from __future__ import annotations

import json
import shutil

import cv2
import pytest

from engine.atomic import atomic_write_json
from engine.errors import JobCancelled
from engine.faces.extract import NEW, ExtractSettings, _swap_in, extract_side
from engine.faces.records import present_faces, read_alignments, write_alignments
from engine.report import CallbackReporter, NullReporter
from tests.extract.test_align import make_record
from tests.helpers import make_workspace


def test_a_cancelled_re_extraction_leaves_the_old_faces_then_resumes_and_replaces_them(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    extract_side(ws, "src", ExtractSettings(size=256), NullReporter())
    side = ws.side_dir("src")
    header, records = read_alignments(ws.alignments_path("src"))
    crops = {r.file: (side / r.file).read_bytes() for r in records}
    seen: list[dict] = []
    cancel_early = CallbackReporter(seen.append, cancel=lambda: any(e["type"] == "progress" for e in seen))
    with pytest.raises(JobCancelled):
        extract_side(ws, "src", ExtractSettings(size=128), cancel_early)
    # The old faces are still there and usable: the same records, every crop as it was.
    again, kept = read_alignments(ws.alignments_path("src"))
    assert again == header and [r.to_json() for r in kept] == [r.to_json() for r in records]
    assert {r.file: (side / r.file).read_bytes() for r in kept} == crops
    assert len(present_faces(ws, "src")) == sum(1 for r in records if r.track in set(header["target_tracks"]))
    assert (side / ".extract" / NEW / "aligned").is_dir()
    # Run again, it resumes the new extraction and only then replaces the old faces.
    extract_side(ws, "src", ExtractSettings(size=128), NullReporter())
    header2, records2 = read_alignments(ws.alignments_path("src"))
    assert header2["size"] == 128 and records2 and not (side / ".extract").exists()
    assert sorted(p.name for p in (side / "aligned").iterdir()) == sorted(r.file.split("/")[1] for r in records2)
    assert cv2.imread(str(side / records2[0].file)).shape == (128, 128, 3)
    assert all((side / t["thumb"]).is_file() for t in header2["tracks"] + header2["people"])


def test_a_swap_stopped_half_way_is_finished_by_the_next_extraction(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    side = ws.side_dir("src")
    new = side / ".extract" / NEW
    for folder, names in ((side, ("old",)), (new, ("new",))):
        (folder / "aligned").mkdir(parents=True)
        (folder / "tracks").mkdir()
        for name in names:
            (folder / "aligned" / f"{name}.jpg").write_bytes(b"jpeg")
            (folder / "tracks" / "track_0.jpg").write_bytes(name.encode())
    write_alignments(ws.alignments_path("src"), {"size": 128}, [make_record(0, "aligned/old.jpg")])
    (side / "sort.json").write_text("{}")  # made from the old crops
    write_alignments(new / "alignments.jsonl", {"size": 128, "complete": True}, [make_record(0, "aligned/new.jpg")])
    # Stopped after the old records went and the new crops moved in, before the rest.
    atomic_write_json(new / "swap.json", {"move": ["aligned", "tracks"]})
    ws.alignments_path("src").unlink()
    shutil.rmtree(side / "aligned")
    (new / "aligned").rename(side / "aligned")
    _swap_in(side)
    _, records = read_alignments(ws.alignments_path("src"))
    assert [r.file for r in records] == ["aligned/new.jpg"]
    assert [p.name for p in (side / "aligned").iterdir()] == ["new.jpg"]
    assert (side / "tracks" / "track_0.jpg").read_bytes() == b"new"
    assert not (side / "sort.json").exists() and not (side / ".extract").exists()
    assert json.loads(ws.alignments_path("src").read_text().splitlines()[0])["kind"] == "header"
