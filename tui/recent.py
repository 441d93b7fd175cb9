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

    def load(self) -> list[Path]:
        data = read_json(self.path, default=[])
        paths = [Path(item) for item in data if isinstance(item, str)] if isinstance(data, list) else []
        return [path for path in paths if (path / CONFIG_NAME).is_file()]

    def add(self, root: Path) -> None:
        root = root.resolve()
        paths = [root, *(path for path in self.load() if path != root)][:KEEP]
        try:
            atomic_write_json(self.path, [str(path) for path in paths])
        except OSError:
            pass  # a read-only home must not stop the wizard; the list is a convenience
