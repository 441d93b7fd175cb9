"""A preset is written once (engine/train/options.py): its shape, options, target and description. The
[train] declarations, the template, the wizard's new-model choices and the docs show what it says."""

from __future__ import annotations

import dataclasses

from engine import settings as declared
from engine.train.options import DEFAULT_PRESET, PRESETS, preset
from engine.workspace import template_dir


def test_the_train_defaults_are_the_default_presets():
    base = PRESETS[DEFAULT_PRESET]
    values = {**dataclasses.asdict(base.model), **dataclasses.asdict(base.train), "iters": base.iters}
    for setting in declared.of("train"):
        if setting.key in values:
            assert setting.default == values[setting.key], f"{setting.name} is not {DEFAULT_PRESET}'s"
    template = (template_dir() / "workspace.toml").read_text(encoding="utf-8")
    assert f"# batch_size = {base.train.batch_size} " in template
    assert f"# iters = {base.iters} " in template


def test_every_preset_says_what_it_is_and_where_it_stops():
    for name, found in PRESETS.items():
        assert found.iters > 0 and found.description.endswith("."), name
        found.model.validate()
        line = found.line(name)
        assert line.startswith(f"{name}: {found.model.resolution} px {found.model.arch}"), line
        assert f"batch {found.train.batch_size}," in line
    assert PRESETS["tiny"].line("tiny").startswith("tiny: 64 px df-ud 64/16/16/8, batch 8, target 300. ")
    # a copy: changing what preset() returns leaves the declaration alone
    copy = preset("tiny")
    copy.train.batch_size = 99
    assert PRESETS["tiny"].train.batch_size == 8


def test_the_wizard_offers_the_declared_presets_and_targets():
    from tui.screens.new_model import PRESET_CHOICES

    for key, text in PRESET_CHOICES:
        assert text == PRESETS[key].line(key)
        assert f"target {PRESETS[key].iters:,}".replace(",", " ") in text
