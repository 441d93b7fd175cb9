"""The merge and run commands check their input before anything reaches the engine."""

from __future__ import annotations

from tests.helpers import cli


def test_merge_rejects_a_bad_choice_with_a_hint(workspace):
    result = cli("merge", str(workspace.root), "--blend", "smudge")
    assert result.returncode == 2
    assert "not one of the choices" in result.stderr and "overlay" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_rejects_zero_iterations(workspace):
    result = cli("run", str(workspace.root), "--iters", "0")
    assert result.returncode == 2 and "--iters" in result.stderr


def test_merge_help_lists_every_knob():
    from engine.merge.settings import MergeSettings

    text = cli("merge", "--help").stdout
    for knob in MergeSettings().to_dict():
        option = {"preset": "--encoder-preset", "png": "--png", "mark": "--mark"}.get(knob, "--" + knob.replace("_", "-"))
        assert option in text, option
