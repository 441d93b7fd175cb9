"""The engine under a hostile local client (issue 18): what it costs and whether clients still get in.

    python -m engine.bench limits [--json] [--only replay,live,log,flood]
    swapwizard bench limits --json

Each measurement starts a real engine on a scratch workspace (the shipped samples) in a temp folder:

1. ``replay``: 10 clients subscribe from seq 0 to a 120 000-event history (about 26 MB) and never read;
   the engine's RSS before and 6 s after (``replay_rss_mb``).
2. ``live``: 10 clients subscribe to live events and never read while 30 preview-lane jobs each put
   400 kB into their events (12 MB or more of events); the engine's RSS before and after (``live_rss_mb``).
3. ``log``: 1000 requests nested 100 000 deep on one connection; bytes ``engine.log`` grew per request.
4. ``flood``: two processes connect as fast as they can and hold up to 3000 connections each without
   a word, while ``swapwizard status`` runs 20 times: how many said the engine runs, how many said it is
   stopped or busy, and the median time of one ``status`` (including its start-up).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine import address
from engine.bench.timing import Stopwatch
from engine.client import EngineClient
from engine.launcher import engine_pid, start_engine
from engine.protocol import PROTOCOL_VERSION
from engine.workspace import Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
REPO = Path(__file__).resolve().parent.parent.parent
HELLO = json.dumps({"type": "hello", "version": PROTOCOL_VERSION, "id": 0}).encode() + b"\n"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _workspace(top: Path, name: str) -> Workspace:
    return Workspace.create(top / name, src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")


def _stop(ws: Workspace) -> None:
    pid = engine_pid(ws)
    if pid is None:
        return
    try:
        with EngineClient(ws, timeout=10) as client:
            client.shutdown()
    except Exception:  # noqa: BLE001 - a signal then
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while engine_pid(ws) is not None and time.monotonic() < deadline:
        time.sleep(0.1)


def _greeted(ws: Workspace) -> socket.socket:
    sock = address.connect(ws.socket_path, timeout=10)
    sock.sendall(HELLO)
    sock.makefile("rb").readline()
    return sock


def _subscribed_rss(ws: Workspace, from_seq: int, load: Any = None) -> list[float]:
    """The engine's resident MB before and after ten clients subscribe from ``from_seq`` and never read
    (``load(ws)`` runs while they are subscribed), the engine stopped after."""
    pid = start_engine(ws)[0]
    try:
        before = _rss_mb(pid)
        socks = [_greeted(ws) for _ in range(10)]
        for sock in socks:
            sock.sendall(b'{"type": "subscribe", "id": 1, "from_seq": %d}\n' % from_seq)
        if load is not None:
            load(ws)
        after = _rss_mb(pid)
        for sock in socks:
            sock.close()
    finally:
        _stop(ws)
    return [before, after]


def replay(top: Path) -> dict[str, Any]:
    ws = _workspace(top, "replay")
    ws.state_dir.mkdir(mode=0o700, exist_ok=True)
    with open(ws.events_path, "w") as handle:
        for seq in range(1, 120_001):
            handle.write(json.dumps({"type": "log", "seq": seq, "time": 0.0, "job_id": None, "level": "info",
                                     "message": "x" * 150}) + "\n")
    return {"replay_rss_mb": _subscribed_rss(ws, 0, lambda ws: time.sleep(6))}


def _echo_load(ws: Workspace) -> None:
    with EngineClient(ws, timeout=60) as client:
        for _ in range(30):
            client.submit("diagnostic_echo", {"text": "y" * 400_000})
        while client.status()["interactive"]["running"] or client.status()["interactive"]["queue"]:
            time.sleep(0.2)
    time.sleep(1)


def live(top: Path) -> dict[str, Any]:
    return {"live_rss_mb": _subscribed_rss(_workspace(top, "live"), 999999999, _echo_load)}


def log_bytes(top: Path) -> dict[str, Any]:
    ws = _workspace(top, "log")
    start_engine(ws)
    try:
        sock = _greeted(ws)
        reader = sock.makefile("rb")
        deep = b'{"type": "status", "id": 7, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
        time.sleep(0.5)
        before = ws.engine_log_path.stat().st_size
        for _ in range(1000):
            sock.sendall(deep)
            reader.readline()
        time.sleep(0.5)
        grown = ws.engine_log_path.stat().st_size - before
        sock.close()
    finally:
        _stop(ws)
    return {"log_bytes_per_bad_request": grown / 1000}


def _flooder(path: str, stop_at: float) -> None:
    held: list[socket.socket] = []
    while time.time() < stop_at:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
            held.append(sock)
        except OSError:
            sock.close()
            time.sleep(0.001)
        if len(held) > 3000:
            for old in held[:500]:
                old.close()
            del held[:500]


def flood(top: Path) -> dict[str, Any]:
    ws = _workspace(top, "flood")
    start_engine(ws)
    flooders = [multiprocessing.Process(target=_flooder, args=(str(ws.socket_path), time.time() + 300))
                for _ in range(2)]
    answers: list[str] = []
    times = []
    try:
        for process in flooders:
            process.start()
        time.sleep(2)
        for _ in range(20):
            with Stopwatch() as watch:
                result = subprocess.run([sys.executable, "-c", "from tui.cli import main; main()", "status",
                                         str(ws.root)], capture_output=True, text=True, timeout=120, cwd=REPO)
            times.append(watch.seconds)
            text = result.stdout + result.stderr
            answers.append("traceback" if "Traceback" in text else "stopped" if "engine: stopped" in text
                           else "running" if "engine: running" in text else "busy" if "engine: busy" in text
                           else "other")
    finally:
        for process in flooders:
            process.terminate()
            process.join()
        _stop(ws)
    return {"flood_status": {name: answers.count(name) for name in sorted(set(answers))},
            "flood_status_median_s": round(statistics.median(times), 2)}


MEASUREMENTS = {"replay": replay, "live": live, "log": log_bytes, "flood": flood}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench limits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default=",".join(MEASUREMENTS), help="comma-separated: replay,live,log,flood")
    args = parser.parse_args(argv)
    top = Path(tempfile.mkdtemp(prefix="swapwizard-bench-limits-"))
    results: dict[str, Any] = {}
    try:
        for name in args.only.split(","):
            results.update(MEASUREMENTS[name.strip()](top))
            if not args.json:
                print(json.dumps(results), flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0
