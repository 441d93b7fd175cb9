"""The swapwizard command as a user runs it: exit codes, one-sentence errors, detach and attach."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, SAMPLES, cli, stop_engine

pytestmark = pytest.mark.timeout(180)


def test_new_status_and_errors(tmp_path):
    ws = tmp_path / "w s é"
    result = cli("new", str(ws), "--src", str(SAMPLES / "src.mp4"), "--dst", str(SAMPLES / "dst.mp4"), "--consent")
    assert result.returncode == 0, result.stderr
    status = json.loads(cli("status", str(ws), "--json").stdout)
    assert status["engine"] == "stopped" and status["pid"] is None and status["consent"] is True
    assert status["next_step"] == "extract_src"
    again = cli("new", str(ws))
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
    missing = cli("status", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "hint:" in missing.stderr and "Traceback" not in missing.stderr
    bad = cli("new", str(tmp_path / "x"), "--src", str(tmp_path / "missing.mp4"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_job_commands_exit_codes_detach_and_attach(tmp_path):
    ws = tmp_path / "ws"
    assert cli("new", str(ws)).returncode == 0
    try:
        done = cli("engine", "diagnostic", str(ws), "--count", "5", "--delay", "0.01")
        assert done.returncode == 0, done.stderr
        assert "done" in done.stderr
        detached = cli("engine", "diagnostic", str(ws), "--count", "100000", "--delay", "0.01", "--detach")
        assert detached.returncode == 0 and detached.stdout.strip().startswith("job-")
        status = json.loads(cli("engine", "status", str(ws), "--json").stdout)
        assert status["running"] is True and isinstance(status["pid"], int)
        attach = subprocess.Popen([sys.executable, "-c", "from tui.cli import main; main()", "attach", str(ws)],
                                  stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO)
        first = attach.stderr.readline()
        assert "diagnostic_count started" in first
        assert cli("cancel", str(ws)).returncode == 0
        rest = attach.stderr.read()
        assert attach.wait(timeout=120) == 1 and "cancelled" in rest
        failed = cli("engine", "diagnostic", str(ws), "--count", "-1", "--delay", "abc")
        assert failed.returncode == 2
        assert cli("engine", "stop", str(ws)).returncode == 0
        assert json.loads(cli("engine", "status", str(ws), "--json").stdout)["running"] is False
    finally:
        from engine.workspace import Workspace

        stop_engine(Workspace(ws))


def test_pack_unpack_commands(tmp_path):
    ws = tmp_path / "ws"
    assert cli("new", str(ws), "--src", str(SAMPLES / "src.mp4")).returncode == 0
    assert cli("pack", str(ws), str(tmp_path / "ws.tgz")).returncode == 0
    assert cli("unpack", str(tmp_path / "ws.tgz"), str(tmp_path / "copy")).returncode == 0
    assert (tmp_path / "copy" / "data_src.mp4").exists()
    refused = cli("unpack", str(tmp_path / "ws.tgz"), str(tmp_path / "copy"))
    assert refused.returncode == 2 and "never overwrites" in refused.stderr
