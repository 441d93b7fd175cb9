"""One declaration per setting (engine/settings.py): the template, the CLI options, the job parameters and
the wizard's form all come from it; bad values are refused before anything runs or is saved, with one
sentence and a hint, through the real CLI and the real engine."""

from __future__ import annotations

import click
import pytest
import typer.main

from engine import settings as declared
from engine.client import EngineClient
from engine.errors import UserError
from engine.jobs import get_kind
from engine.launcher import start_engine
from engine.workspace import template_dir
from tests.helpers import cli, stop_engine


def test_the_workspace_template_is_the_declarations():
    # Regenerate with: python -m engine.settings > workspace_template/workspace.toml
    assert (template_dir() / "workspace.toml").read_text(encoding="utf-8") == declared.template()
    text = declared.template()
    for setting in declared.SETTINGS:
        assert setting.help.split()[0] in text, setting.name


def test_every_default_passes_its_own_checks_and_names_are_unique():
    seen = set()
    for setting in declared.SETTINGS:
        assert setting.check(setting.default) == setting.default
        assert (setting.section, setting.key) not in seen
        seen.add((setting.section, setting.key))
        assert setting.type in (bool, int, float, str) and setting.help.strip()


def _command(name: str) -> click.Command:
    from tui.cli.app import app

    group = typer.main.get_command(app)
    return group.commands[name]  # type: ignore[attr-defined]


@pytest.mark.parametrize("command, section", [("merge", "merge"), ("train", "train"), ("extract", "extract")])
def test_each_command_has_one_option_per_declared_setting(command, section):
    options = {flag for p in _command(command).params for flag in [*p.opts, *p.secondary_opts]}
    for setting in declared.of(section):
        flags = setting.flags or (setting.option,)
        if setting.cli:
            assert set(flags) <= options, f"{setting.name} has no {flags} option on swapwizard {command}"
        else:
            assert not set(flags) & options, f"{setting.name} is declared cli=False but is an option"


def test_option_help_gives_ranges_as_written_and_the_out_of_range_hint_agrees():
    seed = declared.get("train", "seed")
    help_text = " ".join(next(p for p in _command("train").params if "--seed" in p.opts).help.split())
    assert f"Range {seed.range_words()}." in help_text and "e+" not in help_text  # was 'Range 0 to 4.29497e+09'
    assert seed.range_words() == f"0 to {seed.range[1]}"
    with pytest.raises(UserError) as refused:
        seed.check(seed.range[1] + 1)
    assert refused.value.hint == f"Use {seed.range_words()}."


@pytest.mark.parametrize("kind, section", [("merge", "merge"), ("train", "train"), ("extract", "extract")])
def test_job_parameters_are_the_declared_settings(kind, section):
    import dataclasses

    fields = {f.name for f in dataclasses.fields(get_kind(kind).params_type)}
    assert set(declared.keys(section)) <= fields
    preview = {f.name for f in dataclasses.fields(get_kind("merge_preview").params_type)}
    assert set(declared.keys("merge", "face")) <= preview and not set(declared.keys("merge", "export")) & preview


def test_the_wizard_form_and_keys_come_from_the_declarations():
    from tui.screens.merge import MergeScreen
    from tui.widgets.settings_form import KNOBS

    labelled = declared.wizard_form("merge")
    assert [k.name for k in KNOBS] == [s.key for s in labelled]
    keys = {b.key: b.action for b in MergeScreen.BINDINGS}
    for setting in labelled:
        if setting.keys:
            assert keys[setting.keys[0]] == f"knob('{setting.key}', -1)"
            assert keys[setting.keys[1]] == f"knob('{setting.key}', 1)"
    letters = "".join(s.keys for s in labelled)
    assert len(letters) == len(set(letters)), "two knobs share a key"


@pytest.mark.parametrize("args, says", [
    (["train", "--batch", str(10**9)], "[train] batch_size = 1000000000 (--batch) is out of range."),
    (["train", "--iters", str(10**30)], "[train] iters = " + str(10**30) + " (--iters) is out of range."),
    (["train", "--lr", "-0.001"], "[train] lr = -0.001 (--lr) is out of range."),
    (["train", "--threads", "-1"], "[train] threads = -1 (--threads) is out of range."),
    (["extract", "--jpeg-quality", "100000"], "[extract] jpeg_quality = 100000 (--jpeg-quality) is out of range."),
    (["extract", "--detect-every", "-5"], "[extract] detect_every = -5 (--detect-every) is out of range."),
    (["merge", "--erode", "500"], "[merge] erode = 500 (--erode) is out of range."),
    (["merge", "--mask", "fog"], "[merge] mask = 'fog' (--mask) is not one of the choices."),
])
def test_out_of_range_options_exit_2_before_anything_runs_or_is_saved(workspace, args, says):
    before = workspace.config_path.read_bytes()
    proc = cli(args[0], str(workspace.root), *args[1:])
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "hint: Use " in proc.stderr and "Traceback" not in proc.stderr
    assert workspace.config_path.read_bytes() == before
    assert not workspace.pid_path.exists(), "no engine is started for a refused command"


def test_a_bad_value_in_workspace_toml_is_refused_before_the_job_is_submitted(workspace):
    workspace.update_settings("extract", {"detect_every": -5})
    proc = cli("extract", str(workspace.root))
    assert proc.returncode == 2 and "[extract] detect_every = -5 (workspace.toml) is out of range." in proc.stderr
    assert "Fix it in" in proc.stderr and not workspace.pid_path.exists()


def test_the_engine_refuses_out_of_range_parameters_at_submit(engine_ws):
    with EngineClient(engine_ws) as client:
        for kind, params in [("train", {"batch_size": 10**9}), ("extract", {"jpeg_quality": 100000}),
                             ("train", {"lr": -1.0}), ("merge", {"crf": 99})]:
            with pytest.raises(UserError, match=r"^\[(train|extract|merge)\] \w+ = .* is out of range"):
                client.submit(kind, params)
        status = client.status()
        assert status["running"] is None and status["queue"] == []
    assert "batch_size" not in engine_ws.section("train") and engine_ws.section("extract")["jpeg_quality"] == 95


def test_the_merger_lays_sources_in_order_and_names_the_bad_one():
    merged = declared.layered("merge", ("workspace.toml", {"blur": 20, "erode": 4, "unknown": 1}),
                              ("the request", {"blur": 30, "erode": None}))
    assert (merged["blur"], merged["erode"], merged["crf"]) == (30, 4, 18)
    with pytest.raises(UserError) as caught:
        declared.layered("merge", ("workspace.toml", {"blur": "soft"}))
    assert caught.value.message == "[merge] blur = 'soft' (workspace.toml) is not a whole number."
    assert declared.layered("train", ("workspace.toml", {"lr": 1}), group="options")["lr"] == 1.0


def test_a_failed_merge_does_not_save_its_settings(workspace):
    try:
        proc = cli("merge", str(workspace.root), "--audio", "missing.wav", "--blur", "30")
        assert proc.returncode == 1 and "missing.wav" in proc.stderr, proc.stderr
    finally:
        stop_engine(workspace)
    text = workspace.config_path.read_text()
    assert 'audio = "missing.wav"' not in text and "blur = 30" not in text


def test_user_text_is_printed_literally_not_as_rich_markup(workspace):
    proc = cli("merge", str(workspace.root), "--erode", "500")
    assert "[merge] erode = 500" in proc.stderr
    start_engine(workspace)
    try:
        proc = cli("train", str(workspace.root), "--model", "[/x]")
    finally:
        stop_engine(workspace)
    assert proc.returncode != 0 and "MarkupError" not in proc.stderr and "Traceback" not in proc.stderr
    assert "[train] model = '[/x]' (--model) is not a valid model name" in proc.stderr, proc.stderr


def test_declared_choices_match_what_the_code_knows():
    from engine.faces.align import CROPS
    from engine.train.options import PRESETS

    assert set(declared.TRAIN_PRESETS) == set(PRESETS)
    assert set(declared.FACE_TYPES) == set(CROPS)
