"""The browser page of ``swapwizard serve`` in a real browser: Debian's Chromium, headless, driven over
the DevTools protocol (a small client on aiohttp's websocket; nothing is downloaded). The real command
serves a workspace whose engine runs a real extraction: the page shows the engine's steps, draws the
loss curve's points, loads its pictures (naturalWidth > 0), and the job's progress arrives live over
the event stream without the page being reloaded. CI installs Chromium (make browser); without it
the test says so and skips."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from engine.atomic import atomic_write_json
from tests.helpers import cli, make_workspace, stop_engine
from tests.tui.test_serve import start_serve, stop_serve, wait_for
from tests.tui.test_terminal_images import gradient_faces

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install "
                                "chromium, or make browser); CI installs it")

#: Pixels of the chart drawn in the src and dst colours (the smoothed lines and the raw points).
COLOURED_PIXELS = """(() => { const c = document.getElementById("chart");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let src = 0, dst = 0;
  const near = (i, r, g, b) => Math.abs(d[i] - r) < 12 && Math.abs(d[i + 1] - g) < 12 && Math.abs(d[i + 2] - b) < 12;
  for (let i = 0; i < d.length; i += 4) { if (d[i + 3] < 200) continue;
    if (near(i, 0x78, 0xdc, 0xe8)) src++; else if (near(i, 0xff, 0x6d, 0xc6)) dst++; }
  return [src, dst]; })()"""
#: Every text the job panel shows from now on (a MutationObserver), and a mark that a reload would wipe.
WATCH_JOB = """(() => { window.__texts = []; window.__not_reloaded = true;
  new MutationObserver(() => window.__texts.push(document.getElementById("job").textContent))
    .observe(document.getElementById("job"), {childList: true, subtree: true, characterData: true});
  return true; })()"""


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol's websocket."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.log = profile.parent / "chromium.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.calls = 0

    async def start(self) -> None:
        assert CHROMIUM is not None
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--no-default-browser-check", "--disable-extensions", f"--user-data-dir={self.profile}",
                 "--remote-debugging-port=0", "--window-size=1280,1400", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        active = self.profile / "DevToolsActivePort"  # Chromium writes its port here once it listens
        wait_for(lambda: active.is_file() and active.read_text().count("\n") >= 1 or self.proc.poll() is not None,
                 60, "Chromium to listen")
        assert self.proc.poll() is None, self.log.read_text(errors="replace")[-2000:]
        port = active.read_text().split()[0]
        self.session = aiohttp.ClientSession()
        deadline = time.monotonic() + 30
        while True:
            async with self.session.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [t for t in await response.json() if t.get("type") == "page"]
            if pages or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert pages, "Chromium opened no page"
        self.ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)

    async def call(self, method: str, **params: object) -> dict:
        assert self.ws is not None
        self.calls += 1
        await self.ws.send_json({"id": self.calls, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=60)
            if message.get("id") == self.calls:
                assert "error" not in message, message["error"]
                return message["result"]

    async def js(self, expression: str) -> object:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float, what: str) -> object:
        deadline = time.monotonic() + timeout
        while True:  # an error (the page not there yet) counts as "not yet"
            value = await self.js(f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()")
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the page shows: "
                                     f"{await self.js('document.body.innerText')!r}")
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def served_url(proc: subprocess.Popen[str]) -> str:
    """The URL ``serve --port 0`` prints (token included), read as it is printed."""
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        found = re.search(r"http://[^\s]+token=[^\s)]+", line)
        if found:
            return found.group(0)
    raise AssertionError(f"serve printed no URL: {stop_serve(proc)}")


def test_the_page_in_chromium_shows_steps_chart_pictures_and_live_progress(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    model = ws.model_dir("default")
    gradient_faces(model / "previews", count=1)
    (model / "previews" / "000000_0.jpg").rename(model / "previews" / "latest.png")
    gradient_faces(ws.root / "check", count=1)
    (ws.root / "check" / "000000_0.jpg").rename(ws.root / "check" / "contact_sheet.png")
    atomic_write_json(model / "loss_history.json", {"iteration": 600, "columns": ["iteration", "loss_src", "loss_dst", "time"],
                                                    "points": [[i, 1.0 / i, 1.4 / i, 0.0] for i in range(10, 601, 10)]})
    atomic_write_json(model / "quality_history.json", {"points": [{"iteration": 500, "source": "train",
                                                                   "ssim_dst": 0.41, "ssim_src": 0.44}]})
    serve = start_serve(ws, "--port", "0")
    browser = Browser(tmp_path / "profile")

    async def scenario() -> None:
        url = served_url(serve)
        await browser.start()
        await browser.call("Page.navigate", url=url)
        # The engine's steps, as `swapwizard status` reads them.
        await browser.until('document.getElementById("conn").textContent === "live"', 60, "the engine's connection")
        steps = await browser.until('document.getElementById("steps").innerText', 30, "the steps")
        status = json.loads(cli("status", str(ws.root), "--json").stdout)
        for step, value in status["steps"].items():
            shown = value.get("status") if isinstance(value, dict) else value
            assert f"{step}: {shown}" in steps, steps
        # The loss chart: its range, and points drawn in both colours.
        assert await browser.js('document.getElementById("range").textContent') == "iterations 10 – 600 (whole run)"
        src, dst = await browser.js(COLOURED_PIXELS)
        assert src > 100 and dst > 100, (src, dst)
        # The pictures: every one loaded from the server, with its real size.
        sizes = await browser.until("""(() => { const im = [...document.images];
            return im.length >= 2 && im.every(i => i.complete) && im.map(i => [i.alt, i.naturalWidth, i.naturalHeight]); })()""",
                                    30, "the pictures to load")
        assert all(width == 128 and height == 128 for _, width, height in sizes), sizes
        # A real job's progress arrives over the event stream and is drawn in place.
        await browser.js(WATCH_JOB)
        submitted = cli("extract", str(ws.root), "--side", "dst", "--detach")
        assert submitted.returncode == 0, submitted.stderr
        counts = await browser.until(r"""(() => { const seen = new Set(window.__texts
              .map(t => /extract[^:]*: (\d+) \/ 75/.exec(t)).filter(m => m).map(m => m[1]));
            return seen.size >= 3 && window.__not_reloaded && [...seen]; })()""", 240, "live progress of the extraction")
        assert len(set(counts)) >= 3

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(browser.close())
        stop_serve(serve)
        stop_engine(ws)
