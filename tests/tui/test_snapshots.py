"""One deterministic snapshot per screen at 80x24: a fixed workspace path, fixed consent date, recorded
events fed to the board (no engine), generated pictures, no cursor blink.

Update after an intended change with: .venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

import pytest
from textual.widgets import Input

from engine import protocol as p
from engine.atomic import atomic_write_json
from engine.jobs import public_declarations
from engine.workspace import Workspace
from tests.helpers import SAMPLES
from tui.app import make_app
from tui.recent import RecentWorkspaces

ROOT = Path("/tmp/swapwizard-snapshots")
SIZE = (80, 24)


def gradient_png(path: Path, width: int = 64, height: int = 64, tint: int = 0) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 4 + tint) % 256, (y * 4) % 256, (128 + tint) % 256) for y in range(height) for x in range(width)])
    image.save(path)


@pytest.fixture
def snap_ws() -> Workspace:
    """The workspace at a fixed path (it shows on screen); a lock keeps two test runs apart."""
    with open(f"{ROOT}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(ROOT, ignore_errors=True)
        ws = Workspace.create(ROOT / "ws", src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
        ws.update_settings("consent", {"confirmed": True, "date": "2026-01-01T12:00:00+0000", "confirmed_by": "tester"})
        atomic_write_json(ROOT / "config" / "swapwizard" / "recent.json", [str(ws.root)])
        yield ws
        shutil.rmtree(ROOT, ignore_errors=True)


def wizard(ws: Workspace):
    return make_app(ws.root, connect=False, recent=RecentWorkspaces(ROOT / "config" / "swapwizard" / "recent.json"),
                    jobs=public_declarations())


def feed(app, events: list[p.Event]) -> None:
    for event in events:
        app.board.apply(event)


def job(kind: str, job_id: str = "job-1", seq: int = 1) -> list[p.Event]:
    return [p.make_event("job_queued", seq, job_id=job_id, kind=kind, params={}),
            p.make_event("job_started", seq + 1, job_id=job_id, kind=kind, params={}, pid=1)]


def going_to(step: str, events: list[p.Event] | None = None, settle: float = 0.3):
    async def run_before(pilot) -> None:
        app = pilot.app
        feed(app, events or [])
        await pilot.pause()
        app.go_to(step)
        await pilot.pause(settle)
        app.step_screen().refresh_from_board()  # the fed events bypassed the worker's messages
        app.step_screen().refresh_step_bar()
        await pilot.pause(settle)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


def test_workspace_screen(snap_compare, snap_ws):
    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=going_to("workspace"))


def test_sources_screen(snap_compare, snap_ws):
    async def run_before(pilot) -> None:
        await going_to("sources")(pilot)
        for _ in range(200):  # the probe runs in a subprocess
            if "fps" in str(pilot.app.screen.query_one("#side-dst").render()):
                break
            await pilot.pause(0.1)

    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=run_before)


def test_extract_screen(snap_compare, snap_ws):
    for side in ("src", "dst"):
        for i in range(3):
            gradient_png(snap_ws.aligned_dir(side) / f"{i:06d}_0.png", tint=i * 60 + (90 if side == "dst" else 0))
    events = [*job("extract"),
              p.make_event("progress", 3, job_id="job-1", stage="src", done=75, total=75, unit="frames", rate=24.5, eta_s=0.0),
              p.make_event("progress", 4, job_id="job-1", stage="dst", done=30, total=75, unit="frames", rate=21.0, eta_s=2.1)]
    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=going_to("extract", events))


def test_check_screen(snap_compare, snap_ws):
    yaw_edges, pitch_edges = list(range(-90, 91, 15)), list(range(-60, 61, 15))
    report = {"version": 1, "warnings": ["dst has 9 faces turned right more than 30 degrees; src has 0."],
              "coverage": {"score": 0.87, "radius_degrees": 10.0, "min_neighbours": 3},
              "sides": {"src": {"extracted": True, "faces": 75, "frames": 75, "tracks": 1,
                                "face_size": {"median": 181.0}, "blur": {"median": 0.8}, "brightness": {"median": 121.0},
                                "yaw_histogram": {"edges": yaw_edges, "counts": [0, 0, 0, 2, 10, 30, 25, 8, 0, 0, 0, 0]},
                                "pitch_histogram": {"edges": pitch_edges, "counts": [0, 0, 5, 40, 28, 2, 0, 0]}},
                        "dst": {"extracted": True, "faces": 75, "frames": 75, "tracks": 2,
                                "face_size": {"median": 160.0}, "blur": {"median": 0.7}, "brightness": {"median": 98.0},
                                "yaw_histogram": {"edges": yaw_edges, "counts": [0, 0, 0, 0, 6, 35, 20, 5, 9, 0, 0, 0]},
                                "pitch_histogram": {"edges": pitch_edges, "counts": [0, 0, 3, 45, 25, 2, 0, 0]}}}}
    events = [*job("check"), p.make_event("job_finished", 3, job_id="job-1", result=report)]
    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=going_to("check", events))


def test_train_screen(snap_compare, snap_ws):
    gradient_png(snap_ws.root / "model/default/previews/small.png", 160, 96)
    events = job("train")
    for i in range(1, 121):
        events.append(p.make_event("metrics", i + 2, job_id="job-1",
                                   values={"iter": i * 10, "loss_src": 0.5 / (1 + i / 10), "loss_dst": 0.4 / (1 + i / 20),
                                           "iters_per_s": 3.25, "eta_s": 245.0, "target": 2000}))
    events.append(p.make_event("preview", 200, job_id="job-1", path="model/default/previews/big.png",
                               small="model/default/previews/small.png"))
    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=going_to("train", events))


def test_merge_screen(snap_compare, snap_ws):
    gradient_png(snap_ws.state_dir / "previews" / "merge_preview_small.png", 160, 160, tint=40)
    gradient_png(snap_ws.state_dir / "previews" / "merge_before.png", 160, 160, tint=120)
    events = [*job("merge_preview"),
              p.make_event("job_finished", 3, job_id="job-1",
                           result={"path": ".swapwizard/previews/merge_preview_small.png", "faces": 1, "merge_ms": 12.5,
                                   "before": ".swapwizard/previews/merge_before.png"})]

    async def run_before(pilot) -> None:
        await going_to("merge")(pilot)
        screen = pilot.app.screen
        for _ in range(200):  # the destination's frame count comes from a probe subprocess
            if screen.frames:
                break
            await pilot.pause(0.1)
        screen.preview_job = "job-1"
        feed(pilot.app, events)
        screen.show_job(pilot.app.board.jobs["job-1"])
        await pilot.pause(0.2)

    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=run_before)


def test_export_screen(snap_compare, snap_ws):
    events = [*job("merge"),
              p.make_event("progress", 3, job_id="job-1", stage="merge", done=40, total=75, unit="frames", rate=12.0, eta_s=2.9)]
    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=going_to("export", events))


def test_consent_dialog(snap_compare, snap_ws):
    snap_ws.update_settings("consent", {"confirmed": False})
    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=going_to("workspace"))


def test_train_screen_without_colour(snap_compare, snap_ws, monkeypatch):
    """NO_COLOR: statuses still read (✓ ● ✗ ○, reverse video), the preview falls back to shades."""
    monkeypatch.setenv("NO_COLOR", "1")
    gradient_png(snap_ws.root / "model/default/previews/small.png", 160, 96)
    events = job("train")
    for i in range(1, 41):
        events.append(p.make_event("metrics", i + 2, job_id="job-1",
                                   values={"iter": i * 10, "loss_src": 0.5 / (1 + i / 10), "loss_dst": 0.4 / (1 + i / 20),
                                           "iters_per_s": 3.25, "eta_s": 245.0, "target": 2000}))
    events.append(p.make_event("preview", 100, job_id="job-1", path="model/default/previews/big.png",
                               small="model/default/previews/small.png"))
    app = wizard(snap_ws)
    assert app.no_color
    assert snap_compare(app, terminal_size=SIZE, run_before=going_to("train", events))


def test_mask_review_screen(snap_compare, snap_ws):
    """``m``: the faces worst first (one accepted, one rejected), the first with its mask over it."""
    side_dir = snap_ws.side_dir("dst")
    faces = {}
    for i in range(6):
        name = f"{i:06d}_0"
        gradient_png(side_dir / "aligned" / f"{name}.png", 64, 64, tint=30 * i)
        gradient_png(side_dir / "masks" / f"{name}.png", 64, 64, tint=60 * i)
        faces[name] = {"uncertainty": round(0.1 + 0.05 * ((i * 7) % 6), 4), "hull_iou": 0.9, "occluded": 0.02 * i,
                       "frame": i, "file": f"aligned/{name}.png"}
    atomic_write_json(side_dir / "masks" / "index.json", {"segmenter": {"weights": "0"}, "faces": faces})
    atomic_write_json(side_dir / "masks_marks.json", {"version": 1, "faces": {"000001_0": {"mark": "accept"},
                                                                              "000002_0": {"mark": "reject"}}})

    async def run_before(pilot) -> None:
        await going_to("check")(pilot)
        await pilot.press("m")
        await pilot.pause(0.3)

    assert snap_compare(wizard(snap_ws), terminal_size=SIZE, run_before=run_before)
