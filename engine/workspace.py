"""A workspace: one face-swap job's folder, self-contained and movable (only relative paths inside).

Layout (``workspace_template/`` is what ``swapwizard new`` copies)::

    WS/workspace.toml            settings the user chose, and the consent record
    WS/data_src.<ext> | data_src/   source person: a video, or a folder of images
    WS/data_dst.<ext> | data_dst/   destination: a video, or a folder of images
    WS/data_<side>/aligned/      aligned face crops
    WS/data_<side>/alignments.jsonl  per-frame face records (JSON lines, no pickle)
    WS/model/<name>/             checkpoints (safetensors + JSON), backups/, previews/
    WS/output/                   result.mp4 and other outputs
    WS/.swapwizard/              engine socket, pid, lock, state.json, events.jsonl, logs/

This module is light (standard library only) so the TUI and CLI can import it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_json, atomic_write_text, read_json
from engine.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SIDES = ("src", "dst")
#: The pipeline's steps in order; state.json holds one record per step.
STEPS = ("extract_src", "extract_dst", "check", "train", "merge")
STEP_STATUSES = ("todo", "running", "done", "failed")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CONFIG_NAME = "workspace.toml"
STATE_DIR_NAME = ".swapwizard"
DEFAULT_MODEL = "default"


def template_dir() -> Path:
    """The ``workspace_template`` folder: beside the packages in a checkout, or installed as data."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "workspace_template", here / "workspace_template"):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    raise UserError("The workspace template is missing from this installation.",
                    "Reinstall swapwizard (pip install -e . from a checkout).")


class Workspace:
    """Paths and persistent state of one workspace."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    # -- opening and creating -------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Workspace:
        ws = cls(path)
        if not ws.root.is_dir():
            raise UserError(f"There is no workspace at {ws.root}.",
                            f"Create one with: swapwizard new {path}")
        if not ws.config_path.is_file():
            raise UserError(f"{ws.root} is not a swapwizard workspace (no {CONFIG_NAME}).",
                            f"Create one with: swapwizard new {path}")
        return ws

    @classmethod
    def create(cls, path: str | os.PathLike[str], src: str | os.PathLike[str] | None = None,
               dst: str | os.PathLike[str] | None = None, link: bool = False) -> Workspace:
        ws = cls(path)
        if ws.config_path.exists():
            raise UserError(f"A workspace already exists at {ws.root}.",
                            "Open it, or choose another folder.")
        if ws.root.exists() and any(ws.root.iterdir()):
            raise UserError(f"{ws.root} exists and is not empty.",
                            "Choose a new folder name; swapwizard never writes into a folder it did not make.")
        for side, source in (("src", src), ("dst", dst)):
            if source is not None:
                _check_source(Path(source), side)
        shutil.copytree(template_dir(), ws.root, dirs_exist_ok=True)
        ws.state_dir.mkdir(mode=0o700, exist_ok=True)
        for side, source in (("src", src), ("dst", dst)):
            if source is not None:
                ws.set_source(side, source, link=link)
        ws.write_state({"steps": {}})
        return ws

    def set_source(self, side: str, source: str | os.PathLike[str], link: bool = False) -> Path:
        """Copy (or symlink) a video or an image folder in as ``data_<side>.<ext>`` / ``data_<side>/``."""
        _check_side(side)
        source = Path(source).expanduser()
        _check_source(source, side)
        old = self.source(side)
        if old is not None and (old.is_symlink() or old.is_file()):
            old.unlink()
        if source.is_dir():
            target = self.side_dir(side)
            target.mkdir(exist_ok=True)
            for image in sorted(source.iterdir()):
                if image.suffix.lower() in IMAGE_EXTENSIONS and image.is_file():
                    dest = target / image.name
                    if link:
                        os.symlink(image.resolve(), dest)
                    else:
                        shutil.copy2(image, dest)
        else:
            target = self.root / f"data_{side}{source.suffix.lower()}"
            if link:
                os.symlink(source.resolve(), target)
            else:
                tmp = target.with_name(f".{target.name}.part")
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
        self.side_dir(side).mkdir(exist_ok=True)
        return target

    # -- paths ----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR_NAME

    @property
    def state_path(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def events_path(self) -> Path:
        return self.state_dir / "events.jsonl"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def engine_log_path(self) -> Path:
        return self.log_dir / "engine.log"

    @property
    def pid_path(self) -> Path:
        return self.state_dir / "engine.pid"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "engine.lock"

    @property
    def socket_dir(self) -> Path:
        """Owner-only folder that holds the engine socket."""
        return self.state_dir / "run"

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / "engine.sock"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def models_root(self) -> Path:
        return self.root / "model"

    def model_name(self, name: str | None = "") -> str:
        """Which model a job or screen means: ``name`` when given, else ``[train] model``, else "default".

        The one place this is decided (training, merging, previews, quality and the wizard ask here).
        """
        return str(name or self.section("train").get("model") or "") or DEFAULT_MODEL

    def model_dir(self, name: str = DEFAULT_MODEL) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
            raise UserError(f"{name!r} is not a valid model name.",
                            "Use letters, digits, '-', '_' and '.', starting with a letter or digit.")
        return self.models_root / name

    def model_names(self) -> list[str]:
        if not self.models_root.is_dir():
            return []
        return sorted(p.name for p in self.models_root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def side_dir(self, side: str) -> Path:
        _check_side(side)
        return self.root / f"data_{side}"

    def aligned_dir(self, side: str) -> Path:
        return self.side_dir(side) / "aligned"

    def alignments_path(self, side: str) -> Path:
        return self.side_dir(side) / "alignments.jsonl"

    def source(self, side: str) -> Path | None:
        """The side's input: ``data_<side>.<ext>`` video, or ``data_<side>/`` holding images; else None."""
        _check_side(side)
        for candidate in sorted(self.root.glob(f"data_{side}.*")):
            if candidate.suffix.lower() in VIDEO_EXTENSIONS and candidate.exists():
                return candidate
        folder = self.side_dir(side)
        if folder.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir() if p.is_file()):
            return folder
        return None

    def rel(self, path: str | os.PathLike[str]) -> str:
        """A path inside the workspace written relative to its root (what records store)."""
        return os.path.relpath(Path(path).resolve() if Path(path).is_absolute() else self.root / path, self.root)

    # -- settings (workspace.toml) ----------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{self.config_path} is not valid TOML: {exc}.",
                            "Fix the line it names, or copy workspace_template/workspace.toml back.") from None

    def section(self, name: str) -> dict[str, Any]:
        value = self.settings().get(name, {})
        return value if isinstance(value, dict) else {}

    def update_settings(self, section: str, values: dict[str, Any]) -> None:
        """Set keys of one ``[section]`` in workspace.toml, keeping the user's comments and layout."""
        text = self.config_path.read_text(encoding="utf-8") if self.config_path.exists() else ""
        atomic_write_text(self.config_path, update_toml_section(text, section, values))

    def record_consent(self, confirmed_by: str = "") -> None:
        self.update_settings("consent", {
            "confirmed": True,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "confirmed_by": confirmed_by or os.environ.get("USER", ""),
        })

    def consent_confirmed(self) -> bool:
        return bool(self.section("consent").get("confirmed"))

    # -- step state (state.json) ------------------------------------------------------------
    def read_state(self) -> dict[str, Any]:
        state = read_json(self.state_path, default=None)
        if not isinstance(state, dict):
            state = {}
        state.setdefault("steps", {})
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        atomic_write_json(self.state_path, state)

    def steps(self) -> dict[str, dict[str, Any]]:
        recorded = self.read_state()["steps"]
        return {name: recorded.get(name, {"status": "todo"}) for name in STEPS}

    def set_step(self, step: str, status: str, **info: Any) -> None:
        """Record a step's status with the time and any details (params, result, error)."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}")
        if status not in STEP_STATUSES:
            raise ValueError(f"unknown step status {status!r}")
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        # The engine and its job processes both record steps: a lock keeps read-modify-write whole.
        with open(self.state_dir / "state.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read_state()
            record = {"status": status, "updated": time.time(), **info}
            state["steps"][step] = record
            self.write_state(state)

    def first_unfinished_step(self) -> str | None:
        for name, record in self.steps().items():
            if record.get("status") != "done":
                return name
        return None


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise UserError(f"{side!r} is not a side.", "Use 'src' (the source person) or 'dst' (the destination video).")


def _check_source(source: Path, side: str) -> None:
    if not source.exists():
        raise UserError(f"The {side} input {source} does not exist.", "Check the path (quote it if it has spaces).")
    if source.is_dir():
        if not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in source.iterdir() if p.is_file()):
            raise UserError(f"The folder {source} holds no images.",
                            f"Give a video or a folder of {', '.join(IMAGE_EXTENSIONS)} files.")
    elif source.suffix.lower() not in VIDEO_EXTENSIONS:
        raise UserError(f"{source.name} is not a video swapwizard knows ({source.suffix or 'no extension'}).",
                        f"Give a video ({', '.join(VIDEO_EXTENSIONS)}) or a folder of images.")


def _toml_value(value: Any) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def update_toml_section(text: str, section: str, values: dict[str, Any]) -> str:
    """Return ``text`` with ``key = value`` lines of ``[section]`` set, other lines untouched."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
    start = end = None
    for i, line in enumerate(lines):
        match = header.match(line)
        if match and start is None and match.group(1).strip() == section:
            start = i
        elif match and start is not None:
            end = i
            break
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append(f"[{section}]")
        start, end = len(lines) - 1, len(lines)
    elif end is None:
        end = len(lines)
    pending = dict(values)
    for i in range(start + 1, end):
        key_match = re.match(r"^\s*([A-Za-z0-9_-]+)\s*=", lines[i])
        if key_match and key_match.group(1) in pending:
            key = key_match.group(1)
            lines[i] = f"{key} = {_toml_value(pending.pop(key))}"
    insert_at = end
    while insert_at > start + 1 and not lines[insert_at - 1].strip():
        insert_at -= 1
    new_lines = [f"{key} = {_toml_value(value)}" for key, value in pending.items()]
    lines[insert_at:insert_at] = new_lines
    return "\n".join(lines) + "\n"
