"""The browser view as a new user meets it (issue 31 item 7), through the real ``swapwizard serve``: the
steps as they stand now, the export's before / after pictures, the token file, the ``ssh -L`` hint."""

from __future__ import annotations

import asyncio
import re
import shutil
import stat
import time

import aiohttp
import pytest

from tests.helpers import SAMPLES, make_workspace
from tests.tui.test_serve import start_serve, stop_serve
from tui.web.server import EXPORT_PICTURES, token_path


@pytest.mark.timeout(120)
def test_serve_shows_the_steps_now_the_exports_pictures_and_writes_the_token_alone(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    for step in ("extract_src", "extract_dst", "check"):
        ws.set_step(step, "done")
    # An export's result (the destination clip stands in for the merged video: the page shows its frame).
    (ws.root / "output").mkdir(exist_ok=True)
    shutil.copy(SAMPLES / "dst.mp4", ws.root / "output" / "result.mp4")
    ws.set_step("merge", "done", result={"output": "output/result.mp4", "frames": 75, "fps": 25.0})
    proc = start_serve(ws, "--port", "0", "--no-engine")
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("ssh -L" in line for line in printed) and time.monotonic() < deadline and proc.poll() is None:
            printed.append(proc.stdout.readline() if proc.stdout else "")
        found = re.search(r"(http://127\.0\.0\.1:(\d+)/)\?token=([\w-]+)", "".join(printed))
        assert found, printed
        base, port, token = found.group(1), found.group(2), found.group(3)
        assert f"ssh -L {port}:127.0.0.1:{port} " in "".join(printed), printed
        assert token_path(ws).read_text().strip() == token, "web.token holds the token, not the URL"
        ws.set_step("train", "running")  # a run moved on from check to train
        seen: dict = {}

        async def browse() -> None:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}api/state?token={token}") as reply:
                    seen["state"] = await reply.json()
                for picture in seen["state"]["pictures"]:
                    async with http.get(f"{base}file/{picture['path']}?token={token}") as reply:
                        seen[picture["title"]] = (reply.status, reply.content_type)

        asyncio.run(browse())
    finally:
        code, _, err = stop_serve(proc)
    assert code == 0, err
    state = seen["state"]
    assert state["steps"]["train"] == "running" and state["steps"]["check"] == "done", state["steps"]
    titles = [picture["title"] for picture in state["pictures"]]
    for title, relative in EXPORT_PICTURES:
        assert title in titles, titles
        assert seen[title] == (200, "image/png")
        assert stat.S_IMODE((ws.root / relative).stat().st_mode) == 0o600
