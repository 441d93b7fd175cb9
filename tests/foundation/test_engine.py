"""The engine as a real detached process on a real Unix socket."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time

import pytest

from engine import address
from engine.client import EngineClient, EngineError
from engine.launcher import engine_pid, start_engine
from engine.protocol import MAX_LINE_BYTES, PROTOCOL_VERSION
from tests.helpers import make_workspace, run_job, stop_engine

pytestmark = pytest.mark.timeout(120)


def raw_connection(ws, hello=True):
    sock = address.connect(ws.socket_path, timeout=10)
    reader = sock.makefile("rb")
    if hello:
        sock.sendall(json.dumps({"type": "hello", "version": PROTOCOL_VERSION, "id": 0}).encode() + b"\n")
        assert json.loads(reader.readline())["ok"] is True
    return sock, reader


def assert_answers(ws):
    with EngineClient(ws, timeout=10) as client:
        assert client.status()["pid"] == engine_pid(ws)


def test_round_trip_and_job_events(engine_ws):
    final, events = run_job(engine_ws, "diagnostic_count", {"count": 5, "delay": 0.01})
    assert final.TYPE == "job_finished" and final.result == {"counted": 5}
    kinds = [e.TYPE for e in events]
    assert kinds[0] == "job_queued" and "job_started" in kinds and "progress" in kinds
    progress = [e for e in events if e.TYPE == "progress"]
    assert progress[-1].done == 5 and progress[-1].total == 5
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_socket_is_owner_only(engine_ws):
    mode = stat.S_IMODE(os.stat(engine_ws.socket_path).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(engine_ws.socket_dir).st_mode) == 0o700
    # The pid file is written just after the socket listens: a very fast client can be first.
    deadline = time.monotonic() + 10
    while not engine_ws.pid_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(engine_ws.pid_path.read_text()) == engine_pid(engine_ws)


def test_second_start_reports_the_running_engine(engine_ws):
    pid = engine_pid(engine_ws)
    assert start_engine(engine_ws) == (pid, False)
    # Even a direct second server process refuses to run beside it.
    result = subprocess.run([sys.executable, "-m", "engine", "serve", str(engine_ws.root)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 3 and "already runs" in result.stdout
    assert_answers(engine_ws)


def test_job_failure_is_reported_and_engine_stays_up(engine_ws):
    final, _ = run_job(engine_ws, "diagnostic_count", {"count": 5, "fail_at": 2, "delay": 0.01})
    assert final.TYPE == "job_failed"
    assert "diagnostic failure" in final.error and final.hint
    assert "Traceback" not in final.error
    final, _ = run_job(engine_ws, "diagnostic_count", {"count": 2, "delay": 0.01})
    assert final.TYPE == "job_finished"


def test_bad_params_and_unknown_kind_are_refused(engine_ws):
    with EngineClient(engine_ws) as client:
        with pytest.raises(EngineError, match="no job kind"):
            client.submit("mine_bitcoin", {})
        with pytest.raises(EngineError, match="whole number"):
            client.submit("diagnostic_count", {"count": "many"})
        with pytest.raises(EngineError, match="Unknown parameter"):
            client.submit("diagnostic_count", {"cuont": 3})
        assert client.status()["running"] is None


def test_cancel_stops_the_job(engine_ws):
    with EngineClient(engine_ws, timeout=30) as client:
        last = client.status()["last_seq"]
        job_id = client.submit("diagnostic_count", {"count": 10000, "delay": 0.01})["job_id"]
        client.subscribe(last + 1)
        while client.next_event(timeout=30).TYPE != "progress":
            pass
        assert client.cancel(None)["job_id"] == job_id
        while True:
            event = client.next_event(timeout=30)
            if event.TYPE in ("job_cancelled", "job_finished", "job_failed"):
                break
        assert event.TYPE == "job_cancelled"
        assert client.status()["running"] is None


def test_jobs_queue_one_at_a_time(engine_ws):
    with EngineClient(engine_ws) as client:
        first = client.submit("diagnostic_count", {"count": 20, "delay": 0.01})
        second = client.submit("diagnostic_count", {"count": 2, "delay": 0.01})
        assert second["position"] >= 1
        status = client.status()
        assert status["running"]["job_id"] == first["job_id"]
        assert [j["job_id"] for j in status["queue"]] == [second["job_id"]]


def test_two_clients_receive_the_same_events(engine_ws):
    with EngineClient(engine_ws, timeout=30) as a, EngineClient(engine_ws, timeout=30) as b:
        last = a.status()["last_seq"]
        a.subscribe(last + 1)
        b.subscribe(last + 1)
        job_id = a.submit("diagnostic_count", {"count": 8, "delay": 0.02})["job_id"]
        streams = []
        for client in (a, b):
            seen = []
            while True:
                event = client.next_event(timeout=30)
                seen.append((event.seq, event.TYPE))
                if event.TYPE == "job_finished" and event.job_id == job_id:
                    break
            streams.append(seen)
        assert streams[0] == streams[1]
        assert len(streams[0]) >= 5


def test_status_answers_fast_while_a_cpu_heavy_job_runs(engine_ws):
    with EngineClient(engine_ws) as client:
        client.submit("diagnostic_count", {"count": 300, "delay": 0})  # busy-loops a core for ~3 s
        time.sleep(0.5)
        timings = []
        for _ in range(10):
            start = time.perf_counter()
            assert client.status()["running"] is not None
            timings.append(time.perf_counter() - start)
        # The 100 ms target is measured by the benchmark note; here a loaded CI machine gets slack.
        assert sorted(timings)[len(timings) // 2] < 0.5


def test_engine_survives_a_thousand_bad_lines(engine_ws):
    rng = random.Random(1234)
    samples = [b"", b"{", b"}", b"null", b"[]", b'{"type": 5}', b'{"type": "status", "id": {"x": 1}}',
               b'{"type": "submit", "kind": "diagnostic_count", "params": "x"}', b'{"type": "cancel", "job_id": 3}',
               b'{"type": "subscribe", "from_seq": -5}', b"\x00\x01\x02", "é☃".encode(), b'{"type": "hello", "version": 99}']
    sock, reader = raw_connection(engine_ws)
    for i in range(1000):
        if i % 3 == 0:
            line = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"")
        else:
            line = rng.choice(samples)
        try:
            sock.sendall(line + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            sock, reader = raw_connection(engine_ws)
    sock.close()
    assert_answers(engine_ws)


def test_protocol_abuse(engine_ws):
    # No hello first: refused and disconnected.
    sock, reader = raw_connection(engine_ws, hello=False)
    sock.sendall(b'{"type": "status"}\n')
    assert "hello" in json.loads(reader.readline())["error"]
    sock.close()
    # Wrong protocol version: a clear error.
    sock, reader = raw_connection(engine_ws, hello=False)
    sock.sendall(json.dumps({"type": "hello", "version": PROTOCOL_VERSION + 1}).encode() + b"\n")
    reply = json.loads(reader.readline())
    assert reply["ok"] is False and "protocol" in reply["error"]
    sock.close()
    # A line over the limit: an error, then the connection is closed; the engine lives.
    sock, reader = raw_connection(engine_ws)
    try:
        sock.sendall(b'{"type": "status", "pad": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')
    except (BrokenPipeError, ConnectionResetError):
        pass
    line = reader.readline()
    assert line == b"" or "longer" in json.loads(line)["error"]
    sock.close()
    # A client that disconnects mid-line.
    sock, _ = raw_connection(engine_ws)
    sock.sendall(b'{"type": "sta')
    sock.close()
    # A flood of requests from a client that never reads its replies.
    sock, _ = raw_connection(engine_ws)
    sock.settimeout(5)
    try:
        for _ in range(30000):
            sock.sendall(b'{"type": "status"}\n')
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pass
    sock.close()
    assert_answers(engine_ws)


def test_engine_outlives_the_process_that_started_it(workspace):
    code = f"from engine.launcher import start_engine; from engine.workspace import Workspace; print(start_engine(Workspace({str(workspace.root)!r}))[0])"
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        pid = int(result.stdout.strip())
        time.sleep(0.5)
        assert engine_pid(workspace) == pid
        assert os.getsid(pid) != os.getsid(0)  # its own session: a closed terminal does not reach it
        assert_answers(workspace)
    finally:
        stop_engine(workspace)


def test_kill_9_then_restart_replays_history(workspace):
    try:
        start_engine(workspace)
        final, before = run_job(workspace, "diagnostic_count", {"count": 3, "delay": 0.01})
        with EngineClient(workspace) as client:
            client.submit("diagnostic_count", {"count": 100000, "delay": 0.01})
            deadline = time.monotonic() + 60
            while client.status()["running"] is None and time.monotonic() < deadline:
                time.sleep(0.05)
        pid = engine_pid(workspace)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        assert workspace.socket_path.exists()  # stale socket left behind
        assert engine_pid(workspace) is None
        new_pid, started = start_engine(workspace)
        assert started and new_pid != pid
        with EngineClient(workspace, timeout=10) as client:
            client.subscribe(0)
            replay = []
            while True:
                event = client.next_event(timeout=10)
                replay.append(event)
                if event.TYPE == "engine_started" and event.pid == new_pid:
                    break
        old = {(e.seq, e.TYPE) for e in before}
        assert old <= {(e.seq, e.TYPE) for e in replay}
        interrupted = [e for e in replay if e.TYPE == "job_failed" and "engine stopped" in e.error]
        assert len(interrupted) == 1
        seqs = [e.seq for e in replay]
        assert seqs == sorted(seqs)
        final, _ = run_job(workspace, "diagnostic_count", {"count": 2, "delay": 0.01})
        assert final.TYPE == "job_finished"
    finally:
        stop_engine(workspace)


def test_socket_path_past_the_os_limit_still_works(tmp_path):
    deep = tmp_path
    while len(str(deep)) < 150:
        deep = deep / "a-rather-long-folder-name é"
    ws = make_workspace(deep / "ws")
    assert len(os.fsencode(ws.socket_path)) > 107
    try:
        start_engine(ws)
        final, _ = run_job(ws, "diagnostic_count", {"count": 2, "delay": 0.01})
        assert final.TYPE == "job_finished"
        assert stat.S_IMODE(os.stat(ws.socket_path).st_mode) == 0o600
    finally:
        stop_engine(ws)


def test_unwritable_event_log_and_state_do_not_stop_the_engine(workspace):
    workspace.state_dir.mkdir(exist_ok=True)
    workspace.events_path.symlink_to("/dev/full")  # every write fails with "no space left"
    (workspace.state_dir / "state.lock").mkdir()  # step state cannot be recorded
    try:
        start_engine(workspace)
        with EngineClient(workspace, timeout=30) as client:
            client.subscribe(0)
            job_id = client.submit("diagnostic_count", {"count": 3, "delay": 0.01})["job_id"]
            while True:
                event = client.next_event(timeout=30)
                if event.TYPE == "job_finished" and event.job_id == job_id:
                    break
            assert client.status()["running"] is None
    finally:
        stop_engine(workspace)


def test_interactive_jobs_run_beside_the_main_job_in_a_warm_worker(engine_ws):
    with EngineClient(engine_ws, timeout=60) as client:
        long_job = client.submit("diagnostic_count", {"count": 100000, "delay": 0.01})["job_id"]
        results = []
        for text in ("one", "two"):
            final, _ = run_job(engine_ws, "diagnostic_echo", {"text": text}, timeout=60)
            assert final.TYPE == "job_finished"
            results.append(final.result)
        assert [r["echo"] for r in results] == ["one", "two"]
        assert results[0]["pid"] == results[1]["pid"]  # the same warm process served both
        status = client.status()
        assert status["running"]["job_id"] == long_job  # the main job never waited or stopped
        assert status["interactive"]["running"] is None
        client.cancel(long_job)
