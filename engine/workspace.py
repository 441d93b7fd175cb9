"""A workspace: one face-swap job's folder, self-contained and movable (only relative paths inside).

Layout (``workspace_template/`` is what ``swapwizard new`` copies)::

    WS/workspace.toml            settings the user chose, and the consent record
    WS/data_src.<ext> | data_src/   source person: a video, or a folder of images
    WS/data_dst.<ext> | data_dst/   destination: a video, or a folder of images
    WS/data_<side>/aligned/      aligned face crops
    WS/data_<side>/alignments.jsonl  per-frame face records (JSON lines, no pickle)
    WS/model/<name>/             checkpoints (safetensors + JSON), backups/, previews/
    WS/output/                   result.mp4 and other outputs
    WS/.swapwizard/              engine socket, pid, lock, state.json (+ .bak), events.jsonl, logs/

Private by default: a workspace belongs to the user who made it. Opening or creating one sets the
process umask from ``[workspace] share`` ("private": folders 0700, files 0600; "group": 0750 / 0640),
so everything the CLI, the engine and its jobs (and ffmpeg) create gets those modes, and copies
(template, sources) are set to them explicitly. A folder (or ``.swapwizard``) owned by another user
is refused: that user could replace the engine's socket or read what is written there.

``state.json`` is checked on every read (its shape, step names and statuses, and that result paths
stay inside the workspace); each good save also writes ``state.json.bak``, and a damaged or
wrong-shaped ``state.json`` is set aside as ``state.json.damaged`` and the last good copy used.

This module is light (standard library only) so the TUI and CLI can import it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_json, atomic_write_text
from engine.errors import UserError
from engine.paths import UnsafePath, check_name
from engine.settings import MODEL_NAME, get

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
WORKSPACE_VERSION = 1
#: ``[workspace] share``: who besides the owner may read the workspace -> (folder mode, file mode).
SHARE_MODES = {"private": (0o700, 0o600), "group": (0o750, 0o640)}
#: Keys of a step's result that name a file of the workspace (checked to stay inside it).
_RESULT_PATH_KEYS = ("output", "path", "small", "before", "preview", "contact_sheet")

log = logging.getLogger("engine.workspace")


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
        #: What was wrong with state.json at the last read (None: nothing); ``status`` shows it.
        self.state_warning: str | None = None

    # -- opening and creating -------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Workspace:
        ws = cls(path)
        if not ws.root.is_dir():
            raise UserError(f"There is no workspace at {ws.root}.",
                            f"Create one with: swapwizard new {path}")
        ws.check_owner()
        if not ws.config_path.is_file():
            raise UserError(f"{ws.root} is not a swapwizard workspace (no {CONFIG_NAME}).",
                            f"Create one with: swapwizard new {path}")
        version = ws.settings().get("workspace", {})  # a damaged workspace.toml is refused here, in one sentence
        version = version.get("version", 1) if isinstance(version, dict) else version
        if not isinstance(version, int) or isinstance(version, bool) or version > WORKSPACE_VERSION:
            raise UserError(f"{ws.config_path} has [workspace] version = {version!r}; this swapwizard reads "
                            f"version {WORKSPACE_VERSION}.", "Upgrade swapwizard, or fix the value.")
        ws.apply_share()
        return ws

    @classmethod
    def create(cls, path: str | os.PathLike[str], src: str | os.PathLike[str] | None = None,
               dst: str | os.PathLike[str] | None = None, link: bool = False) -> Workspace:
        ws = cls(path)
        if ws.config_path.exists():
            raise UserError(f"A workspace already exists at {ws.root}.",
                            "Open it, or choose another folder.")
        if ws.root.exists():
            ws.check_owner()  # an empty folder someone else made: they could swap .swapwizard in later
        if ws.root.exists() and any(ws.root.iterdir()):
            raise UserError(f"{ws.root} exists and is not empty.",
                            "Choose a new folder name; swapwizard never writes into a folder it did not make.")
        for side, source in (("src", src), ("dst", dst)):
            if source is not None:
                check_source(Path(source), side)
        os.umask(0o077)  # private while the template is copied; the template's own share setting follows
        shutil.copytree(template_dir(), ws.root, dirs_exist_ok=True, copy_function=shutil.copyfile)
        ws.apply_share()
        ws.restrict(ws.root)
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
        check_source(source, side)
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
                        shutil.copyfile(image, dest)
                        self.restrict(dest)
        else:
            target = self.root / f"data_{side}{source.suffix.lower()}"
            if link:
                os.symlink(source.resolve(), target)
            else:
                tmp = target.with_name(f".{target.name}.part")
                shutil.copyfile(source, tmp)
                self.restrict(tmp)
                os.replace(tmp, target)
        self.side_dir(side).mkdir(exist_ok=True)
        return target

    # -- ownership and modes ----------------------------------------------------------------
    def check_owner(self) -> None:
        """Refuse a workspace folder, or its ``.swapwizard``, that another user owns (root included: a
        folder of uid 65534 is refused to root as to anyone), or a ``.swapwizard`` that is a link."""
        me = os.geteuid()
        for path in (self.root, self.state_dir):
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise UserError(f"Cannot read {path} ({exc.strerror}).", "Check the folder's permissions.") from None
            if path == self.state_dir and stat.S_ISLNK(info.st_mode):
                raise UserError(f"{path} is a link, not the workspace's own folder; refusing to use it.",
                                f"Remove it (rm {path}); swapwizard makes it again.")
            if info.st_uid != me:
                raise UserError(f"{path} belongs to another user (uid {info.st_uid}, you are uid {me}); "
                                "refusing to use it.",
                                "A workspace is private to the user who made it: make your own (swapwizard new, "
                                "or swapwizard unpack a copy) in a folder of yours; if it is yours under another "
                                "uid (a container's mounted volume), chown -R it to the user you run as.")

    def share(self) -> str:
        """``[workspace] share``: "private" (the default) or "group". A value of another kind (or a
        workspace.toml that cannot be read) counts as "private": never more open than asked."""
        try:
            return get("workspace", "share").check(self.section("workspace").get("share", "private"), CONFIG_NAME)
        except UserError as exc:
            log.warning("%s Using share = \"private\".", exc.message)
            return "private"

    def modes(self) -> tuple[int, int]:
        """(folder mode, file mode) for what this workspace creates."""
        return SHARE_MODES[self.share()]

    def apply_share(self) -> None:
        """Set the process umask from ``[workspace] share`` (0077 private, 0027 group) and give the
        workspace folder and ``.swapwizard`` their mode, whatever the umask was."""
        folder_mode, _ = self.modes()
        os.umask(0o777 & ~folder_mode)  # atomic writes read it too (engine.atomic.default_mode)
        for path, mode in ((self.root, folder_mode), (self.state_dir, 0o700)):
            try:
                if stat.S_IMODE(os.lstat(path).st_mode) != mode:
                    os.chmod(path, mode)
            except OSError:
                pass  # missing, or not ours (check_owner says so)

    def restrict(self, path: str | os.PathLike[str]) -> None:
        """Give ``path`` (a file, or a folder and everything in it) the workspace's modes."""
        folder_mode, file_mode = self.modes()
        path = Path(path)
        items = [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]
        for item in items:
            if item.is_symlink():
                continue
            os.chmod(item, folder_mode if item.is_dir() else file_mode)

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
    def state_backup_path(self) -> Path:
        """The last good state.json, written beside it on every save."""
        return self.state_dir / "state.json.bak"

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
        if not isinstance(name, str) or not re.fullmatch(MODEL_NAME, name):
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
    @property
    def config_backup_path(self) -> Path:
        """The last workspace.toml swapwizard wrote (a copy to go back to after a bad hand edit)."""
        return self.state_dir / "workspace.toml.bak"

    def settings(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            back = (f"go back to the last good copy (cp {self.config_backup_path} {self.config_path})"
                    if self.config_backup_path.is_file() else "copy workspace_template/workspace.toml back")
            raise UserError(f"{self.config_path} is not valid TOML: {exc}.", f"Fix the line it names, or {back}.") from None

    def section(self, name: str) -> dict[str, Any]:
        value = self.settings().get(name, {})
        return value if isinstance(value, dict) else {}

    def update_settings(self, section: str, values: dict[str, Any]) -> None:
        """Set keys of one ``[section]`` in workspace.toml, keeping the user's comments and layout."""
        text = self.config_path.read_text(encoding="utf-8") if self.config_path.exists() else ""
        text = update_toml_section(text, section, values)
        atomic_write_text(self.config_path, text)
        if self.state_dir.is_dir():
            atomic_write_text(self.config_backup_path, text)

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
        """state.json, checked; a damaged or wrong-shaped one gives the last good copy (state.json.bak),
        else an empty state, and ``state_warning`` says which file and what was wrong."""
        state, problem = _load_state(self.state_path, self.root)
        if problem is None:
            self.state_warning = None
            return state
        backup, backup_problem = _load_state(self.state_backup_path, self.root)
        damaged = self.state_path.with_name("state.json.damaged")
        kept = f"; the damaged file is kept as {damaged.name}"
        if backup_problem is None and self.state_backup_path.exists():
            warning = f"{self.state_path} {problem}; using the last good copy, {self.state_backup_path.name}{kept}."
            state = backup
        else:
            warning = f"{self.state_path} {problem}, and there is no good copy; every step shows as todo{kept}."
            state = {"steps": {}}
        if warning != self.state_warning:
            log.warning("%s", warning)
            self.state_warning = warning
            try:  # keep what was there for whoever wants to look (a new file: no race with a save)
                if not damaged.exists():
                    shutil.copyfile(self.state_path, damaged)
            except OSError:
                pass
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        """Write state.json atomically, and the same content as state.json.bak (the last good copy)."""
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        atomic_write_json(self.state_backup_path, state)
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


def _load_state(path: Path, root: Path) -> tuple[dict[str, Any], str | None]:
    """(state, None) for a good or missing file, else ({"steps": {}}, what is wrong with it)."""
    import json

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"steps": {}}, None
    except (OSError, UnicodeDecodeError) as exc:
        return {"steps": {}}, f"cannot be read ({exc})"
    try:
        state = json.loads(text)
    except ValueError as exc:
        return {"steps": {}}, f"is not valid JSON, perhaps cut short ({exc})"
    problem = _state_problem(state)
    return (state, None) if problem is None else ({"steps": {}}, problem)


def _state_problem(state: Any) -> str | None:
    """What is wrong with the shape of a state.json value, or None."""
    if not isinstance(state, dict):
        return f"holds {type(state).__name__}, not an object with steps"
    state.setdefault("steps", {})
    steps = state["steps"]
    if not isinstance(steps, dict):
        return f"has steps of type {type(steps).__name__}, not an object"
    for name, record in steps.items():
        if not isinstance(record, dict):
            return f"has step {name!r} as {type(record).__name__}, not an object"
        if record.get("status") not in STEP_STATUSES:
            return f"has step {name!r} with status {record.get('status')!r}, not one of {', '.join(STEP_STATUSES)}"
        for key, kinds in (("updated", (int, float)), ("params", dict), ("result", dict), ("error", str),
                           ("hint", str)):
            if record.get(key) is not None and not isinstance(record[key], kinds):
                return f"has step {name!r} with {key} of type {type(record[key]).__name__}"
        result = record.get("result") or {}
        named = [(key, result.get(key)) for key in _RESULT_PATH_KEYS]
        named += [(f"outputs.{k}", v) for k, v in (result.get("outputs") or {}).items()] \
            if isinstance(result.get("outputs"), dict) else []
        for key, value in named:
            if value is None:
                continue
            try:
                check_name(value, f"step {name!r} result {key}")
            except UnsafePath:
                return f"has step {name!r} naming {value!r} as its {key}, a path outside the workspace"
    return None


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise UserError(f"{side!r} is not a side.", "Use 'src' (the source person) or 'dst' (the destination video).")


def check_source(source: Path, side: str) -> None:
    """A source input must exist and be a video (by its extension) or a folder holding images."""
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
