"""A real terminal for the wizard: a tmux pane, as over SSH. ``keys`` types, ``text`` reads the screen.

Each ``Terminal`` runs its own tmux server, kept alive by an idle session: killing the wizard's session
(a lost terminal) must not stop the server, or the session opened next can land on a server that is
exiting and vanish with it (a blank screen until the test gives up). A wizard that exits leaves its
last screen (``remain-on-exit``), so a crash is read, not guessed.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid


class Terminal:
    def __init__(self, width: int = 80, height: int = 24) -> None:
        self.server = f"swapwizard-test-{uuid.uuid4().hex[:8]}"
        self.size = (str(width), str(height))
        self.name = ""
        self.run("new-session", "-d", "-s", "keeper", "sleep 3600")

    def open(self, command: str) -> None:
        """Run ``command`` in a new session (a new name each time), retried should tmux refuse."""
        for _ in range(10):
            self.name = f"wizard-{uuid.uuid4().hex[:8]}"
            done = self.run("new-session", "-d", "-s", self.name, "-x", self.size[0], "-y", self.size[1], command,
                            ";", "set-option", "-t", self.name, "remain-on-exit", "on")
            if done.returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"tmux could not start a session: {done.stderr.strip()}")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=10)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", self.name, key)
            time.sleep(0.15)

    def text(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name).stdout

    def wait(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            time.sleep(0.25)
        done = self.run("capture-pane", "-p", "-t", self.name)
        raise AssertionError(f"{pattern!r} never appeared; the screen was:\n{done.stdout}\n"
                             f"(tmux: exit {done.returncode} {done.stderr.strip()})")

    def kill(self) -> None:
        """The wizard's terminal is gone (its session killed); the server stays."""
        self.run("kill-session", "-t", self.name)

    def close(self) -> None:
        self.run("kill-server")
