"""The records an extraction appends as it runs (``partial.jsonl``): one reader for the single run and
the workers' segments. A crash mid-append tears only the last line (dropped: the run resumes before it);
a bad line that whole lines follow is damage, and the part it belongs to is extracted again, never
joined with frames missing."""

from __future__ import annotations

import json

import pytest

from engine.atomic import atomic_write_json
from engine.faces.records import DamagedRecords, read_partial
from engine.faces.workers import _finished
from engine.report import CallbackReporter
from tests.extract.test_align import make_record


def write_partial(path, frames, tail=b""):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(make_record(f, f"aligned/{f:06d}_0.jpg").to_json()).encode() + b"\n" for f in frames]
    path.write_bytes(b"".join(lines) + tail)
    return lines


def test_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "partial.jsonl"
    lines = write_partial(path, range(3))
    path.write_bytes(b"".join(lines) + lines[0][:40])  # a crash mid-append
    assert [r.frame for r in read_partial(path)] == [0, 1, 2]
    assert read_partial(tmp_path / "missing.jsonl") == []


def test_a_damaged_middle_line_is_refused_not_skipped(tmp_path):
    path = tmp_path / "partial.jsonl"
    lines = write_partial(path, range(4))
    path.write_bytes(lines[0] + lines[1][:30] + b"\xff\n" + lines[2] + lines[3])
    with pytest.raises(DamagedRecords, match="damaged at line 2") as caught:
        read_partial(path)
    assert caught.value.hint


def test_a_finished_segment_with_damaged_records_is_extracted_again(tmp_path):
    logs = []
    report = CallbackReporter(logs.append)
    for i in range(2):
        lines = write_partial(tmp_path / f"seg-{i:02d}" / "partial.jsonl", range(i * 10, i * 10 + 3))
        atomic_write_json(tmp_path / f"seg-{i:02d}" / "done.json", {"index": i})
    torn = tmp_path / "seg-00" / "partial.jsonl"
    torn.write_bytes(torn.read_bytes() + lines[0][:25])
    damaged = tmp_path / "seg-01" / "partial.jsonl"
    damaged.write_bytes(lines[0] + b"{not json\n" + lines[1])
    assert _finished(tmp_path, 0, report)  # a torn last line: the segment stands
    assert not _finished(tmp_path, 1, report)  # damaged: redone from its start
    assert not (tmp_path / "seg-01").exists() and (tmp_path / "seg-00" / "done.json").is_file()
    assert any("segment 2" in e.get("message", "") and "extracted again" in e["message"] for e in logs)
    assert not _finished(tmp_path, 2, report)  # never started
