"""How the wizard chooses to draw pictures (kitty, sixel or blocks), and what it tells a tmux user.

The decision is tested on what a terminal and tmux answer (``choose``); the real tmux test runs the
wizard in a tmux 3.3+ pane and reads what it writes there (``pipe-pane``: the bytes before tmux)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid

import pytest

from engine.errors import UserError
from tests.helpers import REPO, make_workspace, stop_engine
from tests.tui.test_terminal_images import gradient_faces
from tui.graphics import choose, requested_mode, tmux_wrap
from tui.widgets.picture import fit_cells


def test_the_environment_wins_over_the_workspace_setting_and_bad_values_are_refused():
    assert requested_mode({"SWAPWIZARD_IMAGES": "Sixel"}, "kitty") == ("sixel", "SWAPWIZARD_IMAGES")
    assert requested_mode({}, "blocks") == ("blocks", "[wizard] images")
    assert requested_mode({}, None) == ("auto", "auto")
    with pytest.raises(UserError, match="is not one of"):
        requested_mode({"SWAPWIZARD_IMAGES": "png"})


def never(*_):
    raise AssertionError("the terminal must not be asked")


def test_auto_asks_the_terminal_only_when_it_may_draw_images():
    assert choose("auto", "auto", {}, is_tty=False, probe=never).mode == "blocks"
    assert choose("auto", "auto", {"NO_COLOR": "1"}, is_tty=True, probe=never).mode == "blocks"  # shades
    assert choose("auto", "auto", {}, True, probe=lambda: "sixel").mode == "sixel"
    assert choose("auto", "auto", {}, True, probe=lambda: "kitty").mode == "kitty"
    assert choose("auto", "auto", {}, True, probe=lambda: "blocks").mode == "blocks"
    assert choose("blocks", "SWAPWIZARD_IMAGES", {}, True, probe=never).mode == "blocks"
    forced = choose("kitty", "SWAPWIZARD_IMAGES", {}, False, probe=never)
    assert forced.mode == "kitty" and not forced.tmux_passthrough


def test_inside_tmux_kitty_needs_passthrough_and_says_so_once():
    env = {"TMUX": "/tmp/tmux-0/default,1,0"}
    off = {"passthrough": "off", "client_term": "xterm-kitty", "features": "RGB"}
    on = {**off, "passthrough": "on"}
    told = choose("auto", "auto", env, True, probe=lambda: "blocks", tmux=lambda: off)
    assert told.mode == "blocks" and "allow-passthrough on" in told.notice
    through = choose("auto", "auto", env, True, probe=lambda: "blocks", tmux=lambda: on)
    assert through.mode == "kitty" and through.tmux_passthrough and not through.notice
    # tmux 3.4+ that knows the outer terminal draws sixel answers for itself.
    assert choose("auto", "auto", env, True, probe=lambda: "sixel", tmux=never).mode == "sixel"
    foot = choose("auto", "auto", env, True, probe=lambda: "blocks",
                  tmux=lambda: {"passthrough": "off", "client_term": "foot", "features": ""})
    assert foot.mode == "blocks" and "terminal-features" in foot.notice
    plain = choose("auto", "auto", env, True, probe=lambda: "blocks",
                   tmux=lambda: {"passthrough": "off", "client_term": "xterm-256color", "features": ""})
    assert plain.mode == "blocks" and not plain.notice


def test_tmux_passthrough_doubles_every_escape():
    assert tmux_wrap("\x1b_Ga=p\x1b\\") == "\x1bPtmux;\x1b\x1b_Ga=p\x1b\x1b\\\x1b\\"


def test_pictures_keep_their_aspect_in_cells():
    # A 512 x 512 crop in 14 x 7 cells of 10 x 20 px: 140 x 140 px, all of the box.
    assert fit_cells(512, 512, 14, 7, (10, 20)) == (14, 7, 140, 140)
    # A wide preview grid (7 columns x 4 rows of faces) in a tall box: as wide as the box, fewer rows.
    cells_w, cells_h, width, height = fit_cells(1120, 640, 30, 20, (10, 20))
    assert (cells_w, width) == (30, 300) and height == round(640 * 300 / 1120) and cells_h == 9


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.timeout(120)
def test_in_tmux_kitty_images_go_through_passthrough_or_a_notice_says_what_to_set(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    ws.record_consent("tester")
    gradient_faces(ws.aligned_dir("src"))
    server = f"swapwizard-images-{uuid.uuid4().hex[:8]}"
    raw = tmp_path / "pane.bin"

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", server, *args], capture_output=True, text=True, timeout=10).stdout

    command = f"SWAPWIZARD_IMAGES=kitty PYTHONPATH={REPO} {sys.executable} -c 'from tui.cli import main; main()' {ws.root}"
    try:
        # allow-passthrough off (tmux's default): the wizard says once what to set.
        tmux("new-session", "-d", "-s", "off", "-x", "100", "-y", "30", command)
        deadline = time.monotonic() + 40
        while "allow-passthrough" not in tmux("capture-pane", "-p", "-t", "off") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "allow-passthrough" in tmux("capture-pane", "-p", "-t", "off")

        # allow-passthrough on: the kitty commands reach the outer terminal inside tmux's passthrough.
        # The new session comes first: killing a server's last session ends the server, and a session
        # asked for while it ends may be lost (seen once in CI: no output at all reached the pipe).
        tmux("new-session", "-d", "-s", "on", "-x", "100", "-y", "30", f"read go; {command}")
        tmux("kill-session", "-t", "off")
        tmux("set-option", "-g", "allow-passthrough", "on")
        tmux("pipe-pane", "-o", "-t", "on", f"cat >> {raw}")
        tmux("send-keys", "-t", "on", "Enter")  # now start the wizard
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and b"a=p" not in (raw.read_bytes() if raw.exists() else b""):
            time.sleep(0.3)
        written = raw.read_bytes()
        assert b"\x1bPtmux;\x1b\x1b_G" in written and b"a=p" in written
        assert "allow-passthrough" not in tmux("capture-pane", "-p", "-t", "on")
    finally:
        tmux("kill-server")
        stop_engine(ws)


def test_the_workspace_setting_is_read_and_checked(tmp_path):
    from tui.graphics import workspace_setting

    ws = make_workspace(tmp_path / "ws")
    assert workspace_setting(ws.root) == "auto"  # the template's value
    ws.update_settings("wizard", {"images": "blocks"})
    assert workspace_setting(ws.root) == "blocks"
    ws.update_settings("wizard", {"images": "hologram"})
    with pytest.raises(UserError, match=r"\[wizard\] images"):
        workspace_setting(ws.root)
    assert workspace_setting(None) is None
