"""Extraction jobs through the real engine and CLI; check report, sort tools and face sets."""

from __future__ import annotations

import json
import zipfile

import pytest

from engine.errors import UserError
from engine.faces.check import check_workspace, write_report
from engine.faces.faceset import pack, unpack
from engine.faces.records import load_header, present_faces
from engine.faces.sort import restore, sort_faces
from tests.helpers import cli, run_job, stop_engine

pytestmark = pytest.mark.timeout(240)


def test_extract_and_check_through_the_engine_and_cli(engine_ws):
    final, events = run_job(engine_ws, "extract", {"side": "both", "size": 128}, timeout=180)
    assert final.TYPE == "job_finished", final
    assert final.result["src_faces"] == 75 and final.result["dst_faces"] == 75
    progress = [e for e in events if e.TYPE == "progress"]
    assert {e.stage for e in progress} == {"extract_src", "extract_dst"}
    assert all(e.total == 75 for e in progress) and any(e.rate > 0 and e.eta_s is not None for e in progress)
    steps = engine_ws.steps()
    assert steps["extract_src"]["status"] == "done" and steps["extract_dst"]["status"] == "done"
    # The size used is saved in workspace.toml for the next run and the wizard.
    assert engine_ws.section("extract")["size"] == 128

    done = cli("check", str(engine_ws.root), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # stdout is pure JSON
    assert report["sides"]["src"]["faces"] == 75 and report["sides"]["dst"]["faces"] == 75
    assert 0 <= report["coverage"]["score"] <= 1
    assert (engine_ws.root / "check" / "contact_sheet.png").stat().st_size > 1000
    assert engine_ws.steps()["check"]["status"] == "done"

    bad = cli("extract", str(engine_ws.root), "--side", "both", "--track", "1")
    assert bad.returncode == 2 and "needs one side" in bad.stderr and "Traceback" not in bad.stderr
    stop_engine(engine_ws)


def test_check_reports_uncovered_poses(extracted):
    ws, _ = extracted
    report, faces = check_workspace(ws)
    assert report["sides"]["src"]["frames_with"] == {"1": 75}
    assert sum(report["sides"]["dst"]["yaw_histogram"]["counts"]) == 75
    # Remove the src faces turned most to one side: dst poses there lose their cover.
    side_dir = ws.side_dir("src")
    turned = [r for r in faces["src"] if r.yaw < -10]
    moved = []
    for r in turned:
        (side_dir / r.file).rename(side_dir / (r.file + ".away"))
        moved.append(r)
    try:
        thinner = check_workspace(ws)[0]
        assert thinner["sides"]["src"]["faces"] == 75 - len(turned)
        assert thinner["sides"]["src"]["deleted_by_user"] == len(turned)
        assert thinner["coverage"]["score"] <= report["coverage"]["score"]
    finally:
        for r in moved:
            (side_dir / (r.file + ".away")).rename(side_dir / r.file)
    written = write_report(ws)
    assert json.loads((ws.root / "check" / "report.json").read_text())["coverage"] == written["coverage"]


def test_sort_moves_rejects_to_trash_and_restores(extracted):
    ws, _ = extracted
    everyone = {r.file: r for r in present_faces(ws, "dst")}
    result = sort_faces(ws, "dst", "blur", keep=50)
    assert result["kept"] == 50 and result["moved_to_trash"] == 25
    kept = present_faces(ws, "dst")
    trash = ws.side_dir("dst") / "aligned_trash" / "blur"
    assert len(kept) == 50 and len(list(trash.iterdir())) == 25
    rejected = json.loads((ws.side_dir("dst") / "sort.json").read_text())["rejected"]
    assert min(r.blur for r in kept) >= max(everyone[f].blur for f in rejected)
    best = sort_faces(ws, "dst", "best", keep=20)
    assert best["kept"] == 20 and len(present_faces(ws, "dst")) == 20
    dupes = sort_faces(ws, "dst", "hist", similarity=0.999)
    assert dupes["kept"] + dupes["moved_to_trash"] == 20
    left = len(present_faces(ws, "dst"))
    assert restore(ws, "dst")["restored"] == 75 - left
    assert len(present_faces(ws, "dst")) == 75 and not (ws.side_dir("dst") / "aligned_trash").exists()
    with pytest.raises(UserError, match="needs --keep"):
        sort_faces(ws, "dst", "best")
    with pytest.raises(UserError, match="not a sort method"):
        sort_faces(ws, "dst", "colour")


def test_faceset_pack_unpack_round_trip(extracted, tmp_path, workspace):
    ws, _ = extracted
    packed = pack(ws, "src", tmp_path / "katie set")
    assert packed["faces"] == 75 and packed["file"].endswith(".zip")
    result = unpack(workspace, "src", packed["file"])
    assert result["faces"] == 75 and len(present_faces(workspace, "src")) == 75
    assert load_header(workspace, "src")["from_faceset"] == "katie set.zip"
    with pytest.raises(UserError, match="already has"):
        unpack(workspace, "src", packed["file"])


@pytest.mark.parametrize("entry", ["../evil.jpg", "/etc/evil.jpg", "aligned/../../evil.jpg", "model.pkl"])
def test_faceset_unpack_refuses_bad_entries(tmp_path, workspace, entry):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("faceset.json", json.dumps({"kind": "swapwizard-faceset", "format": 1}))
        archive.writestr(entry, b"x")
    with pytest.raises(UserError, match="unexpected entry"):
        unpack(workspace, "src", bad)
    assert not (workspace.root.parent / "evil.jpg").exists()
    assert not workspace.alignments_path("src").exists()


def test_faceset_unpack_refuses_a_non_zip(tmp_path, workspace):
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(UserError, match="not a face set"):
        unpack(workspace, "src", bad)


def test_workspace_template_documents_the_extract_defaults():
    import sys
    from dataclasses import asdict

    from engine.faces.extract import ExtractSettings
    from engine.workspace import template_dir

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    settings = tomllib.loads((template_dir() / "workspace.toml").read_text())["extract"]
    assert settings == asdict(ExtractSettings())


def test_bench_extract_json(tmp_path):
    import subprocess
    import sys

    from tests.helpers import REPO

    done = subprocess.run([sys.executable, "-m", "engine.bench", "extract", "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert figures["frames"] == 75 and figures["faces"] == 75
    for key in ("fps", "ratio_decode", "ratio_bare", "decode_fps", "bare_fps"):
        assert figures[key] > 0
    assert figures["ratio_decode"] == pytest.approx(figures["fps"] / figures["decode_fps"], rel=0.01)


def test_probe_command(tmp_path):
    from tests.helpers import SAMPLES

    done = cli("probe", str(SAMPLES / "hamilton.mp4"), "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["frame_count"] == 65 and info["audio"][0]["sample_rate"] == 44100
    text = cli("probe", str(SAMPLES / "src.mp4"))
    assert text.returncode == 0 and "512x512" in text.stdout and "frames       75" in text.stdout
    empty = tmp_path / "empty clip.mp4"
    empty.write_bytes(b"")
    bad = cli("probe", str(empty))
    assert bad.returncode == 2 and "empty" in bad.stderr and "Traceback" not in bad.stderr


def test_cancelled_extraction_resumes(tmp_path):
    import time

    from engine.client import EngineClient
    from engine.launcher import start_engine
    from tests.extract.conftest import cut
    from tests.helpers import SAMPLES, make_workspace

    clip = cut(SAMPLES / "src.mp4", tmp_path / "long clip.mp4", 600, "-vf", "loop=loop=7:size=75:start=0")
    ws = make_workspace(tmp_path / "ws", src=clip, dst=None)
    start_engine(ws)
    try:
        checkpoint = ws.side_dir("src") / ".extract" / "checkpoint.json"
        with EngineClient(ws, timeout=60) as client:
            job = client.submit("extract", {"side": "src", "size": 128})["job_id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not checkpoint.exists():
                time.sleep(0.05)
            client.cancel(job)
        final, _ = run_job(ws, "extract", {"side": "src", "size": 128}, timeout=180)
        assert final.TYPE == "job_finished", final
        result = final.result["sides"]["src"]
        assert result["resumed_from"] > 0 and result["faces"] == 600
    finally:
        stop_engine(ws)
