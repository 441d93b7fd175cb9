"""``swapwizard bench NAME``: one subcommand per engine benchmark, its arguments handed through."""

from __future__ import annotations

import pytest

from engine.bench.__main__ import NAMES
from tests.helpers import cli

pytestmark = pytest.mark.timeout(120)


def test_every_benchmark_is_a_subcommand_with_its_help_line():
    listing = cli("bench", "--help", env={"COLUMNS": "200"})
    assert listing.returncode == 0, listing.stderr
    for name in NAMES:
        assert f"\n  {name} " in listing.stdout, name
    assert "Merge frames/s at 512x512 and 1080p" in listing.stdout


def test_arguments_reach_the_engine_benchmark_and_its_exit_code_comes_back():
    shown = cli("bench", "limits", "--help")
    assert shown.returncode == 0 and "usage:" in shown.stdout and "--only" in shown.stdout
    wrong = cli("bench", "c2pa", "--no-such-option")
    assert wrong.returncode == 2 and "--no-such-option" in wrong.stderr
