"""The figures of docs/archives.md (issue 24): engine memory with stuck subscribers, and compaction's.

Run from the repository root (or, to compare, from a checkout of older code with this file and
tests/helpers.py copied in: the engine started is the checkout's):

    python tests/scale/measure_issue24.py stuck      # 8 subscribers that never read 41 MB of 100 kB events
    python tests/scale/measure_issue24.py compact    # compacting 60 MB of a training's events (64 MB bound)

Each prints one JSON line. Not a test (pytest does not collect it): the tests hold looser limits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())

from engine.client import EngineClient  # noqa: E402
from engine.events import EventLog  # noqa: E402
from engine.launcher import engine_pid, start_engine  # noqa: E402
from tests.helpers import big_event_log, make_workspace, stop_engine, stuck_subscribers  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stuck(event_kb: int = 100, events: int = 400) -> dict:
    ws = make_workspace(Path(tempfile.mkdtemp()) / "ws")
    ws.update_settings("engine", {"connection_idle_s": 5.0, "events_max_mb": 1000.0})
    big_event_log(ws, events, event_kb * 1024)
    try:
        start_engine(ws)
        pid = engine_pid(ws)
        time.sleep(1)
        base = rss_mb(pid)
        held = stuck_subscribers(ws, 8)
        peak = base
        for _ in range(4):
            time.sleep(1)
            peak = max(peak, rss_mb(pid))
        time.sleep(12)  # past connection_idle_s (5 s) and the drop's grace (10 s)
        with EngineClient(ws, timeout=10) as client:
            left = client.status()["clients"] - 1
        for sock in held:
            sock.close()
        time.sleep(2)
        return {"log_mb": round(ws.events_path.stat().st_size / 1e6, 1), "base_mb": round(base),
                "peak_mb": round(peak), "stuck_clients_left_after_16s": left, "after_close_mb": round(rss_mb(pid))}
    finally:
        stop_engine(ws)


def compact() -> dict:
    path = Path(tempfile.mkdtemp()) / "events.jsonl"
    log = EventLog(path, max_bytes=1 << 40)  # written unbounded, in the engine's own line format
    it = 0
    log.append("job_started", job_id="job-train", kind="train", params={"preset": "tiny"}, pid=1)
    while path.stat().st_size < 60_000_000:
        for _ in range(200):
            it += 10
            log.append("metrics", job_id="job-train", values={"iter": it, "loss_src": 1.0 / (1 + it / 1e4),
                                                              "loss_dst": 0.5, "lr": 5e-5, "its": 3.2})
            if it % 500 == 0:
                log.append("progress", job_id="job-train", stage="train", done=it, total=None, unit="iterations")
            if it % 2000 == 0:
                log.append("log", job_id="job-train", level="info", message="saved checkpoint " + "z" * 80)
    log.close()
    # A fresh process, so that its peak RSS is the compaction's.
    code = ("import json, resource, sys, time; from pathlib import Path; sys.path.insert(0, '.')\n"
            "from engine.events import EventLog\n"
            "log = EventLog(Path(sys.argv[1]), max_bytes=64 << 20)\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; t = time.monotonic()\n"
            "log.compact()\n"
            "print(json.dumps({'base_mb': round(before), 'peak_mb': round(resource.getrusage("
            "resource.RUSAGE_SELF).ru_maxrss / 1024), 'seconds': round(time.monotonic() - t, 1)}))\n")
    before = path.stat().st_size
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return {"log_mb": round(before / 1e6, 1), **json.loads(done.stdout),
            "after_mb": round(path.stat().st_size / 1e6, 2)}


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what not in ("stuck", "compact"):
        sys.exit(__doc__)
    print(json.dumps(stuck() if what == "stuck" else compact()))
