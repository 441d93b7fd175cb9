"""Job kinds, each declared once.

Each module in this package (but ``steps``, the outcome bookkeeping) declares one job kind at its end::

    JOB = JobKind(
        kind="extract",                    # the name clients submit
        params=Params,                     # a dataclass, every field with a default
        run=run,                           # run(ws, params, report) -> dict
        steps=("extract_src",),            # workspace steps it moves, or a function steps(params) -> list;
                                           # the engine marks them running / done / failed around ``run``
        managed_steps=(),                  # steps the job marks itself (the ``run`` pipeline, stage by stage)
        lane="main",                       # "interactive": a short job (a preview) beside the main queue,
                                           # in one warm, persistent worker process
        stoppable=True,                    # the wizard's Stop (x) cancels it (it calls check_cancelled)
        screens=("extract",),              # the wizard screens that draw it; the wizard goes to the first
        label="Extracting faces",          # what the wizard calls it
        consent=True,                      # the wizard asks for consent before submitting it
    )

A declaration is checked when it is made (a misspelt field is a TypeError, an unknown lane, step or screen a
``JobDeclarationError``), and ``job_kinds()`` refuses a module without one and two modules of one kind. The
engine publishes every declaration's ``public()`` part in its ``status`` (``jobs``); the wizard derives
which screen draws, stops and lands on each kind from that, so a new kind is one file here.

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
import re
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import UserError
from engine.values import check_value
from engine.workspace import STEPS as WORKSPACE_STEPS

#: Lanes a job can run in (engine.server.scheduler keeps one queue per lane).
LANES = ("main", "interactive")
#: The wizard screens a job can name: its steps that draw jobs, and the mask review (tui/steps.py checks
#: this list against the wizard's steps in a test).
WIZARD_SCREENS = ("extract", "check", "train", "merge", "export", "masks")
#: Modules of this package that are not job kinds.
HELPERS = ("steps",)
#: Where a job's parameters come from, as their errors say.
SOURCE = "the request"
_KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


class JobDeclarationError(ValueError):
    """A job kind's declaration that cannot be right (raised when its module is imported)."""


@dataclass(frozen=True, kw_only=True)
class JobKind:
    """One job kind: what the engine runs and what the wizard shows of it (see the module docstring)."""

    kind: str
    params: type
    run: Callable[..., dict]
    steps: tuple[str, ...] | Callable[[Any], list[str]] = ()
    managed_steps: tuple[str, ...] = ()
    lane: str = "main"
    stoppable: bool = False
    screens: tuple[str, ...] = ()
    label: str = ""
    consent: bool = True

    def __post_init__(self) -> None:
        where = f"The job kind {self.kind!r}"
        if not isinstance(self.kind, str) or not _KIND_NAME.fullmatch(self.kind):
            raise JobDeclarationError(f"{where} is not a job kind's name (lower-case letters, digits, _).")
        if not dataclasses.is_dataclass(self.params):
            raise JobDeclarationError(f"{where} has params that are not a dataclass.")
        missing = [f.name for f in dataclasses.fields(self.params)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise JobDeclarationError(f"{where} has parameters without a default: {', '.join(missing)}.")
        if not callable(self.run):
            raise JobDeclarationError(f"{where} has a run that is not a function.")
        if self.lane not in LANES:
            raise JobDeclarationError(f"{where} names lane {self.lane!r}; lanes are {', '.join(LANES)}.")
        steps = () if callable(self.steps) else self.steps
        for what, names, known in (("workspace steps", steps, WORKSPACE_STEPS),
                                   ("workspace steps", self.managed_steps, WORKSPACE_STEPS),
                                   ("wizard screens", self.screens, WIZARD_SCREENS)):
            unknown = names if isinstance(names, str) else [name for name in names if name not in known]
            if unknown:
                raise JobDeclarationError(f"{where} names {what} {unknown!r} that do not exist "
                                          f"(a tuple of {', '.join(known)}).")
        if not isinstance(self.stoppable, bool) or not isinstance(self.consent, bool):
            raise JobDeclarationError(f"{where}: stoppable and consent are true or false.")
        if self.screens and not self.label:
            raise JobDeclarationError(f"{where} is drawn by the wizard and needs a label.")

    @property
    def module(self) -> types.ModuleType:
        """The module that declares the kind (its ``run`` and helpers)."""
        return sys.modules[self.run.__module__]

    @property
    def params_type(self) -> type:
        return self.params

    def step_names(self, params: Any) -> list[str]:
        """The workspace steps a job with ``params`` moves (the engine marks them around ``run``)."""
        if callable(self.steps):
            return list(self.steps(params))
        return list(self.steps)

    def parse_params(self, raw: dict[str, Any] | None) -> Any:
        return parse_params(self.params, raw or {})

    def public(self) -> dict[str, Any]:
        """What the engine tells clients about the kind (the ``jobs`` of its ``status``)."""
        return {"kind": self.kind, "label": self.label or self.kind, "lane": self.lane,
                "stoppable": self.stoppable, "screens": list(self.screens), "consent": self.consent,
                "steps": None if callable(self.steps) else list(self.steps),
                "managed_steps": list(self.managed_steps)}


_KINDS: dict[str, JobKind] | None = None


def job_kinds() -> dict[str, JobKind]:
    """Every job kind in this package, by name (imported once); a module without a declaration is refused."""
    global _KINDS
    if _KINDS is None:
        kinds: dict[str, JobKind] = {}
        for info in pkgutil.iter_modules(__path__):
            if info.name in HELPERS:
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            job = getattr(module, "JOB", None)
            if not isinstance(job, JobKind):
                raise JobDeclarationError(f"The job module {module.__name__} declares no JOB = JobKind(...).")
            if job.kind in kinds:
                raise JobDeclarationError(f"Two job modules declare the kind {job.kind!r}.")
            kinds[job.kind] = job
        _KINDS = kinds
    return _KINDS


def public_declarations() -> dict[str, dict[str, Any]]:
    """Every kind's public declaration, as the engine's ``status`` carries it (``jobs``)."""
    return {kind: job.public() for kind, job in sorted(job_kinds().items())}


def get_kind(kind: str) -> JobKind:
    kinds = job_kinds()
    if kind not in kinds:
        raise UserError(f"There is no job kind {kind!r}.", f"Known kinds: {', '.join(sorted(kinds))}.")
    return kinds[kind]


def parse_params(params_type: type, raw: dict[str, Any]) -> Any:
    """Build ``params_type`` from a JSON dict, checking names and types; errors are ``UserError``."""
    if not isinstance(raw, dict):
        raise UserError("Job parameters must be a JSON object.")
    hints = typing.get_type_hints(params_type)
    fields = {f.name for f in dataclasses.fields(params_type)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise UserError(f"Unknown parameter(s): {', '.join(unknown)}.", f"Known: {', '.join(sorted(fields))}.")
    # One check for every value (engine.values): a parameter that is a setting by its declaration.
    declared = getattr(params_type, "declared_settings", {})
    values = {name: declared[name].check(value, SOURCE) if name in declared and value is not None
              else check_value(f"Parameter {name!r}", value, hints.get(name, Any), source=SOURCE)
              for name, value in raw.items()}
    return params_type(**values)


def params_to_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)
