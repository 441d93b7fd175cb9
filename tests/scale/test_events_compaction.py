"""The event log of a long run stays under its bound, and replay after compaction still tells everything.

A synthetic week in miniature: real events written through the real ``EventLog`` (the engine's own
append path), a training job with tens of thousands of metrics, many short jobs that finish, fail or
are cancelled, then replay (the API, a restarted log, and a real engine's subscribe).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time

from engine.client import EngineClient
from engine.events import EventLog, read_events
from engine.launcher import start_engine
from tests.helpers import stop_engine

MAX = 1 << 20  # 1 MB: the bound these tests hold the log to (the default is 64 MB)
OUTCOMES = ("job_finished", "job_failed", "job_cancelled")


def long_run(log: EventLog, iterations: int = 40_000, short_jobs: int = 300, check_every: int = 500) -> dict:
    """Write a long training run with short jobs around it; returns what a client should still see."""
    expected: dict[str, str] = {}
    biggest = 0
    log.append("engine_started", pid=1, version="test")
    n = 0
    for j in range(short_jobs):
        job = f"job-s{j}"
        log.append("job_queued", job_id=job, kind="extract", params={"side": "src"})
        if j % 7 == 3:
            log.append("job_cancelled", job_id=job)  # cancelled while queued: never started
            expected[job] = "job_cancelled"
            continue
        log.append("job_started", job_id=job, kind="extract", params={"side": "src"}, pid=100 + j)
        for done in range(0, 60, 3):
            log.append("progress", job_id=job, stage="detect", done=done, total=60, unit="frames", rate=12.5)
        log.append("preview", job_id=job, path=f"previews/{job}.png", small=None, extra={})
        log.append("log", job_id=job, level="info", message="extracted " + "z" * 80)
        if j % 5 == 1:
            log.append("job_failed", job_id=job, error="No faces.", hint="Check the clip.")
            expected[job] = "job_failed"
        else:
            log.append("job_finished", job_id=job, result={"faces": j})
            expected[job] = "job_finished"
    train = "job-train"
    log.append("job_queued", job_id=train, kind="train", params={"model": "m"})
    log.append("job_started", job_id=train, kind="train", params={"model": "m"}, pid=9)
    for it in range(1, iterations + 1):
        loss = 1.0 / (1.0 + it / 1000)
        log.append("metrics", job_id=train, values={"iter": it * 10, "loss_src": loss, "loss_dst": loss * 1.1,
                                                    "iters_per_s": 3.3, "samples_per_s": 105.6, "eta_s": None,
                                                    "target": None, "lr": 5e-5, "batch_size": 16})
        if it % 40 == 0:
            log.append("progress", job_id=train, stage="train", done=it * 10, total=None, unit="iterations")
        if it % 1000 == 0:
            log.append("preview", job_id=train, path="model/m/previews/latest.png", small=None, extra={})
        n += 1
        if n % check_every == 0:
            biggest = max(biggest, log.path.stat().st_size)
    log.append("job_finished", job_id=train, result={"iteration": iterations * 10})
    expected[train] = "job_finished"
    biggest = max(biggest, log.path.stat().st_size)
    return {"outcomes": expected, "biggest": biggest, "last_iter": iterations * 10}


def check_replay(events: list[dict], want: dict) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    ended = {e["job_id"]: e["type"] for e in events if e["type"] in OUTCOMES}
    for job, outcome in want["outcomes"].items():
        assert ended.get(job) == outcome, f"{job}: {ended.get(job)} after compaction, {outcome} before"
    finished = next(e for e in events if e["type"] == "job_finished" and e["job_id"] == "job-train")
    assert finished["result"] == {"iteration": want["last_iter"]}
    curve = [e["values"] for e in events if e["type"] == "metrics" and e["job_id"] == "job-train"]
    iters = [v["iter"] for v in curve]
    assert iters == sorted(iters)
    # the whole curve, at a coarser grain: from its first stretch to its very last point
    assert iters[0] <= want["last_iter"] // 50 and iters[-1] == want["last_iter"]
    assert 50 <= len(curve) <= 4000
    losses = [v["loss_src"] for v in curve]
    # The first point averages the run's first stretch (how long a stretch is depends on when the compaction
    # thread ran): at least the loss at its own iteration, which the line above holds early.
    assert losses[0] >= 1.0 / (1.0 + iters[0] / 10 / 1000) - 1e-6
    assert abs(losses[-1] - 1.0 / (1.0 + want["last_iter"] / 10 / 1000)) < 1e-6
    assert all(a >= b for a, b in zip(losses, losses[1:])), "merging neighbours keeps a falling curve falling"
    started = {e["job_id"] for e in events if e["type"] == "job_started"}
    assert {job for job, o in want["outcomes"].items() if o != "job_cancelled" or job == "job-train"} <= started


def test_a_long_run_stays_under_the_bound_and_replays_whole(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=MAX)
    want = long_run(log)
    last = log.last_seq
    assert log.compactions >= 5
    assert want["biggest"] <= MAX + 4096, f"the log reached {want['biggest']} bytes, over its {MAX} bound"
    # the API's replay, from the start and from a late seq in the middle of thinned history
    events = [json.loads(line) for line in log.replay(0, last)]
    check_replay(events, want)
    late = [json.loads(line) for line in log.replay(last - 300, last)]
    assert late and all(last - 300 <= e["seq"] <= last for e in late) and late[-1]["seq"] == last
    log.close()
    # a restarted engine continues the sequence after the last seq, whatever compaction dropped
    again = EventLog(path, max_bytes=MAX)
    assert again.last_seq == last
    event, _ = again.append("engine_started", pid=2, version="test")
    assert event.seq == last + 1
    again.close()
    check_replay(list(read_events(path)), want)


def test_compaction_that_cannot_write_leaves_the_log_whole(tmp_path):
    """No file can be opened while the log passes its bound (the open-files limit is reached; it binds
    root too): the log stays whole and appends go on; the next compaction, with room again, works."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=64 << 10)
    for i in range(120):  # ~35 KB: under 3/4 of the bound, so no compaction starts before the limit
        log.append("log", job_id=None, level="info", message=f"{i} " + "q" * 200)
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor
    try:
        for i in range(120, 320):
            log.append("log", job_id=None, level="info", message=f"{i} " + "q" * 200)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    after = list(read_events(path))
    assert path.read_bytes().startswith(before)
    assert [e["seq"] for e in after] == list(range(1, 321)), "nothing lost, nothing reordered"
    assert log.compactions == 0
    for i in range(320, 1000):
        log.append("log", job_id=None, level="info", message=f"{i} " + "q" * 200)
        if log.compactions:
            break
    assert log.compactions == 1 and path.stat().st_size < 64 << 10
    assert [e["seq"] for e in read_events(path)][-1] == log.last_seq
    log.close()


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from engine.events import EventLog
    log = EventLog(Path(sys.argv[1]), max_bytes=64 << 10)
    print(log.last_seq, flush=True)
    i = 0
    while True:
        i += 1
        log.append("metrics", job_id="job-t", values={"iter": log.last_seq + 1, "loss_src": 0.5, "loss_dst": 0.5})
        if i % 50 == 0:
            log.append("job_finished", job_id=f"job-{i}", result={"i": i})
""")


def test_kill_9_during_compactions_never_loses_the_log(tmp_path):
    """A writer compacting every few hundred events is killed with SIGKILL at ten arbitrary moments: each
    time the log is a whole log (old or new, a torn last line at most) and the next writer continues it."""
    path = tmp_path / "events.jsonl"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    previous = 0
    for round_ in range(10):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, cwd=repo,
                                text=True)
        start_seq = int(proc.stdout.readline())
        assert start_seq >= previous, "a restart never goes back in the sequence"
        time.sleep(0.3 + 0.13 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        events = list(read_events(path))
        assert events, "the log is never lost"
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs) and seqs[-1] >= start_seq
        assert path.stat().st_size < 3 * (64 << 10)
        previous = seqs[-1]
    assert not [p for p in tmp_path.iterdir() if p.name != "events.jsonl" and not p.name.endswith(".tmp")]


def test_a_real_engine_compacts_a_long_history_and_replays_it(workspace):
    """A long history (written through the events API) under a 1 MB ``[engine] events_max_mb``: the real
    engine compacts it as it starts, runs a job on top, and a client subscribing from 0 gets the whole
    loss curve and every job's outcome."""
    workspace.state_dir.mkdir(mode=0o700, exist_ok=True)
    log = EventLog(workspace.events_path, max_bytes=64 << 20)  # written unbounded: 10+ MB
    want = long_run(log, iterations=40_000, short_jobs=300)
    log.close()
    assert workspace.events_path.stat().st_size > 8 * MAX
    toml = workspace.root / "workspace.toml"
    toml.write_text(toml.read_text().replace("events_max_mb = 64.0", "events_max_mb = 1.0"))
    assert "events_max_mb = 1.0" in toml.read_text()
    try:
        start_engine(workspace)
        with EngineClient(workspace, timeout=60) as client:
            job = client.submit("diagnostic_count", {"count": 3, "delay": 0.01})["job_id"]
            client.subscribe(0)
            events = []
            while True:
                event = client.next_event(timeout=60)
                events.append(event.to_dict())
                if getattr(event, "job_id", None) == job and event.TYPE in OUTCOMES:
                    break
    finally:
        stop_engine(workspace)
    assert workspace.events_path.stat().st_size <= MAX
    check_replay([e for e in events if e.get("seq")], want)
    assert any(e["type"] == "job_finished" and e["job_id"] == job for e in events)


def test_thousands_of_jobs_keep_the_bound_and_count_what_was_summarised(tmp_path):
    """More finished jobs than the bound holds even summarised (previews scrubbed all week): the oldest
    are folded into one log event that counts their outcomes; the newest keep theirs; the bound holds."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=64 << 10)
    outcomes = {}
    for j in range(3000):
        job = f"job-{j}"
        log.append("job_started", job_id=job, kind="merge_preview", params={"frame": j}, pid=5)
        kind = "job_failed" if j % 10 == 0 else "job_finished"
        log.append(kind, job_id=job, **({"error": "x", "hint": "y"} if kind == "job_failed" else {"result": {}}))
        outcomes[job] = kind
        assert path.stat().st_size <= (64 << 10) + 4096
    events = list(read_events(path))
    ended = {e["job_id"]: e["type"] for e in events if e["type"] in OUTCOMES}
    assert ended["job-2999"] == "job_finished" and all(outcomes[job] == kind for job, kind in ended.items())
    notes = [e["message"] for e in events if e["type"] == "log" and "summarised" in e["message"]]
    assert len(notes) == 1, "the jobs left out are said once, earlier summaries folded in"
    left_out = 3000 - len(ended)
    failed = sum(1 for j in range(3000) if j % 10 == 0 and f"job-{j}" not in ended)
    assert f"{left_out} older jobs are summarised here ({failed} failed, {left_out - failed} finished)" in notes[0]
    log.close()
