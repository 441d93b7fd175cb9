"""Probe a video or image folder in a subprocess (``python -m engine.media.probe``), off the UI.

The wizard never imports media code itself: the probe runs ffmpeg, and a subprocess keeps the
app's start-up and memory light. Results are cached per path and modification time.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import engine
from engine.errors import UserError

PACKAGE_ROOT = Path(engine.__file__).resolve().parent.parent
_cache: dict[tuple[str, int], dict[str, Any]] = {}


async def probe(path: Path, timeout: float = 60.0) -> dict[str, Any]:
    """The probe's JSON for ``path``; ``UserError`` with the probe's own message when it fails."""
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key in _cache:
        return _cache[key]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.media.probe", str(path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        await _end(process)
        raise UserError(f"Probing {path.name} took longer than {timeout:.0f} s.", "Check that the file is a video.") from None
    except asyncio.CancelledError:  # the screen (or the app) went away: no probe left running, nor its pipes
        await _end(process)
        raise
    if process.returncode != 0:
        lines = stderr.decode("utf-8", "replace").strip().splitlines()
        message = next((line[7:] for line in lines if line.startswith("error: ")), f"Cannot read {path.name}.")
        hint = next((line[6:] for line in lines if line.startswith("hint: ")), "")
        raise UserError(message, hint)
    info = json.loads(stdout)
    _cache[key] = info
    return info


async def _end(process: asyncio.subprocess.Process) -> None:
    """Kill the probe and reap it, so its transport closes while the event loop still runs."""
    if process.returncode is None:
        try:
            process.kill()
        except ProcessLookupError:
            pass
    await asyncio.shield(process.wait())


def describe(info: dict[str, Any]) -> str:
    """One or two lines a person reads: size, rate, length, audio."""
    if info.get("kind") == "images":
        return f"{info.get('frame_count', 0)} images, {info.get('width')}x{info.get('height')}"
    parts = [f"{info.get('width')}x{info.get('height')}", f"{info.get('fps', 0):.2f} fps"]
    if info.get("variable_fps"):
        parts[-1] += " (variable)"
    parts += [f"{info.get('duration', 0):.1f} s", f"{info.get('frame_count', 0)} frames", str(info.get("codec", ""))]
    audio = info.get("audio") or []
    if audio:
        first = audio[0]
        parts.append(f"audio {first.get('codec')} {first.get('sample_rate') or '?'} Hz {first.get('channels', '')}".strip())
    else:
        parts.append("no audio")
    return " · ".join(parts)


def read_label(path: Path, timeout: float = 30.0) -> dict[str, str]:
    """The metadata tags of a result file (its synthetic-media label), read with ffmpeg; blocking."""
    import subprocess

    import imageio_ffmpeg  # light: it only locates the ffmpeg binary its wheel ships

    try:
        proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                              capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    tags: dict[str, str] = {}
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        key, sep, value = line.strip().partition(":")
        key = key.strip()
        if sep and key in ("comment", "synthetic_media", "synthetic_media_type", "generator", "swap_date"):
            tags.setdefault(key, value.strip())
    return tags
