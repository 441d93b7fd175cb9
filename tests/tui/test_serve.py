"""``swapwizard serve WS``: the real command, a real engine training a tiny model, a real aiohttp
client over the Unix socket (as ``ssh -L`` forwards it) or over loopback with the token."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from engine.client import EngineClient
from engine.launcher import ensure_engine
from tests.helpers import REPO, make_workspace, stop_engine
from tests.train.conftest import as_dict, tiny_params, train_ws  # noqa: F401 - the session's extracted workspace
from tui.web.server import inside, socket_path, token_path


def start_serve(ws, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", "from tui.cli import main; main()", "serve", str(ws.root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def stop_serve(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return proc.returncode, out, err


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def read_events(response: aiohttp.ClientResponse, until, timeout: float) -> list[dict]:
    """Server-sent events of the stream until ``until(event)`` holds."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(response.content.readline(), max(0.1, deadline - time.monotonic()))
        if line.startswith(b"data: "):
            seen.append(json.loads(line[6:]))
            if until(seen[-1]):
                return seen
    raise AssertionError(f"the awaited event never came; saw {[e.get('type') for e in seen]}")


@pytest.mark.timeout(300)
def test_the_page_shows_the_live_iteration_of_a_real_training_over_the_unix_socket(train_ws):  # noqa: F811
    ws = train_ws
    proc = start_serve(ws)
    sock = socket_path(ws)
    try:
        wait_for(lambda: sock.exists() or proc.poll() is not None, 60, "the web socket")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600 and stat.S_IMODE(sock.parent.stat().st_mode) == 0o700

        async def browse() -> None:
            connector = aiohttp.UnixConnector(path=str(sock))
            async with aiohttp.ClientSession(connector=connector, base_url="http://localhost:8080") as http:
                async with http.get("/") as page:
                    assert page.status == 200 and "swapwizard" in await page.text()
                async with http.get("/events", timeout=aiohttp.ClientTimeout(total=240)) as stream:
                    await read_events(stream, lambda e: e.get("type") == "hello", 10)
                    # A real tiny training job, submitted to the engine the page follows.
                    ensure_engine(ws)  # serve starts it too; whoever is first, the other finds it
                    with EngineClient(ws) as client:
                        client.submit("train", as_dict(tiny_params("served", iters=40)))
                    events = await read_events(stream, lambda e: e.get("type") == "metrics"
                                               and (e.get("values") or {}).get("iter", 0) >= 4, 200)
                    live = events[-1]["values"]["iter"]
                async with http.get("/api/state") as reply:
                    state = await reply.json()
                assert state["model"] == "served" and state["job"]["kind"] == "train"
                assert state["job"]["metrics"]["iter"] >= live and state["loss"][-1][0] >= live
                # Pictures: inside the workspace only, image files only.
                deadline = time.monotonic() + 120
                while not state["pictures"] and time.monotonic() < deadline:
                    await asyncio.sleep(1)
                    async with http.get("/api/state") as reply:
                        state = await reply.json()
                preview = state["pictures"][0]
                async with http.get(f"/file/{preview['path']}") as picture:
                    assert picture.status == 200 and (await picture.read())[:8] == b"\x89PNG\r\n\x1a\n"
                for path in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "workspace.toml", "outside.png"):
                    async with http.get(URL(f"http://localhost:8080/file/{path}", encoded=True)) as refused:
                        assert refused.status == 403, path
                # A page of another site reaching the forwarded port (DNS rebinding) is refused.
                async with http.get("/", headers={"Host": "evil.example:8080"}) as rebound:
                    assert rebound.status == 403

        (ws.root / "outside.png").unlink(missing_ok=True)
        (ws.root / "outside.png").symlink_to(Path(sys.executable).resolve())
        try:
            asyncio.run(browse())
        finally:
            (ws.root / "outside.png").unlink(missing_ok=True)

        if os.geteuid() == 0:  # another local user cannot even connect
            probe = ("import os, socket; os.setgid(65534); os.setuid(65534); "
                     f"socket.socket(socket.AF_UNIX).connect({str(sock)!r})")
            other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
            assert other.returncode != 0 and "PermissionError" in other.stderr
    finally:
        code, out, err = stop_serve(proc)
        stop_engine(ws)
    assert code == 0, err
    assert "ssh -L 8080:" in out and str(sock) in out
    assert not sock.exists(), "the socket is removed when serving stops"


@pytest.mark.timeout(120)
def test_port_mode_is_loopback_only_and_needs_the_token(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    proc = start_serve(ws, "--port", "0", "--no-engine")
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "token=" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"(http://127\.0\.0\.1:(\d+)/)\?token=([\w-]+)", line)
        assert found, line
        base, token = found.group(1), found.group(3)
        assert stat.S_IMODE(token_path(ws).stat().st_mode) == 0o600 and token in token_path(ws).read_text()

        async def browse() -> None:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.get(base) as refused:
                    assert refused.status == 403 and "token" in await refused.text()
                async with http.get(base + "api/state?token=wrong") as wrong:
                    assert wrong.status == 403
                async with http.get(f"{base}?token={token}") as page:
                    assert page.status == 200 and "swapwizard" in await page.text()
                async with http.get(base + "api/state") as state:  # the cookie the page was given
                    assert state.status == 200 and (await state.json())["workspace"] == "ws"

        asyncio.run(browse())
    finally:
        code, _, err = stop_serve(proc)
    assert code == 0, err
    assert not token_path(ws).exists()


def test_only_paths_inside_the_workspace_resolve(tmp_path):
    root = tmp_path / "ws"
    (root / "model").mkdir(parents=True)
    (root / "model" / "a.png").write_bytes(b"x")
    assert inside(root, "model/a.png") == (root / "model" / "a.png").resolve()
    for bad in ("../ws2/a.png", "/etc/passwd", "model/../../a.png", "a\x00.png", ""):
        assert inside(root, bad) is None, bad


def test_a_stale_socket_is_replaced_and_a_running_serve_is_not(tmp_path):
    from engine import address
    from engine.errors import UserError
    from tui.web import server

    ws = make_workspace(tmp_path / "ws")
    address.bind(socket_path(ws)).close()  # what a killed serve leaves behind

    async def twice() -> None:
        runner, where, _ = await server.start(ws, start_engine=False)
        try:
            assert where == str(socket_path(ws))
            with pytest.raises(UserError, match="already running"):
                await server.start(ws, start_engine=False)
        finally:
            await server.stop(ws, runner, unix=True)

    asyncio.run(twice())
    assert not socket_path(ws).exists()
