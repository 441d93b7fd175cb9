"""The wizard in a real pseudo-terminal draws pictures with the image protocol it is told the terminal
speaks: kitty graphics commands (``ESC _G``: the image sent, then a Unicode-placeholder placement),
sixel (``ESC P ... q``), or, with ``blocks``, half-block characters and no image sequence at all.

The terminal here is a pty whose output the test reads byte for byte (no kitty or sixel terminal
is installed on the test machine): it checks what the wizard writes, not what a terminal shows.
The pty announces its size in cells and pixels (100 x 30 cells of 10 x 20 px), as kitty does."""

from __future__ import annotations

import base64
import fcntl
import io
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from engine.workspace import Workspace
from tests.helpers import REPO, make_workspace, stop_engine

KITTY_SEND = re.compile(rb"\x1b_G[^\x1b]*f=100[^\x1b]*;")  # image data (PNG), possibly in chunks
KITTY_PLACE = re.compile(rb"\x1b_G[^\x1b]*a=p[^\x1b]*U=1")  # a virtual placement for Unicode placeholders
SIXEL = re.compile(rb"\x1bP[0-9;]*q\"1;1;\d+;\d+")  # DCS ... q with raster attributes
HALF_BLOCK = "▀".encode()
PLACEHOLDER = "\U0010eeee".encode()  # the kitty placeholder cell: the image shows where these are drawn


def gradient_faces(folder: Path, count: int = 4) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        image = Image.new("RGB", (128, 128))
        image.putdata([((x * 2 + n * 40) % 256, (y * 2) % 256, 90) for y in range(128) for x in range(128)])
        image.save(folder / f"{n:06d}_0.jpg")


class Pty:
    """The wizard on a pseudo-terminal of 100 x 30 cells, 1000 x 600 pixels; ``output`` is all it wrote."""

    def __init__(self, ws: Workspace, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 1000, 600))
        full_env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "NO_COLOR", "FORCE_COLOR")}
        full_env.update({"PYTHONPATH": str(REPO), "COLORTERM": "truecolor", **env})
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tui.cli import main; main()", str(ws.root)],
            stdin=slave, stdout=slave, stderr=slave, env=full_env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.output = b""

    def read_until(self, pattern: re.Pattern[bytes] | bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (pattern.search(self.output) if isinstance(pattern, re.Pattern) else
                    pattern(self.output) if callable(pattern) else pattern in self.output):
                return True
            self.pump(0.2)
        return False

    def pump(self, seconds: float) -> None:
        """Read everything the wizard writes for ``seconds`` (a pty hands it over in ~4 KB pieces)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                return
            try:
                self.output += os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                time.sleep(left)
                return

    def close(self) -> None:
        try:
            os.write(self.master, b"\x1b")  # escape: out of a full-size view, if one is open
            self.pump(1.5)
            os.write(self.master, b"\x11")  # ctrl+q
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def faces_ws(tmp_path) -> Workspace:
    """A consented workspace that opens on the Extract step with four face crops to show."""
    ws = make_workspace(tmp_path / "ws")
    ws.record_consent("tester")
    gradient_faces(ws.aligned_dir("src"))
    yield ws
    stop_engine(ws)


def run_wizard(ws: Workspace, env: dict[str, str], *patterns, timeout: float = 60.0) -> tuple[bool, bytes]:
    """Run the wizard until every pattern was written (in order), then quit it. A ``str`` pattern is
    typed instead (keys)."""
    term = Pty(ws, env)
    try:
        found = all(os.write(term.master, pattern.encode()) > 0 if isinstance(pattern, str)
                    else term.read_until(pattern, timeout) for pattern in patterns)
        if found:
            term.pump(1.0)  # what follows the first picture (the other three)
    finally:
        term.close()
    return found, term.output


@pytest.mark.timeout(120)
def test_kitty_terminal_gets_kitty_graphics_commands(faces_ws):
    full_size = re.compile(rb"\x1b_Ga=p,i=\d+,c=(5[0-9]|60),r=(2[5-9]),U=1")  # 128 px crop in ~100 x 28 cells
    found, output = run_wizard(faces_ws, {"SWAPWIZARD_IMAGES": "kitty", "TERM": "xterm-kitty"}, KITTY_PLACE,
                               lambda out: out.count(PLACEHOLDER) >= 4 * 14 * 7,  # 4 crops of 14 x 7 cells
                               "z", full_size)  # z: the first crop full screen
    assert found, f"no kitty placement written; the terminal got:\n{output[-3000:]!r}"
    assert KITTY_SEND.search(output), "the image itself was sent"
    assert len(set(re.findall(rb"a=p,i=(\d+)", output))) == 5, "one image per face crop, each sent once, + z's"
    # Leaving the full-size view (escape, typed by close() before ctrl+q) frees its image in the terminal.
    assert re.search(rb"\x1b_Ga=d,d=I,i=" + full_size.search(output).group(0).split(b"i=")[1].split(b",")[0], output)
    # What the terminal received for the full-size view: the crop, at cells x cell pixels, undistorted.
    from PIL import Image

    place = full_size.search(output)
    image_id, cols, rows = re.search(rb"i=(\d+),c=(\d+),r=(\d+)", place.group(0)).groups()
    data = b"".join(re.findall(rb"\x1b_Gi=" + image_id + rb",m=\d,f=100,q=2;([^\x1b]*)", output))
    received = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA")
    assert received.size == (int(cols) * 10, int(rows) * 20)
    with Image.open(faces_ws.aligned_dir("src") / "000000_0.jpg") as crop:
        expected = crop.convert("RGB").getpixel((64, 64))
    centre = received.getpixel((received.width // 2, received.height // 2))
    assert centre[3] == 255 and all(abs(a - b) <= 12 for a, b in zip(centre[:3], expected))
    assert received.getpixel((0, 0))[3] == 0 or received.width == received.height  # spare pixels transparent


@pytest.mark.timeout(120)
def test_sixel_terminal_gets_sixel_images(faces_ws):
    found, output = run_wizard(faces_ws, {"SWAPWIZARD_IMAGES": "sixel", "TERM": "xterm-256color"}, SIXEL)
    assert found, f"no sixel image written; the terminal got:\n{output[-3000:]!r}"
    assert not KITTY_SEND.search(output)


@pytest.mark.timeout(120)
def test_blocks_write_no_image_sequences(faces_ws):
    found, output = run_wizard(faces_ws, {"SWAPWIZARD_IMAGES": "blocks", "TERM": "xterm-kitty"},
                               lambda out: out.count(HALF_BLOCK) >= 4 * 14 * 7)  # 4 crops of 14 x 7 cells
    assert found, f"no half-block picture drawn; the terminal got:\n{output[-3000:]!r}"
    assert b"\x1b_G" not in output and not SIXEL.search(output)


@pytest.mark.timeout(60)
def test_a_bad_images_value_is_one_clear_error(faces_ws):
    env = {**os.environ, "PYTHONPATH": str(REPO), "SWAPWIZARD_IMAGES": "hologram"}
    proc = subprocess.run([sys.executable, "-c", "from tui.cli import main; main()", str(faces_ws.root)],
                          capture_output=True, text=True, env=env, timeout=50, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "SWAPWIZARD_IMAGES=hologram is not one of" in proc.stderr
    assert "Traceback" not in proc.stderr
