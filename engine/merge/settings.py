"""The merge knobs: the ``[merge]`` settings of ``engine.settings`` as one checked value.

A second merge reuses the last choices: the merge job writes the settings it used back to the
workspace (once its inputs are found good), and every knob is also a CLI option and a job parameter
(``None`` there means "the workspace's value"). The knobs themselves (type, default, range, help,
wizard key) are declared in ``engine/settings.py``; nothing here lists them.
"""

from __future__ import annotations

from typing import Any

from engine import settings as declared

MASK_MODES = declared.MASK_MODES
COLOUR_MODES = declared.COLOUR_MODES
BLEND_MODES = declared.BLEND_MODES
PRESETS = declared.X264_PRESETS

#: Every [merge] knob with its default; checked when made (a bad value is a ``UserError``).
MergeSettings = declared.values_class("MergeSettings", "merge", module=__name__)


def from_section(section: dict[str, Any]) -> MergeSettings:
    """Settings from a ``[merge]`` table; unknown keys are ignored (other versions may add some)."""
    return MergeSettings(**declared.layered("merge", ("workspace.toml", section)))


def load(ws: Any, **overrides: Any) -> MergeSettings:
    """The workspace's [merge] settings with any non-None overrides applied, checked."""
    return from_section(ws.section("merge")).replace(**declared.check_values("merge", overrides, "the request"))


def save(ws: Any, settings: MergeSettings) -> None:
    """Write every knob back to [merge] so the next merge (and the wizard) starts from these choices."""
    ws.update_settings("merge", settings.to_dict())
