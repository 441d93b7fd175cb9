"""Job kinds, found by name.

Each module in this package that defines ``KIND`` is a job kind. Its contract::

    KIND = "extract"                 # the name clients submit
    STEPS = ("extract_src",)         # optional: workspace steps this job moves (or a function
                                     # ``steps(params) -> list[str]``); the engine marks them
                                     # running / done / failed around ``run``
    LANE = "interactive"             # optional: a short job (a preview) that runs beside the main
                                     # queue in one warm, persistent worker process
    @dataclass
    class Params: ...                # typed parameters, every field with a default
    def run(ws: Workspace, params: Params, report: Reporter) -> dict: ...

``run`` executes in a child process of the engine, so it may block and import heavy libraries;
the module's top level must stay light (no torch, cv2 or mediapipe imports there) because the
engine imports every job module at start-up. ``run`` returns a JSON-able result dict; raising
``UserError`` gives the user its message and hint; calling ``report.check_cancelled()`` between
units of work makes cancel prompt.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing
from dataclasses import dataclass
from typing import Any

from engine.errors import UserError


@dataclass(frozen=True)
class JobKind:
    kind: str
    module: types.ModuleType
    params_type: type

    def steps(self, params: Any) -> list[str]:
        declared = getattr(self.module, "STEPS", ())
        if callable(declared):
            return list(declared(params))
        return list(declared)

    def parse_params(self, raw: dict[str, Any] | None) -> Any:
        return parse_params(self.params_type, raw or {})


_KINDS: dict[str, JobKind] | None = None


def job_kinds() -> dict[str, JobKind]:
    """Every job kind in this package, by name (imported once)."""
    global _KINDS
    if _KINDS is None:
        kinds: dict[str, JobKind] = {}
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            kind = getattr(module, "KIND", None)
            if kind:
                kinds[kind] = JobKind(kind, module, module.Params)
        _KINDS = kinds
    return _KINDS


def get_kind(kind: str) -> JobKind:
    kinds = job_kinds()
    if kind not in kinds:
        raise UserError(f"There is no job kind {kind!r}.", f"Known kinds: {', '.join(sorted(kinds))}.")
    return kinds[kind]


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(name, value, option)
            except UserError as exc:
                errors.append(exc)
        raise errors[0] if errors else UserError(f"Parameter {name!r} has a bad value.")
    if origin is typing.Literal:
        if value not in args:
            raise UserError(f"Parameter {name!r} must be one of {', '.join(map(repr, args))}, not {value!r}.")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"Parameter {name!r} must be a list.")
        inner = args[0] if args else Any
        items = [_coerce(name, v, inner) for v in value]
        return items if origin is list else tuple(items)
    if annotation is Any or annotation is dataclasses.MISSING:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"Parameter {name!r} must be true or false, not {value!r}.")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"Parameter {name!r} must be a whole number, not {value!r}.")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"Parameter {name!r} must be a number, not {value!r}.")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise UserError(f"Parameter {name!r} must be text, not {value!r}.")
    if annotation is dict or origin is dict:
        if isinstance(value, dict):
            return value
        raise UserError(f"Parameter {name!r} must be a table of values.")
    return value


def parse_params(params_type: type, raw: dict[str, Any]) -> Any:
    """Build ``params_type`` from a JSON dict, checking names and types; errors are ``UserError``."""
    if not isinstance(raw, dict):
        raise UserError("Job parameters must be a JSON object.")
    hints = typing.get_type_hints(params_type)
    fields = {f.name for f in dataclasses.fields(params_type)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise UserError(f"Unknown parameter(s): {', '.join(unknown)}.", f"Known: {', '.join(sorted(fields))}.")
    values = {name: _coerce(name, value, hints.get(name, Any)) for name, value in raw.items()}
    return params_type(**values)


def params_to_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)
