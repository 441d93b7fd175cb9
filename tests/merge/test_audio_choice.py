"""Which sound the result gets: the destination's, a chosen file, or none."""

from __future__ import annotations

import pytest

from engine.errors import UserError
from engine.media.probe import probe
from engine.merge.render import audio_source
from engine.merge.settings import MergeSettings
from tests.helpers import SAMPLES


def test_destination_chosen_file_or_none(workspace, tmp_path):
    info = probe(workspace.source("dst"))
    assert audio_source(workspace, MergeSettings(), info) == workspace.source("dst")
    assert audio_source(workspace, MergeSettings(audio="none"), info) is None
    chosen = audio_source(workspace, MergeSettings(audio=str(SAMPLES / "hamilton.mp4")), info)
    assert chosen == SAMPLES / "hamilton.mp4"
    (workspace.root / "voice.m4a").write_bytes((SAMPLES / "src.mp4").read_bytes())
    assert audio_source(workspace, MergeSettings(audio="voice.m4a"), info) == workspace.root / "voice.m4a"
    with pytest.raises(UserError):
        audio_source(workspace, MergeSettings(audio="missing.wav"), info)


def test_a_silent_destination_gives_a_silent_result(workspace):
    info = probe(workspace.source("dst"))
    info.audio = []
    assert audio_source(workspace, MergeSettings(), info) is None
