"""Errors a user can act on: one clear sentence plus a hint, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment.

    ``message`` says what is wrong in one sentence; ``hint`` says what to do about it.
    Jobs raise it; the engine turns it into a ``job_failed`` event and the CLI prints it
    without a traceback.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class JobCancelled(Exception):
    """Raised inside a job when a client asked to cancel it; the engine reports ``job_cancelled``."""
