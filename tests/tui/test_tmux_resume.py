"""The real app in a pseudo-terminal (tmux), as a person uses it over SSH: a job runs, the terminal
dies, the app is opened again and shows the job still running with its progress so far."""

from __future__ import annotations

import shutil
import sys
import time

import pytest

from engine.client import EngineClient
from tests.helpers import REPO, stop_engine
from tests.tui.terminal import Terminal

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def wizard(ws_root, config_home) -> str:
    return (f"cd {REPO} && XDG_CONFIG_HOME={config_home} {sys.executable} -c "
            f"'from tui.cli import main; main()' {ws_root}")


@pytest.mark.timeout(150)
def test_a_job_survives_the_terminal_and_the_reopened_app_shows_it(workspace, config_home):
    ws = workspace
    ws.record_consent()
    term = Terminal()
    try:
        term.open(wizard(ws.root, config_home))
        term.wait(r"engine: idle", 60)  # the wizard started the engine and connected
        with EngineClient(ws) as client:  # a second terminal starts a long job
            job_id = client.submit("diagnostic_count", {"count": 600, "delay": 0.05})["job_id"]
        before = int(term.wait(r"count (\d+)/600").group(1))
        term.kill()  # the terminal (or the SSH connection) is gone

        time.sleep(1.0)
        with EngineClient(ws) as client:
            running = client.status()["running"]
        assert running and running["job_id"] == job_id, "the job kept running without the wizard"

        term.open(wizard(ws.root, config_home))
        after = int(term.wait(r"● diagnostic_count\s+count (\d+)/600", 60).group(1))
        assert after > before, "the reopened wizard shows the job's progress, still moving"
        with EngineClient(ws) as client:
            client.cancel(job_id)
        term.wait(r"engine: idle", 30)
    finally:
        term.close()
        stop_engine(ws)
