"""Fixtures for the wizard's tests: an isolated recent-workspaces list and a helper to drive the app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tui.recent import RecentWorkspaces


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch) -> Path:
    """Keep the recent-workspaces list of tests out of the user's ~/.config."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    # Snapshots are recorded in colour: a NO_COLOR (or FORCE_COLOR) in the caller's environment, as CI
    # may set, must not change them. The NO_COLOR snapshot sets it itself.
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return home


@pytest.fixture
def recent(config_home) -> RecentWorkspaces:
    return RecentWorkspaces(config_home / "swapwizard" / "recent.json")


def drive(app: Any, script: Callable[[Any], Awaitable[None]], size: tuple[int, int] = (80, 24),
          messages: list | None = None) -> None:
    """Run ``app`` headless at ``size`` and ``await script(pilot)`` inside it."""

    async def main() -> None:
        hook = messages.append if messages is not None else None
        async with app.run_test(size=size, message_hook=hook) as pilot:
            await script(pilot)

    asyncio.run(main())


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)
