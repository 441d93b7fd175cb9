"""The engine's job kinds as the wizard uses them: which screen draws, stops and lands on each one.

Each job kind is declared once, in its engine module (``JOB = JobKind(...)``, engine/jobs/__init__.py);
the engine publishes the declarations in its ``status`` (``jobs``) and the wizard derives every list it
needs from them here, so a new kind shows in the wizard without a line of the wizard changing.
"""

from __future__ import annotations

from typing import Any


class JobTable:
    """The ``jobs`` of an engine's status: ``{kind: {label, lane, stoppable, screens, consent, ...}}``."""

    def __init__(self, jobs: dict[str, dict[str, Any]] | None = None) -> None:
        self.jobs = {kind: spec for kind, spec in (jobs or {}).items() if isinstance(spec, dict)}

    def shown_on(self, screen: str) -> tuple[str, ...]:
        """The kinds whose jobs ``screen`` draws."""
        return tuple(kind for kind, spec in self.jobs.items() if screen in (spec.get("screens") or ()))

    def stopped_on(self, screen: str) -> tuple[str, ...]:
        """The kinds that ``screen``'s Stop (x) cancels: the ones it draws that stop cleanly."""
        return tuple(kind for kind in self.shown_on(screen) if self.jobs[kind].get("stoppable"))

    def home(self, kind: str | None) -> str | None:
        """The screen the wizard goes to for a job of ``kind`` (None: none, or it moves through the steps)."""
        spec = self.jobs.get(kind or "") or {}
        screens = spec.get("screens") or ()
        return None if not screens or spec.get("managed_steps") else screens[0]

    def moves_steps(self, kind: str) -> bool:
        """Whether a job of ``kind`` running is its screen's step running (a preview is not: it only shows)."""
        return self.jobs.get(kind, {}).get("lane", "main") == "main"

    def needs_consent(self, kind: str) -> bool:
        """Whether the wizard asks for consent before a job of ``kind`` (one it does not know: yes)."""
        return bool(self.jobs.get(kind, {}).get("consent", True))

    def label(self, kind: str) -> str:
        return str(self.jobs.get(kind, {}).get("label") or kind)
