"""The engine against a hostile local client and against accidents (issue 18: items 3, 4, 8, 10, 11).

Each test reproduces the attack or the accident with a real engine process, real sockets and real
files, and checks what the engine and its clients do about it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine import address
from engine.client import EngineClient, EngineUnavailable
from engine.launcher import engine_pid, start_engine
from engine.protocol import PROTOCOL_VERSION
from engine.server.hub import CLIENT_BUFFER_BYTES, MAX_CONNECTIONS
from engine.server.logs import LOG_BACKUPS, REPEAT_BURST, RepeatFilter
from tests.helpers import REPO, big_event_log, cli, make_workspace, small_tmpfs, stop_engine

pytestmark = pytest.mark.timeout(180)

HELLO = json.dumps({"type": "hello", "version": PROTOCOL_VERSION, "id": 0}).encode() + b"\n"
NOBODY = 65534


def connect(ws, hello=True, timeout=10.0):
    sock = address.connect(ws.socket_path, timeout=timeout)
    reader = sock.makefile("rb")
    if hello:
        sock.sendall(HELLO)
        assert json.loads(reader.readline())["ok"] is True
    return sock, reader


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def set_engine(ws, **values):
    ws.update_settings("engine", values)


# -- 18.10: the handshake ------------------------------------------------------------------------
def test_a_request_before_hello_gets_an_error_and_the_connection_closes(engine_ws):
    sock, reader = connect(engine_ws, hello=False)
    sock.sendall(b'{"type": "status", "id": 1}\n')
    reply = json.loads(reader.readline())
    assert reply["ok"] is False and "hello" in reply["error"]
    assert reader.readline() == b""  # closed
    sock.close()
    # Garbage as the first line: the same.
    sock, reader = connect(engine_ws, hello=False)
    sock.sendall(b"{{{\n")
    assert json.loads(reader.readline())["ok"] is False
    assert reader.readline() == b""
    sock.close()


# -- 18.4: nesting, buffers, connections, timeouts, logs ---------------------------------------------
def test_deeply_nested_json_gets_one_line_and_costs_the_log_nothing(engine_ws):
    sock, reader = connect(engine_ws)
    log_before = engine_ws.engine_log_path.stat().st_size
    deep = b'{"type": "status", "id": 7, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    for _ in range(100):
        sock.sendall(deep)
        reply = json.loads(reader.readline())
        assert reply["ok"] is False and "nested too deeply" in reply["error"] and reply["id"] is None
    sock.sendall(b'{"type": "status", "id": 8}\n')  # the connection is still good
    assert json.loads(reader.readline())["id"] == 8
    sock.close()
    grown = engine_ws.engine_log_path.stat().st_size - log_before
    assert grown < 100 * 20, f"the log grew {grown} bytes for 100 bad requests"
    assert "Traceback" not in engine_ws.engine_log_path.read_text(errors="replace")


def test_ten_subscribers_that_never_read_keep_the_engine_small(workspace):
    big_event_log(workspace, 120_000, 150)  # about 25 MB of history for each of them to replay
    try:
        start_engine(workspace)
        pid = engine_pid(workspace)
        base = rss_mb(pid)
        held = []
        for _ in range(10):
            sock, reader = connect(workspace)
            sock.sendall(b'{"type": "subscribe", "id": 1, "from_seq": 0}\n')
            held.append(sock)
        time.sleep(3)
        with EngineClient(workspace, timeout=10) as client:
            assert client.status()["clients"] >= 10
        grown = rss_mb(pid) - base
        assert grown < 60, f"10 non-reading subscribers grew the engine by {grown:.0f} MB"  # was 127-175 MB
        for sock in held:
            sock.close()
    finally:
        stop_engine(workspace)


def test_a_subscriber_that_falls_behind_is_dropped_and_told_why(engine_ws):
    sock, reader = connect(engine_ws)
    sock.sendall(b'{"type": "subscribe", "id": 1, "from_seq": 999999999}\n')
    text = "y" * 400_000  # in the events of each echo job (queued, and for those that run: started, log, finished)
    with EngineClient(engine_ws, timeout=30) as client:
        for _ in range(3 * CLIENT_BUFFER_BYTES // len(text)):
            client.submit("diagnostic_echo", {"text": text})
    last = None
    sock.settimeout(20)
    for line in reader:  # what the socket holds, then the engine's last word, then the end
        last = line
    message = json.loads(last)
    assert message["type"] == "error" and "fell more than" in message["error"] and message["hint"]
    sock.close()
    with EngineClient(engine_ws) as client:  # the engine is fine
        assert client.status()["pid"] == engine_pid(engine_ws)


def test_connection_limit_and_hello_timeout(workspace):
    set_engine(workspace, connection_idle_s=2.0)
    held = []
    try:
        start_engine(workspace)
        for _ in range(MAX_CONNECTIONS + 40):  # never say hello
            held.append(address.connect(workspace.socket_path, timeout=10))
        # A real client still gets in: the oldest silent connections make room.
        start = time.monotonic()
        with EngineClient(workspace, timeout=10) as client:
            status = client.status()
        assert status["clients"] <= MAX_CONNECTIONS and time.monotonic() - start < 10
        # The silent ones are told why and closed within the hello timeout.
        reasons = set()
        for sock in held:
            sock.settimeout(15)
            data = sock.makefile("rb").read()
            reasons.add(json.loads(data.splitlines()[-1])["error"].split(":")[0])
        assert reasons <= {"Closed"}
    finally:
        for sock in held:
            sock.close()
        stop_engine(workspace)


def test_an_idle_connection_is_closed_but_a_subscriber_is_not(workspace):
    set_engine(workspace, connection_idle_s=2.0)
    try:
        start_engine(workspace)
        idle, idle_reader = connect(workspace)
        follower, follower_reader = connect(workspace)
        follower.sendall(b'{"type": "subscribe", "id": 1, "from_seq": 999999999}\n')
        assert json.loads(follower_reader.readline())["ok"] is True
        time.sleep(3.5)
        idle.settimeout(10)
        assert "no request" in json.loads(idle_reader.readline())["error"]
        assert idle_reader.readline() == b""
        with EngineClient(workspace) as client:
            job_id = client.submit("diagnostic_count", {"count": 1, "delay": 0})["job_id"]
        follower.settimeout(10)
        assert json.loads(follower_reader.readline())["job_id"] == job_id
        idle.close()
        follower.close()
    finally:
        stop_engine(workspace)


def test_engine_log_is_rotated_and_bounded(workspace):
    workspace.log_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(LOG_BACKUPS + 2):
        with open(workspace.engine_log_path, "ab") as handle:
            handle.write(b"old line\n" * 700_000)  # 6.3 MB: over the size limit
        start_engine(workspace)
        stop_engine(workspace)
        assert workspace.engine_log_path.stat().st_size < 1 << 20
    logs = sorted(p.name for p in workspace.log_dir.iterdir())
    assert logs == ["engine.log"] + [f"engine.log.{i}" for i in range(1, LOG_BACKUPS + 1)]


def test_repeated_log_lines_are_rate_limited(tmp_path):
    path = tmp_path / "x.log"
    handler = logging.FileHandler(path)
    handler.addFilter(RepeatFilter(window_s=0.5))
    logger = logging.getLogger("test.repeat")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(1000):
            logger.warning("refused a connection from uid %s", i)
        time.sleep(0.6)
        logger.warning("refused a connection from uid %s", 0)
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = path.read_text().splitlines()
    assert len(lines) == REPEAT_BURST + 1
    assert "995 more like this" in lines[-1]


# -- 18.3: a busy engine is not a stopped one ------------------------------------------------------------
@pytest.fixture
def flood():
    """Connections that fill an engine's accept queue; closed when the test ends."""
    held: list[socket.socket] = []
    yield held
    for sock in held:
        sock.close()


@contextmanager
def frozen_with_full_queue(ws, flood):
    """The engine stopped (SIGSTOP) and its accept queue filled with ``flood`` connections until the kernel
    says EAGAIN; it goes on (SIGCONT) on leaving."""
    pid = engine_pid(ws)
    os.kill(pid, signal.SIGSTOP)
    try:
        while len(flood) < 5000:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(str(ws.socket_path))
            except BlockingIOError:
                sock.close()
                break
            flood.append(sock)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_frozen_engine_with_a_full_accept_queue_reads_busy_not_stopped(engine_ws, flood):
    with frozen_with_full_queue(engine_ws, flood):
        assert 100 < len(flood) < 5000
        commands = [subprocess.Popen([sys.executable, "-c", "from tui.cli import main; main()", *args],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                    for args in (("status", str(engine_ws.root)), ("cancel", str(engine_ws.root)))]
        time.sleep(2.5)  # they find the queue full and retry
    status, cancel = (c.communicate(timeout=60)[0] for c in commands)
    assert "engine: running" in status and "stopped" not in status, status
    assert "No job is running" in cancel and "Traceback" not in cancel, cancel


def test_a_client_retries_a_full_queue_then_says_busy_without_a_traceback(engine_ws, flood):
    with frozen_with_full_queue(engine_ws, flood):
        start = time.monotonic()
        with pytest.raises(EngineUnavailable, match="busy"):
            EngineClient(engine_ws, connect_wait=1.5).connect()
        assert time.monotonic() - start >= 1.4


def test_five_concurrent_starts_make_one_engine(workspace):
    try:
        starts = [subprocess.Popen([sys.executable, "-m", "engine", "start", str(workspace.root)], cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(5)]
        outputs = [s.communicate(timeout=90)[0] for s in starts]
        pid = engine_pid(workspace)
        assert sum("engine started" in o for o in outputs) == 1, outputs
        assert sum("already running" in o for o in outputs) == 4, outputs
        assert all(f"(pid {pid})" in o for o in outputs), outputs
    finally:
        stop_engine(workspace)


# -- 18.10: interrupted steps, full disk --------------------------------------------------------------------
def test_status_without_an_engine_shows_a_running_step_as_interrupted(workspace):
    start_engine(workspace)
    pid = engine_pid(workspace)
    workspace.set_step("extract_src", "running", job_id="job-1")  # what the engine had recorded
    os.kill(pid, signal.SIGKILL)
    assert gone(pid, 10)
    result = cli("status", str(workspace.root), "--json")
    report = json.loads(result.stdout)
    assert report["engine"] == "stopped"
    assert report["steps"]["extract_src"]["status"] == "failed"
    assert "interrupted" in report["steps"]["extract_src"]["error"]
    text = cli("status", str(workspace.root)).stdout
    assert "running" not in text.split("engine:")[1], text


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path / "disk", "3m") as mount:
        yield mount


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_gives_one_sentence_and_leaves_no_step_running(small_disk):
    ws = make_workspace(small_disk / "ws")
    try:
        start_engine(ws)
        filler = _fill(small_disk)
        with EngineClient(ws, timeout=120) as client:
            last = client.status()["last_seq"]
            job_id = client.submit("extract", {"side": "both"})["job_id"]
            client.subscribe(last + 1)
            while True:
                event = client.next_event(timeout=120)
                if getattr(event, "job_id", None) == job_id and event.TYPE in ("job_failed", "job_finished"):
                    break
            assert event.TYPE == "job_failed"
            assert "disk is full" in event.error and "Errno" not in event.error and event.hint
            steps = client.status()["steps"]
            assert steps["extract_src"]["status"] == "failed", steps["extract_src"]
        filler.unlink()  # space again: the engine writes the step states it kept
        deadline = time.monotonic() + 15
        while ws.steps()["extract_src"]["status"] != "failed":
            assert time.monotonic() < deadline, ws.steps()
            time.sleep(0.2)
        assert ws.steps()["extract_dst"]["status"] != "running"
    finally:
        stop_engine(ws)


# -- 18.11: engines do not outlive their workspace --------------------------------------------------------
def test_engine_exits_when_its_folder_is_deleted(workspace):
    start_engine(workspace)
    pid = engine_pid(workspace)
    shutil.rmtree(workspace.root)
    assert gone(pid, 40), "the engine of a deleted workspace still runs"


def test_engine_exits_when_its_folder_is_replaced_and_leaves_the_new_one_alone(workspace, tmp_path):
    start_engine(workspace)
    old_pid = engine_pid(workspace)
    workspace.root.rename(tmp_path / "moved")
    fresh = make_workspace(workspace.root)
    try:
        new_pid, started = start_engine(fresh)
        assert started and new_pid != old_pid
        assert gone(old_pid, 40), "the engine of a replaced workspace still runs"
        with EngineClient(fresh) as client:  # its socket and pid file were left alone
            assert client.status()["pid"] == new_pid
        assert int(fresh.pid_path.read_text()) == new_pid
    finally:
        stop_engine(fresh)


def test_an_idle_engine_exits_but_not_while_a_job_runs(workspace):
    set_engine(workspace, idle_exit_min=0.05)  # 3 s
    try:
        start_engine(workspace)
        pid = engine_pid(workspace)
        with EngineClient(workspace) as client:
            client.submit("diagnostic_count", {"count": 70, "delay": 0.1})  # about 7 s
        assert not gone(pid, 5), "the engine left while its job ran"
        assert gone(pid, 40), "the idle engine did not exit"
        assert engine_pid(workspace) is None
    finally:
        stop_engine(workspace)


# -- 18.8: the peer of the socket ---------------------------------------------------------------------------
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")


@pytest.fixture
def reachable_workspace():
    """A workspace whose folders another user may pass through (as a careless umask or chmod leaves them)."""
    top = Path(tempfile.mkdtemp(prefix="swapwizard-peer-", dir="/tmp"))
    ws = make_workspace(top / "ws")
    ws.socket_dir.mkdir(parents=True, exist_ok=True)
    for folder in (top, ws.root, ws.state_dir):
        os.chmod(folder, 0o711)
    try:
        yield ws
    finally:
        stop_engine(ws)
        shutil.rmtree(top, ignore_errors=True)


@root_only
def test_a_socket_served_by_another_user_is_refused(reachable_workspace):
    ws = reachable_workspace
    os.chown(ws.socket_dir, NOBODY, NOBODY)  # the folder fell into someone else's hands
    code = (f"import os, socket; os.setgid({NOBODY}); os.setuid({NOBODY}); "
            f"s = socket.socket(socket.AF_UNIX); s.bind({str(ws.socket_path)!r}); s.listen(); "
            "print('ready', flush=True); c, _ = s.accept(); print('HEARD', c.recv(1000), flush=True)")
    fake = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout.readline().strip() == "ready"
        with pytest.raises(EngineUnavailable, match="another user"):
            EngineClient(ws).connect()
    finally:
        fake.kill()
        out = fake.communicate()[0]
    assert "HEARD b'{" not in out  # not a byte of hello was sent to it


@root_only
def test_the_engine_refuses_connections_from_another_user(reachable_workspace):
    ws = reachable_workspace
    start_engine(ws)
    for folder in (ws.root, ws.state_dir, ws.socket_dir):  # modes loosened by accident: the peer check holds
        os.chmod(folder, 0o711)
    os.chmod(ws.socket_path, 0o666)
    code = (f"import os, socket; os.setgid({NOBODY}); os.setuid({NOBODY}); "
            f"s = socket.socket(socket.AF_UNIX); s.connect({str(ws.socket_path)!r}); "
            "import time; time.sleep(0.2)\n"
            f"try: s.sendall({HELLO!r})\nexcept BrokenPipeError: pass\n"  # it may have hung up already
            "f = s.makefile('rb'); print(f.readline().decode().strip()); print(repr(f.readline()))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert "only its owner" in json.loads(first)["error"]
    assert second == "b''"
    with EngineClient(ws) as client:  # its owner still gets in
        assert client.status()["pid"] == engine_pid(ws)
