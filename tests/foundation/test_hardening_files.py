"""Issue 18, the file side: what a hostile local user, a shared face set or an unlucky crash did to
workspace files, each reproduced with the real engine on real extracted faces.

Face records that point outside their folder (unpack, pack, sort), a failed ``faceset unpack --force``,
workspace file modes, folders owned by someone else, state files of a wrong shape, checkpoint temp
folders left by a kill, extraction on a full disk, and a re-extraction that fails on a bad ``--track``.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from engine.faces.extract import ExtractSettings, extract_side
from engine.faces.records import read_alignments, write_alignments
from engine.report import NullReporter
from engine.workspace import Workspace
from tests.helpers import make_workspace, run_job, small_tmpfs, stop_engine

pytestmark = pytest.mark.timeout(300)

SMALL = ExtractSettings(size=64, crop_format="jpg")


@pytest.fixture(scope="module")
def faces_ws(tmp_path_factory) -> Workspace:
    """A workspace whose src clip was really extracted (75 faces, 64 px crops); tests work on copies."""
    ws = make_workspace(tmp_path_factory.mktemp("hardening") / "faces ws")
    extract_side(ws, "src", SMALL, NullReporter())
    return ws


def copy_ws(ws: Workspace, target: Path) -> Workspace:
    shutil.copytree(ws.root, target, symlinks=True, ignore=shutil.ignore_patterns("run", "engine.*", "logs"))
    return Workspace(target)


@pytest.fixture
def ws(faces_ws, tmp_path):
    """A private copy of ``faces_ws``; its engine is stopped afterwards."""
    copy = copy_ws(faces_ws, tmp_path / "ws")
    try:
        yield copy
    finally:
        stop_engine(copy)


def job(ws: Workspace, kind: str, params: dict, timeout: float = 120):
    end, _ = run_job(ws, kind, params, timeout=timeout)
    return end


def crops(ws: Workspace, side: str = "src") -> set[str]:
    folder = ws.aligned_dir(side)
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def rewrite_zip(source: Path, target: Path, alignments: bytes | None = None, drop: int = 0) -> Path:
    """A copy of a face-set zip with another alignments.jsonl and/or its first ``drop`` crops left out."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        names = old.namelist()
        skipped = set([n for n in names if n.startswith("aligned/")][:drop])
        for name in names:
            if name in skipped:
                continue
            data = alignments if name == "alignments.jsonl" and alignments is not None else old.read(name)
            new.writestr(name, data)
    return target


def edited_alignments(ws: Workspace, side: str, **changes: str) -> bytes:
    """The side's alignments with record ``int(key[1:])``'s file set to the value (``f0=...``)."""
    header, records = read_alignments(ws.alignments_path(side))
    for key, value in changes.items():
        records[int(key[1:])].file = value
    path = ws.root / "edited.jsonl"
    write_alignments(path, header, records)
    data = path.read_bytes()
    path.unlink()
    return data


# -- 18.1: records that point outside the workspace --------------------------------------------------
@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_faceset_unpack_refuses_a_record_pointing_outside(ws, tmp_path, where):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"the neighbour's private file")
    packed = job(ws, "faceset", {"action": "pack", "side": "src", "file": str(tmp_path / "good.zip")})
    assert packed.TYPE == "job_finished", packed
    # From the staging folder data_src/.unpack-x/, three levels up is tmp_path.
    name = str(secret) if where == "absolute" else "../../../secret.jpg"
    evil = rewrite_zip(tmp_path / "good.zip", tmp_path / "evil.zip", edited_alignments(ws, "src", f0=name))
    fresh = make_workspace(tmp_path / "fresh")
    try:
        end = job(fresh, "faceset", {"action": "unpack", "side": "src", "file": str(evil)})
    finally:
        stop_engine(fresh)
    assert end.TYPE == "job_failed"
    assert "outside its folder" in end.error and "alignments.jsonl" in end.error and end.hint
    assert not fresh.alignments_path("src").exists() and not crops(fresh)
    assert not list(fresh.side_dir("src").glob(".unpack-*"))
    assert secret.read_bytes() == b"the neighbour's private file"


@pytest.mark.parametrize("where", ["absolute", "dotdot", "link"])
def test_faceset_pack_never_ships_a_file_from_outside(ws, tmp_path, where):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"the neighbour's private file")
    if where == "link":
        crop = sorted(ws.aligned_dir("src").iterdir())[0]
        crop.unlink()
        crop.symlink_to(secret)
    else:
        name = str(secret) if where == "absolute" else "../../secret.jpg"  # data_src/../../ is tmp_path
        ws.alignments_path("src").write_bytes(edited_alignments(ws, "src", f0=name))
    target = tmp_path / "out.zip"
    end = job(ws, "faceset", {"action": "pack", "side": "src", "file": str(target)})
    assert end.TYPE == "job_failed" and "outside" in end.error, end
    assert not target.exists()


def test_sort_never_moves_a_file_from_outside(ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.jpg"
    shutil.copy(sorted(ws.aligned_dir("src").iterdir())[0], secret)  # a real image, sortable
    ws.alignments_path("src").write_bytes(edited_alignments(ws, "src", f0="../../outside/secret.jpg"))
    before = crops(ws)
    end = job(ws, "sort", {"side": "src", "by": "blur", "keep": 1})
    assert end.TYPE == "job_failed" and "outside" in end.error, end
    assert secret.is_file() and crops(ws) == before
    assert not (ws.side_dir("src") / "aligned_trash").exists()


# -- 18.2: a failed unpack --force keeps the face set ------------------------------------------------
def test_failed_faceset_unpack_force_keeps_the_existing_set(ws, tmp_path):
    before = crops(ws)
    alignments = ws.alignments_path("src").read_bytes()
    packed = job(ws, "faceset", {"action": "pack", "side": "src", "file": str(tmp_path / "good.zip")})
    assert packed.TYPE == "job_finished", packed
    header_only = alignments.split(b"\n", 1)[0] + b"\n"
    bad = {"header only": rewrite_zip(tmp_path / "good.zip", tmp_path / "h.zip", header_only, drop=10_000),
           "crops missing": rewrite_zip(tmp_path / "good.zip", tmp_path / "m.zip", drop=5)}
    for what, file in bad.items():
        end = job(ws, "faceset", {"action": "unpack", "side": "src", "file": str(file), "force": True})
        assert end.TYPE == "job_failed", (what, end)
        assert crops(ws) == before and ws.alignments_path("src").read_bytes() == alignments, what
        assert not list(ws.side_dir("src").glob(".unpack-*")), what
    # A good one replaces the set, and takes the old set's trash with it.
    assert job(ws, "sort", {"side": "src", "by": "blur", "keep": 70}).TYPE == "job_finished"
    end = job(ws, "faceset", {"action": "unpack", "side": "src", "file": str(tmp_path / "good.zip"), "force": True})
    assert end.TYPE == "job_finished" and end.result["faces"] == 75, end
    assert crops(ws) == before and not (ws.side_dir("src") / "aligned_trash").exists()
    assert not list(ws.side_dir("src").glob(".unpack-*"))


def test_an_unpack_killed_mid_swap_is_undone_by_the_next_one(ws, tmp_path):
    """What a kill between moving the old set aside and moving the new alignments in leaves on disk
    (the old set in the staging folder's .old, the new aligned/ already in place) is put back."""
    before, alignments = crops(ws), ws.alignments_path("src").read_bytes()
    packed = job(ws, "faceset", {"action": "pack", "side": "src", "file": str(tmp_path / "good.zip")})
    assert packed.TYPE == "job_finished", packed
    side = ws.side_dir("src")
    staging = side / ".unpack-killed"
    (staging / ".old").mkdir(parents=True)
    for name in ("aligned", "alignments.jsonl", "tracks"):
        os.replace(side / name, staging / ".old" / name)
    with zipfile.ZipFile(tmp_path / "good.zip") as archive:
        archive.extractall(staging)
    os.replace(staging / "aligned", side / "aligned")  # the new crops were moved in, then the kill
    (side / "aligned" / "stray.jpg").write_bytes(b"new")
    end = job(ws, "faceset", {"action": "unpack", "side": "src", "file": str(tmp_path / "good.zip")})
    assert end.TYPE == "job_failed" and "already has" in end.error, end  # the old set is back: --force needed
    assert crops(ws) == before and ws.alignments_path("src").read_bytes() == alignments
    assert (side / "tracks").is_dir() and not staging.exists()


# -- 18.7: private workspaces ------------------------------------------------------------------------
def modes_of(root: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """{mode: [relative paths]} of the folders and of the files (links and the socket left out)."""
    import stat

    folders: dict[str, list[str]] = {}
    files: dict[str, list[str]] = {}
    for path in [root, *root.rglob("*")]:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or stat.S_ISSOCK(info.st_mode):
            continue
        table = folders if stat.S_ISDIR(info.st_mode) else files
        table.setdefault(oct(stat.S_IMODE(info.st_mode)), []).append(str(path.relative_to(root)))
    return folders, files


@pytest.fixture
def loose_umask():
    old = os.umask(0o002)  # what a careless shell gives: group- and world-readable files
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.timeout(900)
def test_a_new_workspace_is_private_after_extract_train_and_merge(tmp_path, loose_umask):
    from tests.helpers import SAMPLES, cli

    root = tmp_path / "private ws"
    made = cli("new", str(root), "--src", str(SAMPLES / "src.mp4"), "--dst", str(SAMPLES / "dst.mp4"), "--consent")
    assert made.returncode == 0, made.stderr
    ws = Workspace(root)
    ws.update_settings("extract", {"size": 64, "crop_format": "jpg"})
    ws.update_settings("train", {"ae_dims": 32, "e_dims": 8, "d_dims": 8, "d_mask_dims": 4, "batch_size": 4,
                                 "threads": 1, "warmup_iters": 2, "preview_every_min": 60.0, "save_every_min": 60.0})
    try:
        done = cli("run", str(root), "--preset", "tiny", "--iters", "4", timeout=840)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    finally:
        stop_engine(ws)
    folders, files = modes_of(root)
    for wanted in ("data_src/aligned", "model/default", "output", ".swapwizard/logs"):
        assert any(f == wanted for f in folders["0o700"]), wanted
    for wanted in ("data_src.mp4", "workspace.toml", "output/result.mp4", ".swapwizard/events.jsonl",
                   ".swapwizard/logs/engine.log", ".swapwizard/state.json"):
        assert wanted in files["0o600"], wanted
    assert any(f.startswith("data_src/aligned/") for f in files["0o600"])
    assert any(f.endswith(".safetensors") and f.startswith("model/") for f in files["0o600"])
    assert set(folders) == {"0o700"}, {m: paths[:5] for m, paths in folders.items() if m != "0o700"}
    assert set(files) == {"0o600"}, {m: paths[:5] for m, paths in files.items() if m != "0o600"}


def test_share_group_gives_the_group_read_access(faces_ws, tmp_path, loose_umask):
    from tests.helpers import cli

    ws = copy_ws(faces_ws, tmp_path / "shared ws")
    ws.update_settings("workspace", {"share": "group"})
    try:
        opened = cli("status", str(ws.root))
        assert opened.returncode == 0, opened.stderr
        end = job(Workspace.open(ws.root), "extract", {"side": "src", "force": True, "size": 64})
        assert end.TYPE == "job_finished", end
    finally:
        stop_engine(ws)
    folders, files = modes_of(ws.root)
    assert "data_src/aligned" in folders["0o750"] and "." in folders["0o750"]
    assert ".swapwizard" in folders["0o700"]  # the engine's own folder stays owner-only
    assert all(f in files["0o640"] for f in ("data_src/alignments.jsonl", ".swapwizard/state.json",
                                              ".swapwizard/events.jsonl"))
    assert any(f.startswith("data_src/aligned/") for f in files["0o640"])
    assert not any(m.endswith(("4", "6", "7")) for m in (*folders, *files))  # nothing for other users


def test_an_unpacked_workspace_is_private(workspace, tmp_path, loose_umask):
    from engine.pack import pack, unpack

    target = unpack(pack(workspace, tmp_path / "ws.tar.gz"), tmp_path / "unpacked")
    folders, files = modes_of(target)
    assert set(folders) == {"0o700"} and set(files) == {"0o600"}, (folders.keys(), files.keys())
    assert "data_src.mp4" in files["0o600"]


# -- 18.8: folders another user owns -----------------------------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a folder of another user needs root")
NOBODY = 65534


@needs_root
def test_new_refuses_an_empty_folder_another_user_made(tmp_path):
    from tests.helpers import SAMPLES, cli

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    made = cli("new", str(theirs), "--src", str(SAMPLES / "src.mp4"))
    assert made.returncode == 2 and "belongs to another user" in made.stderr, made.stderr
    assert "Traceback" not in made.stderr and not any(theirs.iterdir())


@needs_root
@pytest.mark.parametrize("what", ["workspace", ".swapwizard", "link"])
def test_a_workspace_another_user_owns_is_refused(workspace, tmp_path, what):
    import subprocess
    import sys

    from engine.errors import UserError
    from tests.helpers import REPO, cli

    if what == "workspace":
        os.chown(workspace.root, NOBODY, NOBODY)
    elif what == ".swapwizard":
        os.chown(workspace.state_dir, NOBODY, NOBODY)
    else:  # their folder, linked in place of ours
        elsewhere = tmp_path / "their state"
        elsewhere.mkdir()
        shutil.rmtree(workspace.state_dir)
        workspace.state_dir.symlink_to(elsewhere)
    try:
        for args in (["status"], ["engine", "start"], ["extract"]):
            result = cli(*args, str(workspace.root))
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert "another user" in result.stderr or "is a link" in result.stderr, (args, result.stderr)
            assert "Traceback" not in result.stderr
        served = subprocess.run([sys.executable, "-m", "engine", "serve", str(workspace.root)], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert served.returncode == 2 and "Traceback" not in served.stderr, served.stderr
        with pytest.raises(UserError):
            Workspace.open(workspace.root)
        assert not (workspace.state_dir / "run").exists() or what == "workspace"
    finally:
        stop_engine(workspace)
        os.chown(workspace.root, 0, 0)


# -- 18.9: state files of a wrong shape --------------------------------------------------------------
WRONG_SHAPES = {"a list": "[1, 2]", "steps a list": '{"steps": []}', "a step a string": '{"steps": {"train": "done"}}',
                "a bad status": '{"steps": {"train": {"status": "finished"}}}',
                "an outside result": '{"steps": {"merge": {"status": "done", "result": {"output": "/etc/passwd"}}}}'}


@pytest.mark.parametrize("shape", [*WRONG_SHAPES, "cut short"])
def test_a_damaged_state_file_falls_back_to_the_last_good_copy(workspace, shape):
    from engine.client import EngineClient
    from engine.launcher import start_engine
    from tests.helpers import cli

    workspace.set_step("extract_src", "done", result={"faces": 75})
    good = workspace.state_path.read_text()
    workspace.state_path.write_text(good[: len(good) // 2] if shape == "cut short" else WRONG_SHAPES[shape])
    try:
        start_engine(workspace)  # used to exit at start with AttributeError
        with EngineClient(workspace) as client:
            assert client.status()["steps"]["extract_src"]["status"] == "done"
        shown = cli("status", str(workspace.root))
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
        assert "state.json" in shown.stderr and "last good copy" in shown.stderr, shown.stderr
        assert "extract_src  done" in shown.stdout
    finally:
        stop_engine(workspace)
    assert (workspace.state_dir / "state.json.damaged").is_file()


def test_a_wrong_state_in_an_unpacked_archive_is_reported(workspace, tmp_path):
    from engine.launcher import start_engine
    from engine.pack import pack, unpack
    from tests.helpers import cli

    workspace.state_path.write_text('{"steps": {"train": 5}}')
    workspace.state_backup_path.unlink(missing_ok=True)
    target = unpack(pack(workspace, tmp_path / "ws.tar.gz"), tmp_path / "unpacked")
    ws = Workspace(target)
    try:
        start_engine(ws)
        shown = cli("status", str(target))
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
        assert "state.json" in shown.stderr and "'train'" in shown.stderr and "todo" in shown.stderr
    finally:
        stop_engine(ws)


def test_a_garbage_workspace_toml_is_one_sentence(workspace):
    from tests.helpers import cli

    workspace.config_path.write_text("[extract\nsize = = 5\n")
    for args in (["status"], ["engine", "start"], ["extract"]):
        result = cli(*args, str(workspace.root))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "workspace.toml" in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    stop_engine(workspace)


# -- 18.10 (files): a kill mid-save, a full disk, a bad --track ----------------------------------------
SAVER = """
import sys, torch
from pathlib import Path
from engine.train.checkpoint import CheckpointStore
store = CheckpointStore(Path(sys.argv[1]), keep=1)
weights = {"w": torch.ones(8 * 1024 * 1024)}  # 32 MB: each save takes a while to write and fsync
iteration = 0
while True:
    iteration += 1
    store.save(iteration, weights, {}, {"options": {}})
"""


def test_a_checkpoint_temp_folder_left_by_a_kill_mid_save_is_cleaned(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import torch

    from engine.train.checkpoint import CheckpointStore
    from tests.helpers import REPO

    def half_written(folder):
        """A temp folder with something in it, beside a whole save; it may be renamed away while we look."""
        try:
            temps = list(folder.glob(".tmp-*")) if folder.is_dir() else []
            return bool(temps) and any(folder.glob("it*")) and any(temps[0].iterdir())
        except FileNotFoundError:
            return False

    model = tmp_path / "model"
    folder = model / "checkpoints"
    left: list = []
    for _attempt in range(5):  # the kill can land just after a save completes: then try again
        saver = subprocess.Popen([sys.executable, "-c", SAVER, str(model)], cwd=REPO)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:  # kill it while a save is half written
                if half_written(folder):
                    saver.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.002)
        finally:
            saver.kill()
            saver.wait()
        left = list(folder.glob(".tmp-*"))
        if left:
            break
    assert left, "the kill missed every save"
    store = CheckpointStore(model, keep=1)
    assert store.load(with_optimizer=False) is not None  # the last whole save is still there
    store.save(10_000, {"w": torch.zeros(4)}, {}, {"options": {}})
    assert not list(folder.glob(".tmp-*")) and not any(p.exists() for p in left)


@pytest.mark.parametrize("state", ['{"format": 1, "files": [], "iteration": 2}', '{"format": 1, "files": {"model.safetensors": 5}}',
                                   '{"format": 1, "files": {}, "iteration": "2"}'])
def test_a_checkpoint_state_of_a_wrong_shape_falls_back(tmp_path, state):
    import torch

    from engine.train.checkpoint import CheckpointStore

    store = CheckpointStore(tmp_path / "model")
    store.save(1, {"w": torch.ones(4)}, {}, {"options": {}})
    newest = store.save(2, {"w": torch.zeros(4)}, {}, {"options": {}})
    (newest / "state.json").write_text(state)
    warnings: list[str] = []
    loaded = store.load(warn=warnings.append)
    assert loaded is not None and loaded.state["iteration"] == 1 and "not a swapwizard checkpoint" in warnings[0]


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs: room for a workspace and its sources, not for 75 crops of 512 px."""
    with small_tmpfs(tmp_path / "small disk", "2m") as mount:
        yield mount


def test_extraction_on_a_full_disk_says_so_in_one_sentence(small_disk):
    from tests.helpers import SAMPLES, cli

    root = small_disk / "ws"
    made = cli("new", str(root), "--src", str(SAMPLES / "src.mp4"), "--consent")
    assert made.returncode == 0, made.stderr
    ws = Workspace(root)
    try:
        result = cli("extract", str(root), "--side", "src", timeout=200)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert "disk is full" in result.stderr and "Free some space" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "OSError" not in result.stderr and "Errno" not in result.stderr
        # The step is not left "running" (the state file is small: the engine writes it when it can).
        status = cli("status", str(root), "--json")
        assert json.loads(status.stdout)["steps"]["extract_src"]["status"] == "failed", status.stdout
    finally:
        stop_engine(ws)


def test_a_re_extraction_with_a_bad_track_keeps_the_alignments(ws):
    before = read_alignments(ws.alignments_path("src"))[0]
    end = job(ws, "extract", {"side": "src", "size": 72, "crop_format": "jpg", "track": 99})
    assert end.TYPE == "job_failed" and "no track 99" in end.error, end
    header, records = read_alignments(ws.alignments_path("src"))  # still a whole face set
    assert header["complete"] and len(records) == 75 and all((ws.side_dir("src") / r.file).is_file() for r in records)
    assert header["size"] in (before["size"], 72)
