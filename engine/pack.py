"""Moving a workspace (or only its model) between machines as one archive (tar.gz).

``pack`` leaves out what belongs to one machine (the engine's socket, pid, lock and logs) and, unless
``all_checkpoints``, every checkpoint but the newest whole one of each model: that one holds the
weights *and* the optimizer state, so training resumes exactly where it stopped; the older rolling
checkpoints, ``best/``, ``backups/`` and ``pretrained/`` stay behind (each checkpoint of a ``tiny``
model is ~50 MB, of a ``saehd`` one several hundred). ``plan`` says what will be packed and how big
it is before anything is written.

``unpack`` refuses any entry that would land outside the target folder (absolute paths, ``..``,
links, devices), archives bigger than ``MAX_UNPACK_BYTES`` (or the free disk space) or with more than
``MAX_UNPACK_ENTRIES`` entries, names that are both a file and a folder, and a model archive whose
model is a file; it extracts into a temporary folder beside the target and renames it into place only
when complete, and never overwrites an existing workspace or model. Settings of an unpacked
workspace that would reach beyond it (``Setting.reaches``: a server, a file outside the workspace)
are reset to their defaults, and the caller is told which (docs/archives.md).

Light on purpose (standard library only: checkpoints are verified by size and sha256 from their
``state.json``, as ``engine.train.checkpoint`` does, without torch) so the CLI can import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from engine.atomic import atomic_open, atomic_write_json
from engine.errors import UserError
from engine.paths import UnsafePath, check_name
from engine.settings import SETTINGS, Setting
from engine.workspace import CONFIG_NAME, STATE_DIR_NAME, Workspace

#: Machine-local files never packed (and the consent reminder's marker: whoever unpacks is reminded once too).
_SKIP = {f"{STATE_DIR_NAME}/run", f"{STATE_DIR_NAME}/engine.pid", f"{STATE_DIR_NAME}/engine.lock",
         f"{STATE_DIR_NAME}/logs", f"{STATE_DIR_NAME}/state.lock", f"{STATE_DIR_NAME}/consent-reminded",
         f"{STATE_DIR_NAME}/faces"}  # the training faces' on-disk store: a cache, rebuilt when missing
MODEL_MARKER = "swapwizard-model"
#: Unpacking refuses archives that would write more than this, or hold more entries (a tar bomb).
GIB = 1024**3
MAX_UNPACK_BYTES = 256 * GIB
MAX_UNPACK_ENTRIES = 1_000_000
#: A model folder's checkpoint folders (see engine.train.checkpoint) and the one written by pretraining.
_CHECKPOINT_FOLDERS = ("checkpoints", "backups", "best")
_EXTRA_FOLDERS = ("pretrained",)
_CHECKPOINT_NAME = re.compile(r"^it(\d{9})$")


@dataclass
class PackPlan:
    """What ``pack`` will write: (file on disk, name in the archive) pairs and folders, and what stays out."""

    prefix: str
    files: list[tuple[Path, str]] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    size: int = 0
    #: Checkpoint folders left out (model-relative paths) and their bytes.
    left_out: list[str] = field(default_factory=list)
    left_out_size: int = 0
    #: model name -> the checkpoint packed for it (model-relative), or "" when none is whole.
    packed_checkpoints: dict[str, str] = field(default_factory=dict)


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _is_whole(checkpoint: Path) -> bool:
    """The checks ``engine.train.checkpoint.read_checkpoint`` makes, without torch: state.json, sizes, hashes."""
    try:
        state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
        files = state["files"]
        for name in ("model.safetensors", "optimizer.safetensors"):
            expected = files[name]
            path = checkpoint / name
            if path.stat().st_size != expected["size"]:
                return False
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != expected["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def newest_whole_checkpoint(model_dir: Path) -> Path | None:
    """The checkpoint a resumed training would load: the newest whole one (checkpoints before backups before best)."""
    found = []
    for order, folder in enumerate(_CHECKPOINT_FOLDERS):
        if (model_dir / folder).is_dir():
            for path in (model_dir / folder).iterdir():
                match = _CHECKPOINT_NAME.match(path.name)
                if match and path.is_dir():
                    found.append((-int(match.group(1)), order, path))
    for _, _, path in sorted(found):
        if _is_whole(path):
            return path
    return None


def _model_skips(model_dir: Path, name: str, plan: PackPlan) -> set[Path]:
    """Folders of one model left out of a default pack (every checkpoint but the newest whole one)."""
    keep = newest_whole_checkpoint(model_dir)
    if keep is None:
        plan.packed_checkpoints[name] = ""
        return set()  # nothing whole: pack what there is rather than nothing
    plan.packed_checkpoints[name] = keep.relative_to(model_dir).as_posix()
    skips: set[Path] = set()
    for folder in (*_CHECKPOINT_FOLDERS, *_EXTRA_FOLDERS):
        path = model_dir / folder
        if not path.is_dir():
            continue
        if path == keep.parent:
            skips.update(child for child in path.iterdir() if child != keep)
        else:
            skips.add(path)
    return skips


def plan(ws: Workspace, model: str | None = None, all_checkpoints: bool = False) -> PackPlan:
    """What ``pack`` would write for ``ws`` (or only ``model/<model>``), with sizes; nothing is written."""
    if model is not None:
        source = ws.model_dir(model)
        if not source.is_dir():
            raise UserError(f"The workspace has no model named {model!r}.",
                            f"Models here: {', '.join(ws.model_names()) or 'none yet'}.")
        result = PackPlan(prefix=f"{MODEL_MARKER}/{model}")
        models = {model: source}
    else:
        source = ws.root
        result = PackPlan(prefix=ws.root.name)
        models = {name: ws.model_dir(name) for name in ws.model_names()}
    skips: set[Path] = set()
    if not all_checkpoints:
        for name, model_dir in models.items():
            skips |= _model_skips(model_dir, name, result)
    skips |= {source / skip for skip in _SKIP} if model is None else set()
    for path in sorted(skips):
        if path.exists():
            result.left_out.append(path.relative_to(source).as_posix())
            result.left_out_size += _tree_size(path) if path.is_dir() else path.stat().st_size
    result.folders.append(result.prefix)
    for folder, dirnames, filenames in os.walk(source):
        here = Path(folder)
        dirnames[:] = sorted(d for d in dirnames if here / d not in skips and not (here / d).is_symlink())
        rel = here.relative_to(source)
        for name in dirnames:
            result.folders.append(f"{result.prefix}/{(rel / name).as_posix()}")
        for name in sorted(filenames):
            path = here / name
            if path in skips:
                continue
            if path.is_symlink():  # sources added with --link travel as the files they point to
                if not path.is_file():
                    continue
            elif not path.is_file():
                continue  # sockets, fifos
            result.files.append((path, f"{result.prefix}/{(rel / name).as_posix()}"))
            result.size += path.stat().st_size
    return result


def pack(ws: Workspace, archive: Path, model: str | None = None, all_checkpoints: bool = False,
         planned: PackPlan | None = None) -> Path:
    """Write ``ws`` (or only ``model/<model>``) to ``archive``; returns its path.

    By default each model travels with its newest whole checkpoint only; ``all_checkpoints`` packs
    every checkpoint, backup, best and pretrained folder too. ``planned`` is a ``plan()`` already made.
    """
    archive = archive.expanduser().resolve()
    if archive.exists():
        raise UserError(f"{archive} already exists.", "Choose another file name, or remove the old archive first.")
    if ws.root in archive.parents:
        raise UserError("The archive cannot be written inside the workspace it packs.",
                        "Write it next to the workspace instead.")
    planned = planned or plan(ws, model, all_checkpoints)

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    try:
        # NAME.tar is a plain tar, as its name says; .tar.gz, .tgz and any other name are gzip.
        mode = "w" if archive.name.lower().endswith(".tar") else "w:gz"
        with atomic_open(archive) as handle, tarfile.open(fileobj=handle, mode=mode) as tar:
            for name in planned.folders:
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                tar.addfile(clean(info))
            for path, name in planned.files:
                info = clean(tar.gettarinfo(str(path.resolve()), arcname=name))
                with open(path, "rb") as data:
                    tar.addfile(info, data)
    except OSError as exc:
        raise UserError(f"Could not write {archive} ({exc.strerror or exc}); nothing was left behind.",
                        "Check the free space (df -h) and that the folder is writable.") from None
    return archive


def _safe_members(tar: tarfile.TarFile, max_bytes: int, max_entries: int) -> list[tarfile.TarInfo]:
    """Every entry of ``tar``, read header by header; refuses the whole archive at the first unsafe one."""
    members: list[tarfile.TarInfo] = []
    total = 0
    files: set[PurePosixPath] = set()
    folders: set[PurePosixPath] = set()
    for member in tar:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or member.name.startswith("/"):
            raise UserError(f"The archive holds an entry outside its folder ({member.name!r}); nothing was unpacked.",
                            "Only unpack archives made by swapwizard pack from a source you trust.")
        if not (member.isfile() or member.isdir()) or member.issparse():
            raise UserError(f"The archive holds a link or special file ({member.name!r}); nothing was unpacked.",
                            "swapwizard archives contain only plain files and folders.")
        members.append(member)
        total += member.size if member.isfile() else 0
        if len(members) > max_entries:
            raise UserError(f"The archive holds more than {max_entries:,} entries; nothing was unpacked.",
                            "A swapwizard archive with that many files is unusual: check where it came from.")
        if total > max_bytes:
            limit = f"{max_bytes / GIB:,.0f} GiB" if max_bytes >= GIB else f"{max_bytes / 1e6:,.1f} MB"
            raise UserError(f"The archive would unpack to more than {limit}; nothing was unpacked.",
                            "Check where it came from; if you trust it, raise the limit with --max-gb.")
        (files if member.isfile() else folders).add(path)
        folders.update(path.parents)
    clash = sorted(files & folders)
    if clash:
        raise UserError(f"The archive holds both a file and a folder named {clash[0].as_posix()!r}; nothing was unpacked.",
                        "The archive is damaged or was not made by swapwizard pack.")
    return members


def _stays(setting: Setting, value: object) -> bool:
    """Whether an archive may bring ``value`` for ``setting``: a server never, a file only inside the
    workspace ("" and "none" name none; the merge and the signer resolve a relative path there)."""
    if value == "":
        return True
    if setting.reaches == "url" or not isinstance(value, str):
        return False
    if value.strip().lower() in ("", "none"):
        return True
    if value.startswith("~"):  # read from the home folder
        return False
    try:
        check_name(value, setting.name)
    except UnsafePath:
        return False
    return True


def drop_reaching_settings(ws: Workspace) -> list[str]:
    """Reset every setting of ``ws``'s workspace.toml that would reach beyond it (``Setting.reaches``: a
    server, a file outside the workspace) to its default; returns them as ``[section] key = value``."""
    dropped: list[str] = []
    reset: dict[str, dict[str, object]] = {}
    for setting in SETTINGS:
        value = ws.section(setting.section).get(setting.key) if setting.reaches else None
        if value is not None and not _stays(setting, value):
            dropped.append(f"{setting.name} = {value!r}")
            reset.setdefault(setting.section, {})[setting.key] = setting.default
    for section, values in reset.items():
        ws.update_settings(section, values)
    # The sender's "last good copy" of workspace.toml is theirs: this one starts from what was kept.
    ws.config_backup_path.unlink(missing_ok=True)
    return dropped


def unpack(archive: Path, target: Path, max_bytes: int = MAX_UNPACK_BYTES,
           max_entries: int = MAX_UNPACK_ENTRIES, model: str | None = None,
           notice: Callable[[str], None] | None = None) -> Path:
    """Unpack a workspace archive to ``target`` (a new folder), or a model archive into the workspace
    ``target`` (returns the model's folder; ``model`` renames it, and refuses a workspace archive).

    A workspace archive's settings that would reach beyond it (a time-stamp server, a certificate, key
    or sound file outside the workspace) are reset to their defaults; ``notice`` hears one sentence
    naming them."""
    archive = archive.expanduser()
    if not archive.is_file():
        raise UserError(f"There is no archive at {archive}.", "Check the path.")
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"{archive.name} is not a swapwizard archive ({exc}).",
                        "Make archives with: swapwizard pack WS FILE") from None
    with tar:
        try:
            members = _safe_members(tar, max_bytes, max_entries)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UserError(f"{archive.name} is damaged or cut short ({exc}); nothing was unpacked.",
                            "Copy the archive again (compare its size with the original).") from None
        tops = {PurePosixPath(m.name).parts[0] for m in members if PurePosixPath(m.name).parts}
        if len(tops) != 1:
            raise UserError("The archive does not hold exactly one workspace or model.",
                            "Make archives with: swapwizard pack WS FILE")
        top = tops.pop()
        target = target.expanduser().resolve()
        renamed: dict[str, str] = {}
        if top == MODEL_MARKER:
            ws = Workspace.open(target)
            names = {PurePosixPath(m.name).parts[1] for m in members if len(PurePosixPath(m.name).parts) > 1}
            loose = sorted(m.name for m in members if len(PurePosixPath(m.name).parts) == 2 and not m.isdir())
            if loose or not names:
                raise UserError(f"{archive.name} holds " + (f"a file ({loose[0]!r}) where a model's folder belongs"
                                                            if loose else "no model") + "; nothing was unpacked.",
                                "Make a model archive with: swapwizard pack WS FILE --model NAME")
            if model and len(names) != 1:
                raise UserError("The archive does not hold exactly one model; nothing was unpacked.",
                                "Make a model archive with: swapwizard pack WS FILE --model NAME")
            renamed = {name: model or name for name in names}
            for name in renamed.values():
                if ws.model_dir(name).exists():
                    raise UserError(f"The workspace already has a model named {name!r}; nothing was unpacked.",
                                    "Rename or remove that model first (model/NAME).")
            destination_parent, final = ws.models_root, None
        else:
            if model:
                raise UserError(f"{archive.name} holds a whole workspace, not a model; nothing was unpacked.",
                                "Unpack it without --model to a new folder, or make a model archive with: "
                                "swapwizard pack WS FILE --model NAME")
            if target.exists() and (not target.is_dir() or any(target.iterdir())):
                raise UserError(f"{target} already exists; nothing was unpacked.",
                                "Unpack to a new folder name; swapwizard never overwrites a workspace.")
            if not any(PurePosixPath(m.name).parts[1:] == (CONFIG_NAME,) for m in members):
                raise UserError("The archive holds no workspace.toml, so it is not a workspace.",
                                "Make archives with: swapwizard pack WS FILE")
            destination_parent, final = target.parent, target
        destination_parent.mkdir(parents=True, exist_ok=True)
        needed = sum(m.size for m in members if m.isfile())
        free = shutil.disk_usage(destination_parent).free
        if needed > free:
            raise UserError(f"The archive unpacks to {needed / 1e6:,.0f} MB but {destination_parent} has only "
                            f"{free / 1e6:,.0f} MB free; nothing was unpacked.", "Free some space (df -h), then try again.")
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=destination_parent))
        try:
            for member in members:
                tar.extract(member, staging, set_attrs=False, filter="data")
            if final is not None:
                dropped = drop_reaching_settings(Workspace(staging / top))
                if dropped and notice is not None:
                    notice(f"Left out of the archive's workspace.toml (an archive may not make swapwizard contact "
                           f"a server or read a file outside the workspace): {'; '.join(dropped)}. Set "
                           "them again if you trust them.")
            # Private whatever the umask: the unpacked workspace's own [workspace] share, or the target's.
            (Workspace(staging / top) if final is not None else ws).restrict(staging / top)
            if final is not None:
                if final.exists():
                    final.rmdir()  # checked empty above
                os.replace(staging / top, final)
                return final
            placed = []
            for child in sorted((staging / top).iterdir()):
                placed.append(destination_parent / renamed.get(child.name, child.name))
                summary = child / "model.json"  # a renamed model says its new name
                if child.name != placed[-1].name and summary.is_file():
                    try:
                        atomic_write_json(summary, {**json.loads(summary.read_text(encoding="utf-8")),
                                                    "name": placed[-1].name})
                    except (ValueError, TypeError):
                        pass  # not ours to repair: the weights are what matter
                os.replace(child, placed[-1])
            return placed[0] if len(placed) == 1 else destination_parent
        except (tarfile.TarError, EOFError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UserError(f"{archive.name} could not be unpacked ({reason}); nothing was unpacked.",
                            "Check the free space (df -h); if the archive is damaged, copy it again.") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
