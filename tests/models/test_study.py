"""The study: bad input in one sentence, and a tiny study through the real engine and CLI, killed (-9)
after its first configuration and run again, that then goes on with the next unfinished one and writes
the report, the contact sheet and the side-by-side video (labelled, signed)."""

from __future__ import annotations

import json

import pytest

from engine.errors import UserError
from engine.jobs.study import parse_budget
from tests.helpers import cli, kill_job_when, run_job, stop_engine
from tests.models.conftest import TINY

SHARED = {k: v for k, v in TINY.items() if k != "model"}


def test_budgets():
    assert parse_budget("300") == ("iterations", 300)
    assert parse_budget("30m") == ("seconds", 1800)
    assert parse_budget("1.5h") == ("seconds", 5400)
    for bad in ("0", "0m", "ten", "", "2.5"):
        with pytest.raises(UserError):
            parse_budget(bad)


@pytest.mark.timeout(300)
def test_bad_study_input_is_one_sentence(models_ws, tmp_path, monkeypatch):
    root = str(models_ws.root)
    zero = cli("study", root, "--models", "df,liae", "--gan", "0", "--budget", "0")
    assert zero.returncode == 2 and "A study budget of 0 trains nothing" in zero.stderr and "hint:" in zero.stderr
    assert "Traceback" not in zero.stderr
    one = cli("study", root, "--models", "df", "--gan", "0", "--budget", "5")
    assert one.returncode == 2 and "at least two configurations" in one.stderr
    unknown = cli("study", root, "--models", "df,vae", "--gan", "0", "--budget", "5")
    assert unknown.returncode == 2 and "'vae' is not a model the study knows" in unknown.stderr
    badgan = cli("study", root, "--models", "df,liae", "--gan", "0,20", "--budget", "5")
    assert badgan.returncode == 2 and "gan_power" in badgan.stderr
    # cnn without VGG-19 weights: refused before any configuration is trained.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no torch"))
    stop_engine(models_ws)
    try:
        final, _ = run_job(models_ws, "study", {**SHARED, "models": ["df", "cnn"], "gan": [0.0], "budget": "4"})
        assert final.TYPE == "job_failed" and "VGG-19" in final.error
        assert not models_ws.model_dir("study-df-gan0").exists()
    finally:
        stop_engine(models_ws)


@pytest.mark.timeout(1200)
def test_a_killed_study_goes_on_with_the_next_configuration_and_writes_its_report(models_ws):
    ws = models_ws
    params = {**SHARED, "models": ["df", "amp"], "gan": [0.0, 0.1], "budget": "4", "frames": 6, "restart": True}
    try:
        # killed once the first configuration is finished and the second starting
        killed, _ = kill_job_when(ws, "study", params, timeout=600, when=lambda e: e.TYPE == "progress" and
                                  e.stage == "study" and e.done == 1)
        assert killed
        progress = json.loads((ws.root / "output/study/progress.json").read_text())
        assert list(progress["done"]) == ["study-df-gan0"]
        first = json.loads((ws.model_dir("study-df-gan0") / "model.json").read_text())["updated"]
        again = dict(params, restart=False)
        final, events = run_job(ws, "study", again, timeout=900)
        assert final.TYPE == "job_finished", getattr(final, "error", "")
        logs = " ".join(e.message for e in events if e.TYPE == "log")
        assert "study-df-gan0: already trained" in logs
        assert json.loads((ws.model_dir("study-df-gan0") / "model.json").read_text())["updated"] == first
        report = json.loads((ws.root / "output/study/report.json").read_text())
        names = [c["name"] for c in report["configurations"]]
        assert names == ["study-df-gan0", "study-df-gan0.1", "study-amp-gan0", "study-amp-gan0.1"]
        assert all(c["iteration"] == 4 for c in report["configurations"])
        figures = {row["metric"]: row["values"] for row in report["table"]}
        assert all(isinstance(figures["ssim_dst"][n], float) for n in names)
        assert "id_closer_src" in figures
        text = (ws.root / "output/study/report.md").read_text()
        assert "| ssim_dst | high |" in text and "study-amp-gan0.1" in text and "Caveats" in text
        for name in ("contact_sheet.png", "side_by_side.mp4"):
            shown = cli("verify", str(ws.root / "output/study" / name), "--json")
            assert shown.returncode == 0, shown.stdout + shown.stderr
            checked = json.loads(shown.stdout)
            assert checked["signed"] and checked["content_intact"] and checked["ai_generated"]
        # Other arguments are refused (the models would not compare) unless --restart.
        other = cli("study", str(ws.root), "--models", "df,amp", "--gan", "0,0.1", "--budget", "6",
                    "--preset", "tiny")
        assert other.returncode != 0 and "other arguments" in other.stderr
    finally:
        stop_engine(ws)
