"""The one check of a value against its declaration: a setting's, a job parameter's, a protocol field's.

A declaration is a type (``int``, ``float | None``, ``Literal["src", "dst"]``, ``list[str]``,
``dict[str, Any]``...) and, for settings, choices, an inclusive range or a pattern. ``check_value``
returns the value (an int taken for a float) or raises ``UserError`` with one sentence in one format,
whoever asks::

    [merge] blur = 'soft' (workspace.toml) is not a whole number.     hint: For example: blur = 0.
    Parameter 'side' = 'left' (the request) is not one of the choices. hint: Use one of: src, dst, both.
    submit.kind = 3 is not text.                                       hint: Send text.

engine.settings (``Setting.check``), engine.jobs (``parse_params``) and engine.protocol (each message's
fields) call it. Standard library only, on the base floor, so the protocol stays importable by the TUI.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from engine.errors import UserError

#: What a value of each type is called in a sentence.
TYPE_WORDS: dict[Any, str] = {bool: "true or false", int: "a whole number", float: "a number", str: "text",
                              dict: "a table of values", list: "a list", tuple: "a list"}


def show(value: Any) -> str:
    """``value`` as the sentence quotes it (text in quotes, a whole float without its ``.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if abs(value) >= 1 else repr(value)
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


def check_value(subject: str, value: Any, annotation: Any, *, source: str = "", hint: str = "",
                choices: tuple[Any, ...] = (), range: tuple[float, float] | None = None,  # noqa: A002
                range_words: str = "", pattern: str = "", pattern_words: str = "") -> Any:
    """``value`` if it suits ``annotation`` and the limits, else ``UserError`` naming ``subject``.

    ``source`` says where the value came from (``--iters``, ``workspace.toml``); ``hint`` replaces the
    generic hint of a value of the wrong type or pattern (settings give an example line).
    """
    if type(value) is annotation and not (choices or range or pattern) and (annotation is not float or value == value):
        return value  # the common case, first: the protocol checks every field of every event
    given = value
    shown = lambda: f"{subject} = {show(given)}" + (f" ({source})" if source else "")  # noqa: E731 - said on error only
    try:
        value = _typed(value, annotation)
    except _Wrong as wrong:
        if wrong.choices:
            raise UserError(f"{shown()} is not one of the choices.",
                            f"Use one of: {', '.join(map(str, wrong.choices))}.") from None
        raise UserError(f"{shown()} is not {wrong.words}.", hint or f"Give {wrong.words}.") from None
    if isinstance(value, float) and value != value:  # NaN: not a number people can mean
        raise UserError(f"{shown()} is not a number.", hint or "Give a number.")
    if pattern and isinstance(value, str) and not re.fullmatch(pattern, value):
        raise UserError(f"{shown()} is not a valid {pattern_words or 'value'}.", hint)
    if choices and value not in choices:
        raise UserError(f"{shown()} is not one of the choices.", f"Use one of: {', '.join(map(str, choices))}.")
    if range is not None and not range[0] <= value <= range[1]:
        raise UserError(f"{shown()} is out of range.", f"Use {range_words or f'{show(range[0])} to {show(range[1])}'}.")
    return value


class _Wrong(Exception):
    def __init__(self, words: str, choices: tuple[Any, ...] = ()) -> None:
        super().__init__(words)
        self.words = words
        self.choices = choices


def _typed(value: Any, annotation: Any) -> Any:
    """``value`` as ``annotation`` takes it (an int for a float; a list for a tuple), or ``_Wrong``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        wrongs: list[_Wrong] = []
        for option in options:
            try:
                return _typed(value, option)
            except _Wrong as wrong:
                wrongs.append(wrong)
        if len(wrongs) == 1:
            raise wrongs[0]
        raise _Wrong(" or ".join(w.words for w in wrongs))
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Wrong("one of the choices", args)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Wrong(TYPE_WORDS[origin])
        inner = args[0] if args else Any
        items = [_typed(v, inner) for v in value]
        return items if origin is list else tuple(items)
    kind = origin or annotation
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in TYPE_WORDS:
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        raise _Wrong(TYPE_WORDS[kind])
    return value
