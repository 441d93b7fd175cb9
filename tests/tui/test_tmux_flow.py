"""A new user's whole run in a real terminal (tmux, as over SSH), keyboard only: ``swapwizard`` in an
empty folder, the demo workspace, consent, extract, check, train the tiny preset, lose the terminal
mid-training, reopen from the recent list and find the run still going with its loss chart, bring
the target nearer, then export and see the labelled result. About 1-2 minutes on 2 CPU cores."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from engine.workspace import Workspace
from tests.helpers import REPO, stop_engine
from tests.tui.terminal import Terminal

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
BRAILLE_DOTS = re.compile("[\u2801-\u28ff]")


@pytest.mark.timeout(330)
def test_a_new_user_goes_from_nothing_to_a_result_and_survives_a_lost_terminal(tmp_path, config_home):
    cwd = tmp_path / "home"
    cwd.mkdir()
    term = Terminal()
    command = (f"cd {cwd} && XDG_CONFIG_HOME={config_home} PYTHONPATH={REPO} {sys.executable} "
               f"-c 'from tui.cli import main; main()'")
    ws = Workspace(cwd / "swapwizard-demo")
    try:
        term.open(command)
        term.wait(r"No workspace open")
        term.keys("d")  # the demo workspace from the sample clips
        term.wait(r"Press y to confirm")
        term.keys("y")
        term.wait(r"Extract faces")
        term.wait(r"engine: idle", 60)
        term.keys("r")
        term.wait(r"extract · done", 120)
        term.keys("n", "r")
        term.wait(r"check · done", 90)
        term.wait(r"src: \d+ faces")
        term.keys("n", "r")  # train: a new model asks for its preset, when to stop, its target
        term.wait(r"pick its preset")
        term.keys("Home", "Enter")  # tiny
        term.wait(r"When should training stop")
        term.keys("Down", "Enter")  # at an iteration (when it is good is offered first)
        term.wait(r"Train until iteration")
        term.keys(*["BSpace"] * 6, "4", "0", "Enter")
        before = int(term.wait(r"iteration (\d+) / 40", 120).group(1))
        term.kill()  # the terminal (or the SSH connection) is gone, mid-training

        term.open(command)  # come back: the recent list has the workspace, Enter opens it
        term.wait(r"Recent workspaces", 150)  # starts beside a training run that holds both cores
        term.keys("Enter")
        shown = term.wait(r"running · iteration (\d+) / 40", 60)
        assert int(shown.group(1)) >= before, "still training, not started over"
        assert len(BRAILLE_DOTS.findall(term.text())) >= 2, "the loss chart shows the history"
        term.keys("t")  # a nearer target, sent to the running job
        term.wait(r"Train until iteration")
        term.keys(*["BSpace"] * 6, "8", "Enter")
        term.wait(r"done · iteration \d+ / 8", 180)
        term.keys("7", "r")
        term.wait(r"Label: synthetic media", 150)
        assert re.search(r"Result: .*output/result\.mp4", term.text().replace("\n", ""))
    finally:
        term.close()
        if ws.config_path.exists():
            stop_engine(ws)
    assert (ws.output_dir / "result.mp4").stat().st_size > 10_000
