"""What the engine, the CLI and the wizard import when they start: none of torch, cv2, mediapipe or numpy.

The import contracts in pyproject.toml see every import, also those inside functions; this checks
what a start really loads in a fresh interpreter, so an import moved to a module's top that drags a
heavy library into a start path is caught (docs/architecture.md: imports at the top, except ...).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "cv2", "mediapipe", "numpy")  # numpy: 0.06-0.7 s of a 0.13 s engine start
STARTS = {
    # The engine's start: the server and every job module (job_kinds imports them all).
    "engine": "import engine.server; from engine.jobs import job_kinds; job_kinds()",
    # python -m engine start|stop|status|serve
    "engine command line": "import engine.__main__",
    "CLI": "import tui.cli",
    "wizard": "import tui.app",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(STARTS))
def test_a_start_loads_no_heavy_library(name):
    code = (f"{STARTS[name]}\nimport json, sys\n"
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"the {name} start imports {loaded}: import them inside the function that needs them"
