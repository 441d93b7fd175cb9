"""``swapwizard [WS]`` as a command: bad input is one sentence and a hint; the wizard stays light."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO, cli


def test_opening_a_folder_that_is_not_a_workspace_exits_2_with_a_hint(tmp_path):
    result = cli(str(tmp_path / "nowhere"), timeout=30)
    assert result.returncode == 2
    assert "is not a swapwizard workspace" in result.stderr and "swapwizard new" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_wizard_imports_no_heavy_library():
    code = ("import sys, tui.app, tui.cli; "
            "print(','.join(m for m in ('torch', 'cv2', 'mediapipe', 'numpy', 'PIL') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported at start-up: {result.stdout.strip()}"
