"""How the wizard draws pictures: real images (kitty graphics protocol or sixel) or half-blocks.

Chosen once, at start, before Textual takes over the terminal (a terminal can only be asked while
nothing else reads its answers): ``detect()`` in ``swapwizard [WS]``. The order of precedence is
the environment variable ``SWAPWIZARD_IMAGES=auto|kitty|sixel|blocks``, then ``[wizard] images`` of
the workspace opened on the command line, then ``auto``:

- not a terminal, or ``NO_COLOR`` set: blocks (shades under NO_COLOR), without asking anything;
- otherwise ``textual-image`` asks the terminal (primary device attributes for sixel, a kitty
  graphics query) and its answer decides: sixel (WezTerm, foot, iTerm2, Windows Terminal 1.22+, VS
  Code, xterm -ti vt340...), kitty (kitty, Ghostty), else blocks;
- inside tmux the pane's terminal is tmux, which answers for itself: sixel works when tmux (3.4+,
  built with sixel) says so, which needs the outer terminal's ``sixel`` feature
  (``set -as terminal-features ',foot*:sixel'``); kitty images need ``set -g allow-passthrough on``
  (tmux 3.3+) and are then wrapped in tmux's passthrough sequence. When the outer terminal is kitty
  or Ghostty and passthrough is off, the wizard draws blocks and says once what to set.

The rest of the TUI asks ``current()``. Tests and the snapshot suite never call ``detect()`` and get
blocks. ``textual_image`` is imported only for kitty or sixel (its import asks the terminal).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine import settings
from engine.errors import UserError
from engine.settings import IMAGE_MODES
from engine.workspace import Workspace

#: auto, kitty, sixel, blocks: declared with the ``[wizard] images`` setting (engine/settings.py).
MODES = IMAGE_MODES
ENV = "SWAPWIZARD_IMAGES"
#: Outer terminals (tmux's ``client_termname``) that speak the kitty graphics protocol with the
#: Unicode placeholders textual-image uses.
KITTY_TERMS = ("xterm-kitty", "xterm-ghostty", "ghostty")
TMUX_KITTY_HINT = ("Add `set -g allow-passthrough on` to ~/.tmux.conf (tmux 3.3 or later) and run "
                   "`tmux source ~/.tmux.conf`, then reopen the wizard; or set SWAPWIZARD_IMAGES=blocks to stop this notice.")
TMUX_SIXEL_HINT = ("tmux 3.4 or later draws sixel images when it knows the terminal can: "
                   "`set -as terminal-features ',*:sixel'` in ~/.tmux.conf, then restart tmux.")


@dataclass(frozen=True)
class Graphics:
    """The chosen way to draw pictures, and why."""

    mode: str = "blocks"  # "kitty", "sixel" or "blocks"
    reason: str = "default"
    #: Said once, as a notice, when the wizard opens (e.g. tmux is not set up for images).
    notice: str = ""
    #: Kitty graphics commands go through tmux's passthrough (``ESC P tmux; ... ESC \\``).
    tmux_passthrough: bool = False

    @property
    def images(self) -> bool:
        return self.mode in ("kitty", "sixel")


_current = Graphics()


def current() -> Graphics:
    """The mode ``detect()`` chose (blocks when it never ran: tests, snapshots, non-terminals)."""
    return _current


def set_current(graphics: Graphics) -> Graphics:
    global _current
    _current = graphics
    if graphics.mode == "kitty" and graphics.tmux_passthrough:
        _wrap_kitty_for_tmux()
    return graphics


def requested_mode(env: Mapping[str, str], setting: str | None = None) -> tuple[str, str]:
    """(mode, where it came from): the environment variable, else the workspace setting, else auto."""
    value = env.get(ENV, "").strip().lower()
    if value:
        if value not in MODES:
            raise UserError(f"{ENV}={value} is not one of {', '.join(MODES)}.",
                            f"Use for example {ENV}=auto (or blocks to draw pictures with characters).")
        return value, ENV
    if setting and setting in MODES:
        return setting, "[wizard] images"
    return "auto", "auto"


def workspace_setting(root: Any) -> str | None:
    """``[wizard] images`` of the workspace at ``root`` (None: no workspace); a bad value is a UserError."""
    if root is None:
        return None
    ws = Workspace(root)
    try:
        ws.settings()
    except Exception:  # noqa: BLE001 - a broken workspace.toml is reported when the wizard opens it
        return None
    return str(settings.read(ws, "wizard")["images"])


def tmux_info(run: Any = None) -> dict[str, str]:
    """What tmux says about passthrough and the outer terminal ({} when it cannot be asked)."""
    run = run or _tmux
    return {"passthrough": run("show-options", "-Apv", "allow-passthrough"),
            "client_term": run("display-message", "-p", "#{client_termname}"),
            "features": run("display-message", "-p", "#{client_termfeatures}")}


def _tmux(*args: str) -> str:
    if shutil.which("tmux") is None:
        return ""
    try:
        done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def choose(requested: str, source: str, env: Mapping[str, str], is_tty: bool,
           probe: Any = None, tmux: Any = None) -> Graphics:
    """The decision, apart from the terminal: ``probe()`` asks the terminal ("sixel", "kitty" or
    "blocks"), ``tmux()`` gives ``tmux_info()``; both are called only when needed."""
    in_tmux = bool(env.get("TMUX"))
    if requested == "blocks":
        return Graphics("blocks", f"{source}=blocks")
    if requested in ("kitty", "sixel"):
        notice, passthrough = "", False
        if in_tmux and requested == "kitty":
            info = (tmux or tmux_info)()
            passthrough = True
            if info.get("passthrough", "off") in ("", "off"):
                notice = f"Kitty images were asked for ({source}) but tmux does not pass them through. {TMUX_KITTY_HINT}"
        return Graphics(requested, f"{source}={requested}", notice, passthrough)
    # auto
    if not is_tty:
        return Graphics("blocks", "not a terminal")
    if env.get("NO_COLOR"):
        return Graphics("blocks", "NO_COLOR is set (shades)")
    answer = (probe or probe_terminal)()
    if answer == "sixel":
        return Graphics("sixel", "the terminal answers that it draws sixel images")
    if answer == "kitty" and not in_tmux:
        return Graphics("kitty", "the terminal answers kitty graphics queries")
    if in_tmux:
        info = (tmux or tmux_info)()
        outer = info.get("client_term", "")
        if outer in KITTY_TERMS:
            if info.get("passthrough", "off") not in ("", "off"):
                return Graphics("kitty", f"tmux passes kitty graphics through to {outer}", tmux_passthrough=True)
            return Graphics("blocks", "tmux without allow-passthrough",
                            notice=f"Pictures are drawn with characters: tmux does not pass {outer}'s image "
                                   f"protocol through. {TMUX_KITTY_HINT}")
        if "sixel" not in info.get("features", "") and outer.split("-")[0] in ("foot", "wezterm", "mlterm", "contour"):
            return Graphics("blocks", "tmux without sixel",
                            notice=f"Pictures are drawn with characters: tmux does not know that {outer} draws "
                                   f"sixel images. {TMUX_SIXEL_HINT}")
        return Graphics("blocks", "tmux: no image protocol")
    return Graphics("blocks", "the terminal draws no images")


def probe_terminal() -> str:
    """Ask the terminal through textual-image (its import sends the queries): sixel, kitty or blocks."""
    try:
        from textual_image import renderable
    except Exception:  # the library cannot talk to this terminal: draw with characters
        return "blocks"
    if renderable.Image is renderable.SixelImage:
        return "sixel"
    if renderable.Image is renderable.TGPImage:
        return "kitty"
    return "blocks"


def detect(setting: str | None = None, env: Mapping[str, str] | None = None) -> Graphics:
    """Choose the mode for this run (call before the Textual app starts) and remember it."""
    env = os.environ if env is None else env
    requested, source = requested_mode(env, setting)
    is_tty = bool(sys.__stdout__ and sys.__stdout__.isatty() and sys.__stdin__ and sys.__stdin__.isatty())
    graphics = choose(requested, source, env, is_tty)
    if graphics.images:
        try:
            import textual_image.widget  # noqa: F401 - measures the cell size in pixels while it still can
        except Exception as exc:  # noqa: BLE001 - any failure to talk to the terminal: draw with characters
            graphics = Graphics("blocks", f"textual-image failed: {exc}")
    return set_current(graphics)


def cell_pixels() -> tuple[int, int]:
    """The size of one terminal cell in pixels (measured at start; 10 x 20 when unknown)."""
    if not _current.images:
        return 10, 20
    from textual_image._terminal import get_cell_size

    size = get_cell_size()
    return max(1, size.width), max(1, size.height)


def tmux_wrap(sequence: str) -> str:
    """``sequence`` inside tmux's passthrough: ``ESC P tmux;`` + the sequence with each ESC doubled + ``ESC \\``."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def _wrap_kitty_for_tmux() -> None:
    """Send textual-image's kitty graphics commands through tmux: 0.12 (the last release for Python
    < 3.12) writes them bare; 0.13+ wraps them itself (its ``_tmux`` module) and is left alone."""
    import importlib.util

    if importlib.util.find_spec("textual_image._tmux") is not None:
        return
    from textual_image.renderable import tgp

    if getattr(tgp._send_tgp_message, "swapwizard_tmux", False):
        return

    def send(*, payload: str | None = None, **kwargs: int | str | None) -> None:
        body = ",".join(f"{k}={v}" for k, v in kwargs.items() if v is not None)
        sequence = f"{tgp._TGP_MESSAGE_START}{body}{';' + payload if payload else ''}{tgp._TGP_MESSAGE_END}"
        out = sys.__stdout__
        if out is not None:
            out.write(tmux_wrap(sequence))
            out.flush()

    send.swapwizard_tmux = True  # type: ignore[attr-defined]
    tgp._send_tgp_message = send
