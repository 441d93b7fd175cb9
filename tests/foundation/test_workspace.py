"""Workspaces: creation from the template, sources, settings that keep comments, atomic step state."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.errors import UserError
from engine.workspace import STEPS, Workspace, update_toml_section
from tests.helpers import SAMPLES


def test_create_copies_template_and_sources(tmp_path):
    ws = Workspace.create(tmp_path / "my ws é", src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
    for name in ("workspace.toml", "README.md", "data_src", "data_dst", "model", "output"):
        assert (ws.root / name).exists(), name
    assert ws.source("src") == ws.root / "data_src.mp4"
    assert ws.source("dst").read_bytes() == (SAMPLES / "dst.mp4").read_bytes()
    assert oct(ws.state_dir.stat().st_mode & 0o777) == "0o700"
    assert ws.first_unfinished_step() == STEPS[0]


def test_image_folder_source(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8fake")
    (folder / "notes.txt").write_text("not an image")
    ws = Workspace.create(tmp_path / "ws", src=folder)
    assert ws.source("src") == ws.side_dir("src")
    assert (ws.side_dir("src") / "a.jpg").exists()
    assert not (ws.side_dir("src") / "notes.txt").exists()


@pytest.mark.parametrize("make, fragment", [
    (lambda t: t / "missing.mp4", "does not exist"),
    (lambda t: (t / "x.txt").write_text("x") and t / "x.txt", "not a video"),
    (lambda t: (t / "empty").mkdir() or t / "empty", "holds no images"),
])
def test_bad_sources_are_refused_before_anything_is_written(tmp_path, make, fragment):
    with pytest.raises(UserError, match=fragment):
        Workspace.create(tmp_path / "ws", src=make(tmp_path))
    assert not (tmp_path / "ws").exists()


def test_create_never_reuses_a_folder(tmp_path):
    Workspace.create(tmp_path / "ws")
    with pytest.raises(UserError, match="already exists"):
        Workspace.create(tmp_path / "ws")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep")
    with pytest.raises(UserError, match="not empty"):
        Workspace.create(tmp_path / "other")
    assert (tmp_path / "other" / "precious.txt").read_text() == "keep"


def test_workspace_is_movable(tmp_path):
    ws = Workspace.create(tmp_path / "a", src=SAMPLES / "src.mp4")
    ws.set_step("extract_src", "done", params={"size": 512})
    os.rename(tmp_path / "a", tmp_path / "b")
    moved = Workspace.open(tmp_path / "b")
    assert moved.source("src") == moved.root / "data_src.mp4"
    assert moved.steps()["extract_src"]["status"] == "done"
    assert str(tmp_path / "a") not in moved.config_path.read_text()


def test_settings_update_keeps_comments():
    text = "# top\n[merge]\n# how faces blend\nmode = \"overlay\"\n\n[train]\npreset = \"tiny\"\n"
    updated = update_toml_section(text, "merge", {"mode": "seamless", "erode": 5})
    assert "# how faces blend" in updated and "# top" in updated
    assert 'mode = "seamless"' in updated and "erode = 5" in updated
    assert updated.index("erode") < updated.index("[train]")
    assert 'preset = "tiny"' in updated
    assert "[extract]" in update_toml_section(updated, "extract", {"size": 256})


def test_settings_round_trip(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.update_settings("merge", {"mode": "seamless", "blur": 12.5})
    merge = ws.section("merge")
    assert merge["mode"] == "seamless" and merge["blur"] == 12.5
    ws.record_consent("tester")
    assert ws.consent_confirmed()
    assert ws.section("consent")["confirmed_by"] == "tester"


def test_state_survives_a_crash_mid_write(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.set_step("extract_src", "done", params={"size": 512})
    # A process killed in the middle of writing the state: the old state must remain readable.
    script = (
        "import os, sys\n"
        "from engine.workspace import Workspace\n"
        "import engine.atomic as atomic\n"
        "real_replace = os.replace\n"
        "def crash(*args):\n"
        "    os._exit(9)\n"
        "atomic.os.replace = crash\n"
        f"Workspace({str(ws.root)!r}).set_step('extract_dst', 'running')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd())
    assert result.returncode == 9
    steps = Workspace.open(ws.root).steps()
    assert steps["extract_src"]["status"] == "done"
    assert steps["extract_dst"]["status"] == "todo"


def test_state_write_on_read_only_disk_raises_cleanly(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits")
    ws = Workspace.create(tmp_path / "ws")
    os.chmod(ws.state_dir, 0o500)
    try:
        with pytest.raises(OSError):
            ws.set_step("check", "done")
    finally:
        os.chmod(ws.state_dir, 0o700)
    assert ws.steps()["check"]["status"] == "todo"
