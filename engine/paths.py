"""Paths read from files (face records, alignments, face sets, state, manifests) must stay in their folder.

Anything that names a file inside a record can be edited by hand or arrive in a shared face set or
workspace archive. Every such name goes through ``inside(folder, name, what)`` before it is used:
it must be a relative POSIX path without ``..``, and (``resolve=True``, for a file about to be read,
packed or moved) what it names, links followed, must lie in ``folder``. Otherwise the whole input
is refused with ``UnsafePath``, a ``UserError``: one sentence saying which file and entry, and a hint.

Standard library only: the base layer, importable from anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from engine.errors import UserError


class UnsafePath(UserError):
    """A path read from a file names something outside the folder it belongs to."""


def check_name(name: object, what: str, hint: str = "") -> PurePosixPath:
    """``name`` as a relative path with no ``..``, empty part, NUL or backslash; else ``UnsafePath``."""
    hint = hint or "The file was edited or does not come from swapwizard; nothing was read from it."
    if not isinstance(name, str) or not name:
        raise UnsafePath(f"{what} has no file name (found {name!r}).", hint)
    path = PurePosixPath(name)
    if "\x00" in name or "\\" in name or path.is_absolute() or name.startswith("/") or ".." in path.parts \
            or any(part in ("", ".") for part in name.split("/")):
        raise UnsafePath(f"{what} names {name!r}, a path outside its folder; refusing it.", hint)
    return path


def inside(folder: str | os.PathLike[str], name: object, what: str, hint: str = "",
           resolve: bool = False) -> Path:
    """``folder / name`` after checking ``name`` (see ``check_name``); with ``resolve`` also that the
    file it names, symbolic links followed, is inside ``folder``. Raises ``UnsafePath``."""
    relative = check_name(name, what, hint)
    full = Path(folder) / relative
    if resolve:
        base = os.path.realpath(folder)
        real = os.path.realpath(full)
        if os.path.commonpath([base, real]) != base:
            raise UnsafePath(f"{what} names {name!r}, which leads outside its folder (to {real}); refusing it.",
                             hint or "A link inside the folder points elsewhere; nothing was read from it.")
    return full
