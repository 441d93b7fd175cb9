"""Moving a workspace (or only its model) between machines as one archive (tar.gz).

``pack`` leaves out what belongs to one machine (the engine's socket, pid, lock and logs).
``unpack`` refuses any entry that would land outside the target folder (absolute paths, ``..``,
links, devices), extracts into a temporary folder beside the target and renames it into place only
when complete, and never overwrites an existing workspace or model.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from engine.atomic import atomic_open
from engine.errors import UserError
from engine.workspace import CONFIG_NAME, STATE_DIR_NAME, Workspace

#: Machine-local files never packed.
_SKIP = {f"{STATE_DIR_NAME}/run", f"{STATE_DIR_NAME}/engine.pid", f"{STATE_DIR_NAME}/engine.lock",
         f"{STATE_DIR_NAME}/logs", f"{STATE_DIR_NAME}/state.lock"}
MODEL_MARKER = "swapwizard-model"


def pack(ws: Workspace, archive: Path, model: str | None = None) -> Path:
    """Write ``ws`` (or only ``model/<model>``) to ``archive``; returns its path."""
    archive = archive.expanduser().resolve()
    if archive.exists():
        raise UserError(f"{archive} already exists.", "Choose another file name, or remove the old archive first.")
    if ws.root in archive.parents:
        raise UserError("The archive cannot be written inside the workspace it packs.",
                        "Write it next to the workspace instead.")
    if model is not None:
        source = ws.model_dir(model)
        if not source.is_dir():
            raise UserError(f"The workspace has no model named {model!r}.",
                            f"Models here: {', '.join(ws.model_names()) or 'none yet'}.")
        prefix = f"{MODEL_MARKER}/{model}"
    else:
        source = ws.root
        prefix = ws.root.name

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        rel = PurePosixPath(info.name).relative_to(prefix) if info.name != prefix else PurePosixPath(".")
        text = str(rel)
        if any(text == skip or text.startswith(skip + "/") for skip in _SKIP):
            return None
        if info.issym() or info.islnk() or info.isdev():
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    links = [p for p in source.rglob("*") if p.is_symlink()]
    with atomic_open(archive) as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
        tar.add(source, arcname=prefix, filter=keep)
        for link in links:  # sources added with --link travel as the files they point to
            if link.exists() and link.is_file():
                tar.add(link.resolve(), arcname=f"{prefix}/{link.relative_to(source).as_posix()}", filter=keep)
    return archive


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or member.name.startswith("/"):
            raise UserError(f"The archive holds an entry outside its folder ({member.name!r}); nothing was unpacked.",
                            "Only unpack archives made by swapwizard pack from a source you trust.")
        if not (member.isfile() or member.isdir()):
            raise UserError(f"The archive holds a link or special file ({member.name!r}); nothing was unpacked.",
                            "swapwizard archives contain only plain files and folders.")
    return members


def unpack(archive: Path, target: Path) -> Path:
    """Unpack a workspace archive to ``target`` (a new folder), or a model archive into the workspace ``target``."""
    archive = archive.expanduser()
    if not archive.is_file():
        raise UserError(f"There is no archive at {archive}.", "Check the path.")
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"{archive.name} is not a swapwizard archive ({exc}).",
                        "Make archives with: swapwizard pack WS FILE") from None
    with tar:
        members = _safe_members(tar)
        tops = {PurePosixPath(m.name).parts[0] for m in members if m.name not in ("", ".")}
        if len(tops) != 1:
            raise UserError("The archive does not hold exactly one workspace or model.",
                            "Make archives with: swapwizard pack WS FILE")
        top = tops.pop()
        target = target.expanduser().resolve()
        if top == MODEL_MARKER:
            ws = Workspace.open(target)
            names = {PurePosixPath(m.name).parts[1] for m in members if len(PurePosixPath(m.name).parts) > 1}
            for name in names:
                if ws.model_dir(name).exists():
                    raise UserError(f"The workspace already has a model named {name!r}; nothing was unpacked.",
                                    "Rename or remove that model first (model/NAME).")
            destination_parent, final = ws.models_root, None
        else:
            if target.exists() and (not target.is_dir() or any(target.iterdir())):
                raise UserError(f"{target} already exists; nothing was unpacked.",
                                "Unpack to a new folder name; swapwizard never overwrites a workspace.")
            if not any(PurePosixPath(m.name).parts[1:] == (CONFIG_NAME,) for m in members):
                raise UserError("The archive holds no workspace.toml, so it is not a workspace.",
                                "Make archives with: swapwizard pack WS FILE")
            destination_parent, final = target.parent, target
        destination_parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=destination_parent))
        try:
            for member in members:
                tar.extract(member, staging, set_attrs=False)
            if final is not None:
                if final.exists():
                    final.rmdir()  # checked empty above
                os.replace(staging / top, final)
                return final
            for child in (staging / top).iterdir():
                os.replace(child, destination_parent / child.name)
            return destination_parent
        finally:
            shutil.rmtree(staging, ignore_errors=True)
