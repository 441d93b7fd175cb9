"""Hands found at extraction become occluders of the faces they cover (real footage: the Hamilton clip of
../shared/data, where a performer holds a microphone in front of his mouth)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from engine.faces.extract import ExtractSettings, extract_side
from engine.faces.records import face_mask, load_records
from engine.media.probe import ffmpeg_exe
from engine.report import NullReporter
from engine.segment.data import auto_label
from tests.helpers import SHARED_DATA, make_workspace

CLIP = SHARED_DATA / "short_hamilton_clip.mp4"


@pytest.mark.skipif(not CLIP.is_file(), reason="../shared/data is not here")
@pytest.mark.timeout(300)
def test_a_hand_in_front_of_the_mouth_is_recorded_and_cut_from_the_label(tmp_path):
    clip = tmp_path / "hamilton_100.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(CLIP), "-frames:v", "100", "-an",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", str(clip)], check=True, timeout=120)
    ws = make_workspace(tmp_path / "ws", src=None, dst=clip)
    result = extract_side(ws, "dst", ExtractSettings(size=128, crop_format="png"), NullReporter())
    hands = result["hands"]
    assert hands["checked"] >= 20 and hands["frames_with_hands"] >= 10 and hands["ms_per_check"] > 0
    assert result["faces_with_hands"] >= 10
    records = [r for r in load_records(ws, "dst") if r.occluders]
    assert len(records) == result["faces_with_hands"]
    covered = 0
    for record in records:
        for polygon in record.occluders:
            points = np.asarray(polygon)
            assert points.shape[1] == 2 and len(points) >= 3 and np.all(np.abs(points) <= 2 * record.size)
        outline, label = face_mask(record, 128), auto_label(record, 128)
        assert np.all(label <= outline)  # the hand only ever takes pixels out of the face
        covered += int((outline > 127).sum() - (label > 127).sum() > 20)
    assert covered >= 2  # some hands are over the face (others hold the microphone just below the chin)

    off = extract_side(make_workspace(tmp_path / "off", src=None, dst=clip),
                       "dst", ExtractSettings(size=128, crop_format="png", hands=False), NullReporter())
    assert off["hands"] is None and off["faces_with_hands"] == 0
