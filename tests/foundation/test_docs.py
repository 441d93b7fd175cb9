"""The documentation: the README stays a landing page with commands that work on a fresh machine, the
site's nav names every page there is (and only those), and the reference pages made at build time
(docs/gen_reference.py) hold every command, option, setting and preset that the code declares."""

from __future__ import annotations

import importlib.util
import re

import typer.main

from engine import settings as declared
from engine.train.options import PRESETS
from tests.helpers import REPO
from tui.cli import app


def reference():
    spec = importlib.util.spec_from_file_location("gen_reference", REPO / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_a_landing_page_with_working_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 300
    for needed in ("make wizard", "make test", "make test-fast", "make docs", "## Responsible use", "`?`"):
        assert needed in readme, needed
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make ([\w-]+)", readme, flags=re.M):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"make {target} is not in the Makefile"
    for link in re.findall(r"\]\(((?!https?:)[^)#]+)", readme):
        assert (REPO / link).exists(), f"README links to {link}, which is not there"


def test_the_nav_names_every_page_and_only_pages_that_exist():
    nav = re.findall(r":\s+([\w/.-]+\.md)\s*$", (REPO / "mkdocs.yml").read_text(encoding="utf-8"), flags=re.M)
    generated = set(reference().PAGES)
    pages = {p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")}
    assert len(nav) == len(set(nav))
    assert set(nav) == pages | generated, (set(nav) ^ (pages | generated))


def test_the_reference_pages_hold_every_declared_command_setting_and_preset():
    module = reference()
    cli = module.cli_reference()
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert f"## swapwizard {name}\n" in cli, name
        for sub in getattr(command, "commands", {}):
            assert f"### swapwizard {name} {sub}\n" in cli, (name, sub)
    train = group.commands["train"]
    for option in (p for p in train.params if p.param_type_name == "option" and not p.hidden):
        assert f"`{option.opts[0]}" in cli, option.opts
    settings = module.settings_reference()
    for section in declared.sections():
        assert f"## [{section}]\n" in settings
        for setting in declared.of(section):
            assert f"| `{setting.key}` | {setting.type.__name__} | `{declared.toml_value(setting.default)}` |" in settings
    for name, preset in PRESETS.items():
        assert f"| `{name}` | {preset.model.resolution} px | {preset.model.arch} |" in settings
