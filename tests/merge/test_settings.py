"""Merge settings live in workspace.toml: saved, reused, checked, comments kept."""

from __future__ import annotations

import pytest

from engine.errors import UserError
from engine.merge import settings


def test_saved_choices_are_reused_and_overridable(workspace):
    chosen = settings.load(workspace, blur=30, colour="mkl", mark=True)
    settings.save(workspace, chosen)
    again = settings.load(workspace)
    assert (again.blur, again.colour, again.mark) == (30, "mkl", True)
    assert settings.load(workspace, blur=None, erode=4).blur == 30
    text = workspace.config_path.read_text()
    assert "[merge]" in text and "# swapwizard workspace settings." in text


def test_bad_values_in_the_file_are_user_errors(workspace):
    workspace.update_settings("merge", {"blend": "smudge"})
    with pytest.raises(UserError):
        settings.load(workspace)
    workspace.update_settings("merge", {"blend": "overlay", "blur": "soft"})
    with pytest.raises(UserError):
        settings.load(workspace)
    with pytest.raises(UserError):
        settings.MergeSettings().replace(glitter=1)


def test_the_template_documents_the_defaults():
    from engine.workspace import template_dir, tomllib

    section = tomllib.loads((template_dir() / "workspace.toml").read_text())["merge"]
    assert settings.from_section(section) == settings.MergeSettings()
    assert set(section) == set(settings.MergeSettings().to_dict())
