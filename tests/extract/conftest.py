"""Fixtures for extraction tests: one extracted sample workspace shared by a module, media makers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.faces.extract import ExtractSettings, extract_side
from engine.media.probe import ffmpeg_exe
from engine.report import NullReporter
from tests.helpers import make_workspace


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A workspace with both sample sides extracted once (75 frames each)."""
    ws = make_workspace(tmp_path_factory.mktemp("extracted") / "w s")
    results = {side: extract_side(ws, side, ExtractSettings(), NullReporter()) for side in ("src", "dst")}
    return ws, results


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60)


def cut(src: Path, out: Path, frames: int, *extra: str) -> Path:
    """The first ``frames`` frames of ``src`` re-encoded, with extra ffmpeg output options."""
    ffmpeg("-i", str(src), "-frames:v", str(frames), "-an", *extra, "-c:v", "libx264", "-preset", "ultrafast",
           str(out))
    return out
