"""Issue 24, the third hardening round: archives that reach out, bombs, replay by bytes, small leaks.

Each test reproduces what broke with the real engine, real sockets, real archives and images, and
checks what happens now (each failed on the main of 2026-12-07).
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from engine.errors import UserError
from engine.launcher import engine_pid, start_engine
from engine.pack import pack, unpack
from engine.settings import SETTINGS
from engine.workspace import Workspace
from tests.foundation.test_hardening_engine import connect, rss_mb
from tests.helpers import SAMPLES, big_event_log, cli, small_tmpfs, stop_engine, stuck_subscribers, tar_of

pytestmark = pytest.mark.timeout(180)

# -- 24.2: replay by bytes, a subscriber that reads nothing is let go, and so is its memory --------------
def test_eight_subscribers_that_never_read_big_events_are_let_go_and_their_memory_too(workspace):
    workspace.update_settings("engine", {"connection_idle_s": 2.0, "events_max_mb": 1000.0})
    big_event_log(workspace, 300, 100_000)  # 30 MB of history, 100 kB an event
    try:
        start_engine(workspace)
        pid = engine_pid(workspace)
        base = rss_mb(pid)
        held = stuck_subscribers(workspace, 8)
        peak = base
        for _ in range(6):
            time.sleep(0.5)
            peak = max(peak, rss_mb(pid))
        assert peak - base < 60, f"8 stuck subscribers grew the engine by {peak - base:.0f} MB"  # was 265 MB
        for sock in held:  # each is told why it was let go, after what it had been sent
            sock.settimeout(60)
            last = b""
            for line in sock.makefile("rb"):
                last = line
            assert "took nothing the engine sent for 2 s" in json.loads(last)["error"]
            sock.close()
        deadline = time.monotonic() + 30
        while rss_mb(pid) - base > 20 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert rss_mb(pid) - base <= 20, f"{rss_mb(pid) - base:.0f} MB stayed after they had gone"  # was 100 MB
    finally:
        stop_engine(workspace)


# -- 24.3: an archive may not make swapwizard contact a server or read a file outside ----------------
def test_every_setting_that_names_a_file_or_a_server_is_declared_so():
    """The audit: a text setting whose help speaks of a path, file, folder, URL or server is marked
    ``reaches`` (so an archive cannot bring it), and the four known ones are."""
    reaching = {s.name: s.reaches for s in SETTINGS if s.reaches}
    assert {"[merge] audio": "path", "[c2pa] cert": "path", "[c2pa] key": "path",
            "[c2pa] timestamp_url": "url"}.items() <= reaching.items()
    assert set(reaching.values()) <= {"path", "url"}
    words = re.compile(r"(?i)\b(path|file|folder|url|server|https?|address|host)\b")
    for s in SETTINGS:
        if s.type is str and not s.choices and not s.reaches:
            assert not words.search(s.help), f"{s.name} seems to name a file or a server: declare reaches="


def test_an_archive_that_reaches_out_unpacks_without_those_settings(tmp_path):
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4")
    ws.update_settings("c2pa", {"timestamp_url": "http://attacker.example/tsa", "cert": "/home/someone/cert.pem",
                                "key": "~/.ssh/id_ed25519"})
    ws.update_settings("merge", {"audio": "../voice.m4a", "crf": 20})
    heard: list[str] = []
    moved = Workspace.open(unpack(pack(ws, tmp_path / "ws.tgz"), tmp_path / "copy", notice=heard.append))
    c2pa, merge = moved.section("c2pa"), moved.section("merge")
    assert (c2pa["timestamp_url"], c2pa["cert"], c2pa["key"], merge["audio"]) == ("", "", "", "")
    assert merge["crf"] == 20  # the rest of the file travels as it was
    assert len(heard) == 1 and "timestamp_url = 'http://attacker.example/tsa'" in heard[0]
    assert "[merge] audio = '../voice.m4a'" in heard[0] and "[c2pa] key" in heard[0]
    assert "http://attacker" not in moved.config_path.read_text()
    assert not moved.config_backup_path.exists()


def test_an_archive_whose_settings_stay_inside_keeps_them_and_says_nothing(tmp_path):
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4")
    ws.update_settings("c2pa", {"cert": "keys/cert.pem", "key": "keys/key.pem"})
    ws.update_settings("merge", {"audio": "none"})
    heard: list[str] = []
    moved = Workspace.open(unpack(pack(ws, tmp_path / "ws.tgz"), tmp_path / "copy", notice=heard.append))
    assert moved.section("c2pa")["cert"] == "keys/cert.pem" and moved.section("merge")["audio"] == "none"
    assert heard == []


def test_the_cli_says_what_it_left_out(tmp_path):
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4")
    ws.update_settings("c2pa", {"timestamp_url": "http://127.0.0.1:9/tsa"})
    pack(ws, tmp_path / "ws.tgz")
    done = cli("unpack", str(tmp_path / "ws.tgz"), str(tmp_path / "copy"))
    assert done.returncode == 0, done.stderr
    assert "notice: Left out" in done.stderr and "timestamp_url" in done.stderr and "Traceback" not in done.stderr
    assert Workspace.open(tmp_path / "copy").section("c2pa")["timestamp_url"] == ""


# -- 24.5: model archives, units ---------------------------------------------------------------------
@pytest.mark.parametrize("entries", [
    [("swapwizard-model", None), ("swapwizard-model/workspace.toml", b"[c2pa]\ntimestamp_url = 'http://x'\n")],
    [("swapwizard-model", None)],
])
def test_a_model_archive_without_a_model_folder_is_refused(workspace, tmp_path, entries):
    archive = tar_of(tmp_path / "model.tgz", entries)
    with pytest.raises(UserError, match="nothing was unpacked") as refused:
        unpack(archive, workspace.root)
    assert "pack WS FILE --model NAME" in refused.value.hint
    assert workspace.model_names() == [] and not list(workspace.models_root.glob(".unpack-*"))


def test_the_size_limit_is_said_in_the_units_of_its_option(tmp_path):
    # One header claiming a file a byte over 256 GiB (no data follows: the limit refuses it first).
    info = tarfile.TarInfo("ws/huge")
    info.size = (256 << 30) + 1
    (tmp_path / "claims.tar").write_bytes(info.tobuf(format=tarfile.GNU_FORMAT))
    with pytest.raises(UserError, match=r"more than 256 GiB; nothing was unpacked"):
        unpack(tmp_path / "claims.tar", tmp_path / "u")
    shown = " ".join(cli("unpack", "--help").stdout.split())
    assert "many GiB" in shown and "[default: 256.0]" in shown


# -- 24.5: NaN in a request, a long error in status ----------------------------------------------------
@pytest.mark.parametrize(("params", "said"), [('{"lr": NaN}', "params.lr is NaN"),
                                              ('{"a": [1, -Infinity]}', "params.a[1] is -Infinity"),
                                              ('{"lr": 1e999}', "params.lr is 1e999 (too large)")])
def test_a_non_finite_number_in_a_request_names_its_field(engine_ws, params, said):
    sock, reader = connect(engine_ws)
    sock.sendall(b'{"type": "submit", "id": 3, "kind": "train", "params": ' + params.encode() + b"}\n")
    reply = json.loads(reader.readline())
    assert reply["ok"] is False and reply["error"].startswith(said) and "finite" in reply["hint"], reply
    sock.sendall(b'{"type": "status", "id": 4}\n')  # the connection is still good
    assert json.loads(reader.readline())["id"] == 4
    sock.close()
    assert "Traceback" not in engine_ws.engine_log_path.read_text(errors="replace")


def test_status_cuts_a_long_error_and_says_where_the_whole_one_is(workspace):
    workspace.set_step("train", "failed", error="The train job failed: " + "[/x] " * 180_000)
    done = cli("status", str(workspace.root))
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.strip().startswith("train"))
    assert len(line) < 600 and "cut from 900,022 characters" in line and "--json" in line, line
    whole = json.loads(cli("status", str(workspace.root), "--json").stdout)
    assert len(whole["steps"]["train"]["error"]) == 900_022


# -- 24.4: masks import checks what each file is before decoding it ---------------------------------
def _png_header(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR (8-bit greyscale) claiming ``width`` x ``height``, and no pixels."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + \
        zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big")


@pytest.fixture
def painted(workspace, tmp_path):
    """A dst side with two 64 px crops (a and b) and a folder holding a good mask of a."""
    from PIL import Image

    aligned = workspace.side_dir("dst") / "aligned"
    aligned.mkdir(parents=True)
    for name in ("a", "b"):
        Image.new("RGB", (64, 64), (90, 80, 70)).save(aligned / f"{name}.jpg")
    workspace.alignments_path("dst").write_text("{}\n")
    folder = tmp_path / "masks"
    folder.mkdir()
    Image.new("L", (64, 64), 255).save(folder / "a_mask.png")
    return workspace, folder


def _masks_import(ws: Workspace, folder: Path):
    return cli("masks", "import", str(ws.root), str(folder), "--no-retrain")


def test_masks_import_refuses_a_huge_png_from_its_header(painted):
    ws, folder = painted
    (folder / "b_mask.png").write_bytes(_png_header(20_000, 20_000))
    done = _masks_import(ws, folder)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr  # was DecompressionBombError
    assert "b_mask.png is 20000 x 20000 pixels, but its face crop is 64 x 64" in " ".join(done.stderr.split())


def test_masks_import_refuses_a_jpeg_named_png(painted):
    from PIL import Image

    ws, folder = painted
    Image.new("L", (64, 64), 255).save(folder / "b_mask.png", format="JPEG")
    done = _masks_import(ws, folder)
    assert done.returncode == 2 and "b_mask.png is a JPEG image named .png" in done.stderr, done.stderr


@pytest.mark.parametrize("what", ["link", "folder", "fifo"])
def test_masks_import_says_what_is_not_a_mask_file(painted, tmp_path, what):
    from PIL import Image

    ws, folder = painted
    target = folder / "b_mask.png"
    if what == "link":
        Image.new("L", (64, 64), 255).save(tmp_path / "outside.png")
        target.symlink_to(tmp_path / "outside.png")
    elif what == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    done = _masks_import(ws, folder)
    said = {"link": "is a link", "folder": "is a folder", "fifo": "is not a regular file"}[what]
    assert done.returncode == 2 and f"b_mask.png in {folder} {said}; nothing was imported" in \
        " ".join(done.stderr.split()), done.stderr


# -- 24.4: a face set's crops are checked to be the images their names say, before anything is written --
def _jpeg(size: int = 64, fmt: str = "JPEG") -> bytes:
    from PIL import Image

    data = io.BytesIO()
    Image.new("RGB", (size, size), (120, 100, 90)).save(data, format=fmt)
    return data.getvalue()


def faceset_zip(path: Path, crops: dict[str, bytes], size: int = 64, records: bytes = b"{}\n") -> Path:
    """A face-set zip as pack writes one (manifest, records, crops), with the crops given."""
    manifest = {"format": 1, "kind": "swapwizard-faceset", "side": "src", "faces": len(crops), "size": size}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("faceset.json", json.dumps(manifest))
        archive.writestr("alignments.jsonl", records)
        for name, data in crops.items():
            archive.writestr(f"aligned/{name}", data)
    return path


def _zeros(size: int) -> bytes:
    return bytes(size)


@pytest.mark.parametrize(("crops", "said"), [
    ({"0.jpg": _zeros(64 << 20)}, "aligned/0.jpg is not a JPEG image"),  # 64 MB of zeros, 65 kB zipped
    ({"0.jpg": _jpeg(fmt="PNG")}, "aligned/0.jpg is not a JPEG image"),
    ({"0.png": _jpeg()}, "aligned/0.png is not a PNG image"),
    ({"0.jpg": _jpeg(96)}, "aligned/0.jpg is 96 x 96 pixels, not 64 x 64"),
    ({"0.jpg": _jpeg() + _zeros(32 << 20)}, "aligned/0.jpg is 33.6 MB, more than a 64 x 64 image can be"),
])
def test_a_face_set_crop_that_is_not_its_image_is_refused_before_it_is_written(workspace, tmp_path, crops, said):
    from engine.faces.faceset import unpack as unpack_faceset

    archive = faceset_zip(tmp_path / "set.zip", crops)
    assert archive.stat().st_size < 2 << 20
    with pytest.raises(UserError, match=re.escape(said)):
        unpack_faceset(workspace, "src", archive)
    assert not workspace.alignments_path("src").exists()
    assert [p.name for p in workspace.side_dir("src").iterdir()] == ["README.md"]  # as the template made it


def test_a_face_set_whose_records_are_a_bomb_is_refused_unread(workspace, tmp_path):
    from engine.faces.faceset import unpack as unpack_faceset

    archive = faceset_zip(tmp_path / "set.zip", {"0.jpg": _jpeg()}, records=b"{}" + b" " * (20 << 20))
    with pytest.raises(UserError, match="alignments.jsonl is 21.0 MB, far more than a face set holds"):
        unpack_faceset(workspace, "src", archive)


def test_a_face_set_bigger_than_the_free_space_is_refused_before_writing(tmp_path):
    from engine.faces.faceset import unpack as unpack_faceset

    with small_tmpfs(tmp_path / "small disk", "2m") as mount:
        ws = Workspace.create(mount / "ws")
        crop = _jpeg() + _zeros(1_000_000)  # within what a 64 px crop may weigh; three do not fit in 2 MB
        archive = faceset_zip(tmp_path / "set.zip", {f"{i}.jpg": crop for i in range(3)})
        with pytest.raises(UserError, match="unpacks to 3 MB but .* has only [0-9] MB free; nothing was changed"):
            unpack_faceset(ws, "src", archive)
        assert not (ws.side_dir("src") / "aligned").exists() and not list(ws.side_dir("src").glob(".unpack-*"))


# -- 24.5: a failed faceset unpack --force leaves the side's step as it was ---------------------------
def test_a_failed_faceset_unpack_leaves_the_extract_step_as_it_was(engine_ws, tmp_path):
    from tests.helpers import run_job

    engine_ws.set_step("extract_src", "done", result={"faces": 75})
    archive = faceset_zip(tmp_path / "bad.zip", {"0.jpg": _zeros(1 << 20)})
    end, _ = run_job(engine_ws, "faceset", {"action": "unpack", "side": "src", "file": str(archive), "force": True})
    assert end.TYPE == "job_failed" and "not a JPEG image" in end.error, end
    assert engine_ws.steps()["extract_src"]["status"] == "done"  # was: failed, with the faces intact


# -- 24.5: serve --host 0.0.0.0 prints a URL that works, and takes the machine's own address --------
def test_serve_on_every_address_prints_a_usable_url_and_accepts_its_own_address(workspace):
    import http.client
    import signal
    import subprocess
    import sys

    from tests.helpers import REPO

    proc = subprocess.Popen([sys.executable, "-c", "from tui.cli import main; main()", "serve", str(workspace.root),
                             "--port", "0", "--host", "0.0.0.0", "--no-engine"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "token=" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"http://([^/\s]+):(\d+)/\?token=([\w-]+)", line)
        assert found, line
        host, port, token = found.groups()
        assert host not in ("127.0.0.1", "0.0.0.0"), line  # was 127.0.0.1, then its own address was refused

        def get(host_header: str) -> int:
            connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=20)
            try:
                connection.request("GET", f"/api/state?token={token}", headers={"Host": host_header})
                return connection.getresponse().status
            finally:
                connection.close()

        assert get(f"{host}:{port}") == 200
        assert get(f"127.0.0.1:{port}") == 200
        assert get(f"evil.example:{port}") == 403 and get(f"8.8.8.8:{port}") == 403  # rebinding stays refused
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=20)


# -- 24.5: the event log's bound is firm, and compacting it takes little memory ---------------------
def test_the_event_log_never_passes_its_bound_whatever_its_events_weigh(tmp_path):
    from engine.events import EventLog

    bound = 256 << 10
    log = EventLog(tmp_path / "events.jsonl", max_bytes=bound)
    biggest = 0
    for size in (100, 5_000, 60_000, 400_000):  # up to an echo job whose text is bigger than the bound
        text = "y" * size
        for j in range(12):
            job_id = f"job-{size}-{j}"
            log.append("job_queued", job_id=job_id, kind="diagnostic_echo", params={"text": text})
            log.append("job_started", job_id=job_id, kind="diagnostic_echo", params={"text": text}, pid=1)
            _, line = log.append("job_finished", job_id=job_id, result={"text": text})
            assert len(line) > size  # clients following live get the event whole
            biggest = max(biggest, log.path.stat().st_size)
    assert biggest <= bound, f"the log reached {biggest} bytes, over its {bound} bound"  # was 1.4 times it
    log.close()
    events = [json.loads(line) for line in log.path.read_bytes().splitlines()]
    last = events[-1]
    assert last["type"] == "job_finished" and last["job_id"] == "job-400000-11"
    assert "characters cut" in last["result"]["text"] and len(last["result"]["text"]) < bound // 16


def test_compacting_a_big_log_takes_little_memory(tmp_path):
    """16 MB of a training's metrics at a 16 MB bound, compacted in a fresh process: its peak RSS."""
    import subprocess
    import sys

    from tests.helpers import REPO

    path = tmp_path / "events.jsonl"
    with open(path, "w") as handle:  # the engine's own line format (engine.protocol.encode)
        seq = 0
        while handle.tell() < 16_000_000:
            seq += 1
            values = {"iter": seq * 10, "loss_src": 1.0 / (1 + seq / 1e3), "loss_dst": 0.5, "lr": 5e-5}
            handle.write(json.dumps({"seq": seq, "time": 1.0 * seq, "job_id": "job-train", "values": values,
                                     "type": "metrics"}, separators=(",", ":")) + "\n")
    code = ("import json, resource, sys; from pathlib import Path; from engine.events import EventLog\n"
            "log = EventLog(Path(sys.argv[1]), max_bytes=16 << 20)\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "assert log.compact()\n"
            "print(json.dumps([before / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO,
                          timeout=170)
    assert done.returncode == 0, done.stderr
    before, peak = json.loads(done.stdout)
    assert peak - before < 40, f"compacting 16 MB of events took {peak - before:.0f} MB"  # was 82 MB
    kept = [json.loads(line) for line in path.read_bytes().splitlines()]
    iters = [event["values"]["iter"] for event in kept]
    assert 64 <= len(kept) <= 4000 and iters == sorted(iters) and iters[-1] == seq * 10


# -- 24.1 (the engine's part): a model name that would fail later is refused when the job is asked for -
def test_a_model_name_that_cannot_be_a_folder_is_refused_before_a_job_is_queued(engine_ws):
    from engine.client import EngineClient

    done = cli("train", str(engine_ws.root), "--model", "[/x]")
    assert done.returncode == 2 and "is not a valid model name" in done.stderr and "Traceback" not in done.stderr
    with EngineClient(engine_ws) as client, pytest.raises(UserError, match=r"\[train\] model = '\[/x\]'"):
        client.submit("train", {"model": "[/x]", "preset": "tiny"})
    with EngineClient(engine_ws) as client:
        assert client.status()["queue"] == [] and client.status()["running"] is None
