"""CLI options made from the setting declarations (engine/settings.py), so a setting is declared once.

``@setting_options("merge")`` adds one ``--flag`` per declared ``[merge]`` setting (``cli=True``) to a
typer command, with the declaration's help; the command receives them as ``settings``: a dict of the
ones given, each already checked against its declaration (a bad value exits 2 with one sentence and
a hint, before anything is submitted, run or saved). ``@c2pa_options`` adds the Content Credentials
options that every exporting command (merge, run, compare) shares.
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
        text += f" Range {setting.range_words()}."
    default = f", default {declared.toml_value(setting.default)}" if setting.template == "set" else ""
    return f"{text} ([{setting.section}] {setting.key} in workspace.toml{default}.)"


def _with_options(added: list[inspect.Parameter], receiver: str,
                  collect: Callable[[dict[str, Any]], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a typer command the options ``added`` (before its ``detach``); the command's ``receiver``
    parameter gets ``collect(values of the added options)`` instead."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != receiver]
        clash = {p.name for p in own} & {p.name for p in added}
        assert not clash, f"{command.__name__}: {clash} is both an added and an own option"
        params = [*(p for p in own if p.name != "detach"), *added, *(p for p in own if p.name == "detach")]
        names = [p.name for p in added]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name, None) for name in names}
            return command(*args, **kwargs, **{receiver: collect(values)})

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def setting_options(section: str, group: str | Iterable[str] | None = None,
                    only: Iterable[str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command that has a parameter ``settings: Optional[dict] = None``: it gets one option
    per declared setting, inserted before its own ``detach``; ``settings`` holds the options given
    (checked; a bad one exits 2), keyed by setting key."""
    chosen = cli_settings(section, group, only)
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    added = [inspect.Parameter(s.key, positional, annotation=Optional[s.type],
                               default=typer.Option(None, *flag_decls(s), help=_help(s), show_default=False))
             for s in chosen]

    def collect(values: dict[str, Any]) -> dict[str, Any]:
        given: dict[str, Any] = {}
        for s in chosen:
            if values[s.key] is not None:
                try:
                    given[s.key] = s.check(values[s.key], s.option)
                except UserError as exc:
                    fail(exc.message, exc.hint)
        return given

    return _with_options(added, "settings", collect)


def c2pa_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--c2pa/--no-c2pa, --c2pa-cert and --c2pa-key (over [c2pa] cert/key) for a command that exports; its
    parameter ``c2pa: Optional[dict] = None`` gets the job parameters they make (``c2pa_params``)."""
    from tui.cli.verify import C2PA_CERT_HELP, C2PA_HELP, C2PA_KEY_HELP, c2pa_params

    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    added = [
        inspect.Parameter("c2pa_on", positional, annotation=bool,
                          default=typer.Option(True, "--c2pa/--no-c2pa", help=C2PA_HELP)),
        inspect.Parameter("c2pa_cert", positional, annotation=Optional[str],
                          default=typer.Option(None, "--c2pa-cert", help=C2PA_CERT_HELP)),
        inspect.Parameter("c2pa_key", positional, annotation=Optional[str],
                          default=typer.Option(None, "--c2pa-key", help=C2PA_KEY_HELP)),
    ]
    return _with_options(added, "c2pa", lambda v: c2pa_params(v["c2pa_on"], v["c2pa_cert"], v["c2pa_key"]))(command)


def check_workspace(ws: Any, *sections: str) -> None:
    """Exit 2 (one sentence and a hint) when workspace.toml holds a bad value in one of ``sections``:
    found before the job is submitted, not half-way through it."""
    for section in sections:
        try:
            declared.layered(section, ("workspace.toml", ws.section(section)))
        except UserError as exc:
            fail(exc.message, f"{exc.hint} Fix it in {ws.config_path}, or delete the line to use the default.")
