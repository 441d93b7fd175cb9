"""The list of recently opened workspaces, kept in ``$XDG_CONFIG_HOME/swapwizard/recent.json``."""

from __future__ import annotations

import os
from pathlib import Path

from engine.atomic import atomic_write_json, read_json
from engine.workspace import CONFIG_NAME

KEEP = 10


def recent_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "swapwizard" / "recent.json"


class RecentWorkspaces:
    """Most recent first; folders that no longer hold a workspace drop out when read."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or recent_file()
        #: Entries the last ``load`` skipped because they cannot be used (not text, unreadable folder).
        self.skipped = 0

    def load(self) -> list[Path]:
        """The usable entries; a bad one (a number, a NUL byte, a folder we may not look into) is skipped
        and counted in ``skipped``: one bad entry must never stop the wizard."""
        data = read_json(self.path, default=[])
        found: list[Path] = []
        self.skipped = 0 if isinstance(data, list) else 1
        for item in data if isinstance(data, list) else []:
            try:
                if not isinstance(item, str):
                    raise ValueError(item)
                path = Path(item)
                if (path / CONFIG_NAME).is_file():
                    found.append(path)
            except (OSError, ValueError):
                self.skipped += 1
        return found

    def add(self, root: Path) -> None:
        root = root.resolve()
        paths = [root, *(path for path in self.load() if path != root)][:KEEP]
        try:
            atomic_write_json(self.path, [str(path) for path in paths])
        except OSError:
            pass  # a read-only home must not stop the wizard; the list is a convenience
