"""The real app in a pseudo-terminal (tmux), as a person uses it over SSH: a job runs, the terminal
dies, the app is opened again and shows the job still running with its progress so far."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from engine.client import EngineClient
from tests.helpers import REPO, stop_engine

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


def screen_text(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for_text(session: str, pattern: str, timeout: float = 30.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, screen_text(session))
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} never appeared; the screen was:\n{screen_text(session)}")


def open_wizard(session: str, ws_root, config_home) -> None:
    command = (f"cd {REPO} && XDG_CONFIG_HOME={config_home} {sys.executable} -c "
               f"'from tui.cli import main; main()' {ws_root}")
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)


@pytest.mark.timeout(150)
def test_a_job_survives_the_terminal_and_the_reopened_app_shows_it(workspace, config_home):
    ws = workspace
    ws.record_consent()
    session = f"swapwizard-test-{uuid.uuid4().hex[:8]}"
    try:
        open_wizard(session, ws.root, config_home)
        wait_for_text(session, r"engine: idle", 60)  # the wizard started the engine and connected
        with EngineClient(ws) as client:  # a second terminal starts a long job
            job_id = client.submit("diagnostic_count", {"count": 600, "delay": 0.05})["job_id"]
        before = int(wait_for_text(session, r"count (\d+)/600").group(1))
        tmux("kill-session", "-t", session)  # the terminal (or the SSH connection) is gone

        time.sleep(1.0)
        with EngineClient(ws) as client:
            running = client.status()["running"]
        assert running and running["job_id"] == job_id, "the job kept running without the wizard"

        open_wizard(session, ws.root, config_home)
        after = int(wait_for_text(session, r"● diagnostic_count\s+count (\d+)/600", 60).group(1))
        assert after > before, "the reopened wizard shows the job's progress, still moving"
        with EngineClient(ws) as client:
            client.cancel(job_id)
        wait_for_text(session, r"engine: idle", 30)
    finally:
        tmux("kill-session", "-t", session)
        stop_engine(ws)
