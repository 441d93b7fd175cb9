"""The data check finds bad alignments (issue 23): known bad crops planted into a real face set.

A workspace is extracted from the shipped samples (src: one talking head, 75 frames; dst: the
Hamilton clip with small faces, two people). Into src go, on every 4th frame from frame 3 (so that
each planted face has good neighbours): crops turned over, crops turned a quarter, crops shifted by
a fifth of their side, and faces of another person (the record and crop of a dst face: the track
hopped); ``engine.bench.alignment`` plants them and runs the same on longer clips. The check must
find the planted faces and leave the good ones alone; the figure it prints (found / planted, false
alarms / good faces) is the one in docs/alignment.md.
"""

from __future__ import annotations

import json

import cv2
import pytest

from engine.bench.alignment import plant, score
from engine.errors import UserError
from engine.faces.check import write_report
from engine.faces.extract import ExtractSettings, extract_side
from engine.faces.sort import sort_faces
from engine.report import NullReporter
from tests.helpers import SAMPLES, make_workspace
from tui.screens.check import side_line

#: At least this share of the planted faces must be found, and at most this share of good ones flagged.
MIN_FOUND, MAX_FALSE = 0.85, 0.05


@pytest.fixture(scope="module")
def planted_ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("alignment") / "ws", dst=SAMPLES / "hamilton.mp4")
    for side in ("src", "dst"):
        extract_side(ws, side, ExtractSettings(hands=False, small_faces=side == "dst"), NullReporter())
    return ws, plant(ws)


def test_check_finds_planted_bad_alignments_and_few_good_ones(planted_ws):
    ws, planted = planted_ws
    report = write_report(ws)
    figures = score(report, planted)
    print(figures["figure"])
    assert figures["found"] >= MIN_FOUND * len(planted), f"{figures['figure']}; missed " \
        f"{[(f, k) for f, k in planted.items() if f not in {x['file'] for x in report['sides']['src']['alignment']['faces']}]}"
    assert figures["false_alarms"] <= MAX_FALSE * figures["good_faces"], \
        f"{figures['figure']}: {figures['false_alarm_faces']}"
    warning = next(w for w in report["warnings"] if w.startswith("src:") and "look misaligned" in w)
    assert "check/alignment_src.png" in warning and "--by alignment" in warning
    assert f"{report['sides']['src']['alignment']['doubtful']} doubtful alignments" in side_line("src", report["sides"]["src"])
    sheet = cv2.imread(str(ws.root / "check" / "alignment_src.png"))
    assert sheet is not None and sheet.shape[0] > 128


def test_sort_by_alignment_puts_the_doubtful_faces_first(planted_ws):
    ws, planted = planted_ws
    result = sort_faces(ws, "src", "alignment")
    order = json.loads((ws.side_dir("src") / "sort.json").read_text())["order"]
    first = order[:result["doubtful"]]
    assert result["moved_to_trash"] == 0 and result["doubtful"] >= MIN_FOUND * len(planted)
    assert sum(1 for f in first if f in planted) >= MIN_FOUND * len(planted)
    with pytest.raises(UserError) as caught:
        sort_faces(ws, "src", "alignment", keep=10)
    assert "only puts the doubtful faces first" in caught.value.hint
