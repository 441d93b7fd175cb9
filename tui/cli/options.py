"""CLI options made from the setting declarations (engine/settings.py), so a setting is declared once.

``@setting_options("merge")`` adds one ``--flag`` per declared ``[merge]`` setting (``cli=True``) to a
typer command, with the declaration's help; the command receives them as ``settings``: a dict of the
ones given, each already checked against its declaration (a bad value exits 2 with one sentence and
a hint, before anything is submitted, run or saved).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, Optional

import typer

from engine import settings as declared
from engine.errors import UserError
from engine.settings import Setting
from tui.cli.common import fail


def cli_settings(section: str, group: str | Iterable[str] | None = None,
                 only: Iterable[str] | None = None) -> tuple[Setting, ...]:
    """The settings of ``section`` (``group``; ``only`` these keys) that are command-line options."""
    wanted = None if only is None else set(only)
    return tuple(s for s in declared.of(section, group) if s.cli and (wanted is None or s.key in wanted))


def flag_decls(setting: Setting) -> tuple[str, ...]:
    """The typer parameter declarations of ``setting``: ``--flag`` (booleans ``--flag/--no-flag``)."""
    flags = setting.flags or (setting.option,)
    if setting.type is bool:
        return tuple(f"{flag}/--no-{flag[2:]}" for flag in flags)
    return flags


def _help(setting: Setting) -> str:
    text = setting.help
    if setting.choices and not all(str(c) in text for c in setting.choices):
        text += f" One of: {', '.join(map(str, setting.choices))}."
    if setting.range is not None:
        text += f" Range {setting.range[0]:g} to {setting.range[1]:g}."
    return f"{text} [{setting.section}] {setting.key} in workspace.toml."


def setting_options(section: str, group: str | Iterable[str] | None = None,
                    only: Iterable[str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command whose last parameter is ``settings: dict``: it gets one option per
    declared setting, inserted before its own keyword options named ``detach``; ``settings`` holds
    the options given (checked), keyed by setting key."""
    chosen = cli_settings(section, group, only)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
        own = [p for p in signature.parameters.values() if p.name != "settings"]
        added = [inspect.Parameter(s.key, positional, annotation=Optional[s.type],
                                   default=typer.Option(None, *flag_decls(s), help=_help(s), show_default=False))
                 for s in chosen]
        clash = {p.name for p in own} & {p.name for p in added}
        assert not clash, f"{command.__name__}: {clash} is both a setting and an own option"
        params = [*(p for p in own if p.name != "detach"), *added, *(p for p in own if p.name == "detach")]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given: dict[str, Any] = {}
            for s in chosen:
                value = kwargs.pop(s.key, None)
                if value is None:
                    continue
                try:
                    given[s.key] = s.check(value, s.option)
                except UserError as exc:
                    fail(exc.message, exc.hint)
            return command(*args, **kwargs, settings=given)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.declared_settings = chosen  # type: ignore[attr-defined]
        return wrapper

    return decorate


def check_workspace(ws: Any, *sections: str) -> None:
    """Exit 2 (one sentence and a hint) when workspace.toml holds a bad value in one of ``sections``:
    found before the job is submitted, not half-way through it."""
    for section in sections:
        try:
            declared.layered(section, ("workspace.toml", ws.section(section)))
        except UserError as exc:
            fail(exc.message, f"{exc.hint} Fix it in {ws.config_path}, or delete the line to use the default.")
