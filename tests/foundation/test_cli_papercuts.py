"""What a new user hits in the first ten minutes (issue 19), through the real command and a real engine:
adding the destination later, unreadable inputs refused at the door, status naming what is missing,
one consent reminder, ``check --detach``, and the README's "Working over SSH" block as typed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.workspace import Workspace
from tests.helpers import REPO, SAMPLES, cli, stop_engine

pytestmark = pytest.mark.timeout(300)

CONSENT_NOTE = "no consent is recorded"


def _garbage(tmp_path: Path, name: str = "garbage.mp4") -> Path:
    path = tmp_path / name
    path.write_text("this is a text file renamed to look like a video\n")
    return path


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but the engine's own runtime files) with its bytes, to compare before/after."""
    skip = ("run/", "logs/", "engine.", "events.jsonl", "state.lock")
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else b""
            for p in sorted(root.rglob("*"))
            if not any(part in p.relative_to(root).as_posix() for part in skip) and not p.is_socket()}


def test_destination_added_later_with_sources_and_unreadable_inputs_refused(tmp_path):
    ws_path = tmp_path / "job"
    made = cli("new", str(ws_path), "--src", str(SAMPLES / "src.mp4"))
    assert made.returncode == 0, made.stderr
    # new says what it probed, and how to add the missing side.
    assert "512x512" in made.stdout and "75 frames" in made.stdout
    assert f"swapwizard sources {ws_path} --dst DESTINATION" in made.stderr
    ws = Workspace.open(ws_path)
    try:
        # status: what is missing and the command that adds it, not a step that cannot run.
        status = cli("status", str(ws_path))
        assert "missing: the destination" in status.stdout
        assert f"next: swapwizard sources {ws_path} --dst DESTINATION" in status.stdout
        assert "next: extract_src" not in status.stdout
        report = json.loads(cli("status", str(ws_path), "--json").stdout)
        assert report["missing"] == ["dst"] and report["next_command"].startswith("swapwizard sources")

        # run, through the engine, says it needs both, and points at sources (not at new).
        ran = cli("run", str(ws_path), "--iters", "1")
        assert ran.returncode != 0
        assert f"swapwizard sources {ws.root}" in ran.stderr and "swapwizard new" not in ran.stderr
        stop_engine(ws)

        # new on the existing workspace refuses, pointing at sources with what was typed.
        again = cli("new", str(ws_path), "--dst", str(SAMPLES / "dst.mp4"))
        assert again.returncode == 2
        assert f"swapwizard sources {ws_path} --dst {SAMPLES / 'dst.mp4'}" in again.stderr

        # An unreadable destination is refused at the door, the workspace unchanged.
        before = _tree(ws.root)
        bad = cli("sources", str(ws_path), "--dst", str(_garbage(tmp_path)))
        assert bad.returncode == 2 and "not a readable video" in bad.stderr and "Traceback" not in bad.stderr
        assert _tree(ws.root) == before and ws.source("dst") is None

        added = cli("sources", str(ws_path), "--dst", str(SAMPLES / "dst.mp4"))
        assert added.returncode == 0, added.stderr
        assert ws.source("dst").read_bytes() == (SAMPLES / "dst.mp4").read_bytes()
        assert f"Next: swapwizard run {ws_path}" in added.stderr
        listed = cli("sources", str(ws_path))
        assert "src: data_src.mp4" in listed.stdout and "dst: data_dst.mp4" in listed.stdout
        status = cli("status", str(ws_path))
        assert "missing" not in status.stdout
        assert f"next: extract_src, with: swapwizard extract {ws_path}" in status.stdout
    finally:
        stop_engine(ws)


def test_new_refuses_unreadable_inputs_and_leaves_nothing(tmp_path):
    garbage = _garbage(tmp_path)
    target = tmp_path / "never"
    refused = cli("new", str(target), "--src", str(SAMPLES / "src.mp4"), "--dst", str(garbage))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "garbage.mp4 is not a readable video (--dst, the destination). No workspace was created." in refused.stderr
    assert not target.exists()
    # An empty folder the user made stays empty; an empty file and an image folder of junk too.
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "zero.mp4").write_bytes(b"")
    assert cli("new", str(empty), "--src", str(tmp_path / "zero.mp4")).returncode == 2
    junk = tmp_path / "frames"
    junk.mkdir()
    (junk / "0001.png").write_text("not a picture")
    folder = cli("new", str(empty), "--src", str(junk))
    assert folder.returncode == 2 and "cannot be read" in folder.stderr
    assert list(empty.iterdir()) == []


def test_replacing_footage_that_was_worked_on_asks_for_force(tmp_path):
    ws_path = tmp_path / "ws"
    assert cli("new", str(ws_path), "--src", str(SAMPLES / "src.mp4"), "--dst", str(SAMPLES / "dst.mp4"),
               "--consent").returncode == 0
    ws = Workspace.open(ws_path)
    try:
        extracted = cli("extract", str(ws_path), "--side", "dst", timeout=600)
        assert extracted.returncode == 0, extracted.stderr
        faces = len(list(ws.aligned_dir("dst").iterdir()))
        assert faces > 0 and ws.steps()["extract_dst"]["status"] == "done"
        before = _tree(ws.root)
        refused = cli("sources", str(ws_path), "--dst", str(SAMPLES / "src.mp4"))
        assert refused.returncode == 2
        assert f"Replacing the destination invalidates its extraction ({faces} face crops)" in refused.stderr
        assert "--force" in refused.stderr
        assert _tree(ws.root) == before
        # The source side was never extracted: replacing it needs no --force.
        assert cli("sources", str(ws_path), "--src", str(SAMPLES / "dst.mp4")).returncode == 0
        forced = cli("sources", str(ws_path), "--dst", str(SAMPLES / "src.mp4"), "--force")
        assert forced.returncode == 0, forced.stderr
        assert ws.source("dst").read_bytes() == (SAMPLES / "src.mp4").read_bytes()
        record = ws.steps()["extract_dst"]
        assert record["status"] == "todo" and "replaced" in record["reason"]
        assert "extract_dst will run again" in forced.stderr
    finally:
        stop_engine(ws)


def test_one_consent_reminder_once(tmp_path):
    ws_path = tmp_path / "ws"
    made = cli("new", str(ws_path), "--src", str(SAMPLES / "src.mp4"), "--dst", str(SAMPLES / "dst.mp4"))
    assert made.returncode == 0
    assert made.stderr.count(CONSENT_NOTE) == 1 and "Remember" not in made.stderr
    ws = Workspace.open(ws_path)
    try:
        queued = cli("extract", str(ws_path), "--side", "src", "--detach")
        assert queued.returncode == 0, queued.stderr
        assert CONSENT_NOTE not in queued.stderr  # said once already, by new
        cli("cancel", str(ws_path))
    finally:
        stop_engine(ws)
    # Whoever unpacks the workspace elsewhere gets it once too, at its first job.
    assert cli("pack", str(ws_path), str(tmp_path / "ws.tgz")).returncode == 0
    other = tmp_path / "other"
    assert cli("unpack", str(tmp_path / "ws.tgz"), str(other)).returncode == 0
    ws2 = Workspace.open(other)
    try:
        first = cli("extract", str(other), "--side", "src", "--detach")
        second = cli("extract", str(other), "--side", "src", "--detach")
        assert first.stderr.count(CONSENT_NOTE) == 1 and CONSENT_NOTE not in second.stderr
        cli("cancel", str(other))
    finally:
        stop_engine(ws2)
    # With consent recorded, never.
    recorded = cli("new", str(tmp_path / "ok"), "--consent")
    assert recorded.returncode == 0 and CONSENT_NOTE not in recorded.stderr


def test_check_detach_returns_at_once_and_attach_follows(tmp_path):
    ws_path = tmp_path / "ws"
    assert cli("new", str(ws_path), "--consent").returncode == 0
    ws = Workspace.open(ws_path)
    try:
        detached = cli("check", str(ws_path), "--detach")
        assert detached.returncode == 0, detached.stderr
        job_id = detached.stdout.strip()
        assert re.fullmatch(r"job-\d+", job_id)
        assert f"swapwizard attach {ws.root}" in detached.stderr
        # Nothing is extracted, so the check fails: attach (or the report) says why, in one sentence.
        followed = cli("attach", str(ws_path))
        history = (ws.state_dir / "events.jsonl").read_text()
        assert job_id in history and "Nothing is extracted yet" in history
        assert followed.returncode in (0, 1) and "Traceback" not in followed.stderr
        assert "--detach" in cli("check", "--help").stdout
    finally:
        stop_engine(ws)


def _readme_ssh_block() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Working over SSH", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_readme_ssh_block_names_only_real_commands_and_adds_the_destination_later():
    """The block is run as typed in test_readme_ssh_block_as_typed; here: its shape."""
    lines = _readme_ssh_block()
    assert all(line.startswith("swapwizard ") for line in lines)
    assert any(line.startswith("swapwizard sources ") and "--dst" in line for line in lines)
    new = next(line for line in lines if line.startswith("swapwizard new "))
    assert "--dst" not in new


@pytest.mark.timeout(900)
def test_readme_ssh_block_as_typed(tmp_path):
    """Every line of the README's block, in an empty folder, with the sample clips and a tiny run.

    File names and the workspace path are the README's; only the heavy knobs are made tiny (``--iters``,
    and ``--preset tiny`` on the run line) so the test fits a CPU.
    """
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(SAMPLES / "src.mp4", tmp_path / "katie.mp4")
    shutil.copy(SAMPLES / "dst.mp4", tmp_path / "alex.mp4")
    ws = Workspace(home / "jobs" / "demo")
    try:
        for line in _readme_ssh_block():
            args = line.split()[1:]
            args = [str(home / a[2:]) if a.startswith("~/") else str(tmp_path / a) if a.endswith(".mp4") else a
                    for a in args]
            if args[0] == "run":
                args += ["--preset", "tiny", "--iters", "4"]
            if args[0] == "attach":
                # The run was detached: attach follows it to its end (a tiny run on a CPU: minutes).
                result = cli(*args, timeout=800)
                assert result.returncode == 0, result.stderr[-3000:]
                continue
            if args[0] not in ("new", "sources", "engine", "run", "status", "consent"):
                continue  # the wizard line needs a terminal
            result = cli(*args, timeout=120)
            assert result.returncode == 0, f"{line}: {result.stderr}"
        assert (ws.root / "output" / "result.mp4").is_file()
        status = json.loads(cli("status", str(ws.root), "--json").stdout)
        assert all(record["status"] == "done" for record in status["steps"].values())
    finally:
        stop_engine(ws)


# -- issue 31: the CLI as a new user meets it ---------------------------------------------------------

def test_a_mistyped_command_is_named_not_opened_as_a_workspace(tmp_path):
    typo = cli("extrat", str(tmp_path))
    assert typo.returncode == 2
    assert "No such command 'extrat'. Did you mean 'extract'?" in typo.stderr
    assert "Usage: swapwizard open" not in typo.stderr + typo.stdout
    # WORD --help for a word that is no command and no folder: not the wizard's help.
    asked = cli("nosuch", "--help")
    assert asked.returncode == 2 and "No such command 'nosuch'" in asked.stderr
    assert "Open the wizard" not in asked.stdout
    # A folder of that name is still opened (here: refused as it holds no workspace, with the hint to make one).
    (tmp_path / "extrat").mkdir()
    folder = subprocess.run([sys.executable, "-c", "from tui.cli import main; main()", "extrat"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert "is not a swapwizard workspace" in folder.stderr and "No such command" not in folder.stderr


def test_help_groups_the_commands_in_the_order_of_the_work():
    from tui.cli import app
    from tui.cli.app import OTHER_PANEL, PANELS

    shown = cli("--help").stdout
    titles = [f"{panel}:" for panel, _ in PANELS]
    assert titles == ["Start:", "Pipeline:", "Models and masks:", "Engine:", "Files:", "Measure:"]
    places = [shown.index(title) for title in titles]
    assert places == sorted(places), shown
    assert f"{OTHER_PANEL}:" not in shown, "every command belongs to a panel of the work"
    assert shown.index("  new ") < shown.index("Pipeline:") < shown.index("  train ") < shown.index("Models and masks:")
    assert all(info.rich_help_panel in {p for p, _ in PANELS} for info in [*app.registered_commands, *app.registered_groups])


def test_attach_at_120_columns_gives_the_metrics_their_own_line_and_never_breaks_a_word():
    """``attach``'s drawing (tui.cli.follow: the same progress and event handling) in a 120-column
    terminal, fed the events of an extraction then a training: the stage names and rates stay whole
    (beside the metrics column they read 'ex…', 'lo…', 'tr…'), the metrics get a line of their own,
    and a long log line wraps between words (the terminal cut it mid-word)."""
    import io

    from rich.console import Console, Group

    from engine import protocol as p
    from tui.cli.follow import _show, follow_progress

    console = Console(file=io.StringIO(), force_terminal=True, width=120, record=True, color_system=None)
    progress = follow_progress(console)
    words = [f"word{i:02d}longish" for i in range(30)]
    metrics = {"iter": 16, "loss_src": 0.51234, "loss_dst": 0.41234, "iters_per_s": 2.5, "samples_per_s": 80.0,
               "eta_s": 120.0, "target": 300, "lr": 0.0003, "batch_size": 8, "quality_ssim_dst": 0.12,
               "quality_ssim_src": 0.11, "quality_psnr_dst": 12.5, "quality_psnr_src": 12.1}
    events = [p.make_event("job_started", 1, job_id="j", kind="run", params={}, pid=1),
              p.make_event("progress", 2, job_id="j", stage="extract_src", done=75, total=75, unit="frames", rate=27.1, eta_s=0.0),
              p.make_event("progress", 3, job_id="j", stage="extract_dst", done=40, total=75, unit="frames", rate=25.3, eta_s=1.4),
              p.make_event("log", 4, job_id="j", level="info", message=" ".join(words)),
              p.make_event("metrics", 5, job_id="j", values=metrics)]
    tasks: dict = {}
    for event in events:  # lines printed above the bars go to the console as they come
        _show(event, progress, tasks)
    frame = Console(file=io.StringIO(), force_terminal=True, width=120, record=True, color_system=None)
    frame.print(Group(*progress.get_renderables()))  # the bars as the live display draws them now
    shown = console.export_text() + frame.export_text()
    rows = shown.splitlines()
    assert any(row.startswith("extract_src") and "27.1 frames/s" in row for row in rows), shown
    assert any(row.startswith("extract_dst") and "40/75" in row for row in rows), shown
    bar_row = next(row for row in rows if row.startswith("train "))
    assert "iter=16" not in bar_row and "2.50 it/s" in bar_row, shown
    assert any(row.startswith("iter=16") for row in rows), "the metrics start a line of their own"
    assert all(len(row) <= 120 for row in rows)
    for word in [*words, "loss_src=0.5123", "quality_psnr_src=12.1"]:
        assert word in shown, f"{word} was broken across lines:\n{shown}"


def test_item_9_papercuts_of_the_cli(tmp_path):
    """train-target says what it did; verify of a text file gives a hint; pack to NAME.tar writes a plain tar;
    faceset pack refuses to overwrite a zip; all through the real command (and a real engine)."""
    import tarfile

    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
    try:
        from engine.client import EngineClient
        from engine.launcher import ensure_engine

        ensure_engine(ws)
        with EngineClient(ws) as client:  # a running job to send the command to
            job_id = client.submit("diagnostic_count", {"count": 2000, "delay": 0.05})["job_id"]
        sent = cli("train-target", str(ws.root), "40")
        assert sent.returncode == 0, sent.stderr
        assert f"Target set to iteration 40 for the running training (job {job_id})" in sent.stdout
        with EngineClient(ws) as client:
            client.request("cancel", job_id=job_id)
    finally:
        stop_engine(ws)

    text = cli("verify", str(REPO / "README.md"))
    assert text.returncode == 1 and "hint: verify reads videos and pictures" in text.stdout

    packed = cli("pack", str(ws.root), str(tmp_path / "ws.tar"))
    assert packed.returncode == 0, packed.stderr
    assert (tmp_path / "ws.tar").read_bytes()[:2] != b"\x1f\x8b", "NAME.tar is not gzip"
    with tarfile.open(tmp_path / "ws.tar", "r:") as tar:  # plain tar, readable as one
        assert any(name.endswith("workspace.toml") for name in tar.getnames())
    assert cli("pack", str(ws.root), str(tmp_path / "ws.tgz")).returncode == 0
    assert (tmp_path / "ws.tgz").read_bytes()[:2] == b"\x1f\x8b"

    old = tmp_path / "faces.zip"
    old.write_bytes(b"an earlier face set")
    again = cli("faceset", "pack", str(ws.root), str(old))
    assert again.returncode != 0 and "already exists" in again.stderr
    assert old.read_bytes() == b"an earlier face set"
    stop_engine(ws)


def test_a_measuring_job_draws_no_training_bar():
    """quality's metrics event (its figures at the model's iteration) drew a 'train: 40 0.00 it/s' line."""
    import io

    from rich.console import Console

    from engine import protocol as p
    from tui.cli.follow import _show, follow_progress

    for kind, expected in (("quality", False), ("train", True)):
        console = Console(file=io.StringIO(), force_terminal=False, width=120, record=True, color_system=None)
        progress = follow_progress(console)
        tasks: dict = {}
        for event in (p.make_event("job_started", 1, job_id="j", kind=kind, params={}, pid=1),
                      p.make_event("metrics", 2, job_id="j", values={"iter": 40, "quality_ssim_dst": 0.8})):
            _show(event, progress, tasks)
        assert (("j", "train") in tasks) is expected, kind
        assert ("train: 40" in console.export_text()) is expected, console.export_text()


def test_train_refuses_a_model_name_before_any_job(tmp_path):
    """issue 24 item 1: ``train --model '[/x]'`` is refused at once, in one sentence (the job failed later,
    quoting the name, and that error crashed the wizard's Train screen)."""
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
    refused = cli("train", str(ws.root), "--model", "[/x]")
    assert refused.returncode == 2 and "'[/x]'" in refused.stderr and "is not a valid model name" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (ws.state_dir / "engine.pid").exists() and not list(ws.state_dir.glob("events*")), "no engine, no job"
