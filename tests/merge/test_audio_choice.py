"""Which sound the result gets: the destination's, a chosen file, or none."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_audio_from_workspace_toml_stays_inside_or_is_the_users_own(workspace, tmp_path):
    """workspace.toml may come from someone else (an unpacked archive): a relative [merge] audio is read
    inside the workspace, links followed; an absolute one only if this user owns the file."""
    info = probe(workspace.source("dst"))
    outside = tmp_path / "elsewhere.m4a"
    outside.write_bytes((SAMPLES / "src.mp4").read_bytes())
    for escaping in ("../elsewhere.m4a", "sub/../../elsewhere.m4a"):
        with pytest.raises(UserError, match="outside its folder") as refused:
            audio_source(workspace, MergeSettings(audio=escaping), info)
        assert refused.value.hint
    (workspace.root / "linked.m4a").symlink_to(outside)
    with pytest.raises(UserError, match="leads outside its folder"):
        audio_source(workspace, MergeSettings(audio="linked.m4a"), info)
    assert audio_source(workspace, MergeSettings(audio=str(outside)), info) == outside  # this user's own file
    other_uid = 65534 if os.getuid() == 0 else None
    if other_uid is not None:
        os.chown(outside, other_uid, -1)
    theirs = outside if other_uid is not None else Path("/etc/hostname")
    with pytest.raises(UserError, match="belongs to another user") as refused:
        audio_source(workspace, MergeSettings(audio=str(theirs)), info)
    assert "Copy the audio file into the workspace" in refused.value.hint
