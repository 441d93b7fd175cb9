"""Face sets bigger than memory: the training faces of a side as one uint8 file on disk, read per batch.

::

    WS/.swapwizard/faces/<name>_<res>.u8     N x 5 x R x R uint8 rows (B, G, R, face mask, eyes-and-mouth
                                             mask) at the model's resolution R, nothing else (no header)
    WS/.swapwizard/faces/<name>_<res>.json   {version, key, count, res, channels, files, has_landmarks}

Built once from the aligned crops (decoded, resized and masked exactly as an in-memory set would be),
then training reads the rows of each batch with ``pread``: the process holds one batch, not the set,
whether a side has 1 000 or 100 000 faces (the kernel's page cache keeps what fits, and gives it back
when other programs need it). On a GPU with room the rows are read once into device memory instead.

The store is keyed by what it was built from: every crop file's name, size and modification time
(and those of its segmenter mask), the extraction records' file, the resolution and this format's
version. Any crop added, deleted or re-extracted changes the key and the store is rebuilt before
training uses it: never silently stale. A build writes a temporary file and renames it into place;
the manifest is removed first and written last, so a crash mid-build leaves no store that looks whole.
It is a cache: ``swapwizard pack`` leaves it out, and deleting the folder only costs a rebuild.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.atomic import atomic_write_json, fsync_dir, read_json
from engine.errors import UserError

VERSION = 1
CHANNELS = 5
#: Faces decoded per step while building (bounds the build's memory: a chunk of rows at a time).
BUILD_CHUNK = 256
#: Rows read per step when a whole store goes to the GPU.
DEVICE_CHUNK = 1024


def store_key(files: Iterable[tuple[str, Path | None]], res: int, extra: Sequence[Path] = ()) -> str:
    """A digest of what a store is built from: each (crop path, mask path or None) by name, size and
    modification time, the ``extra`` files (the extraction records) the same way, and ``res``."""
    digest = hashlib.sha256(f"swapwizard-faces v{VERSION} res {res}\n".encode())

    def stamp(path: Path | None) -> str:
        if path is None:
            return "-"
        try:
            st = os.stat(path)
        except OSError:
            return f"{path}:missing"
        return f"{path}:{st.st_size}:{st.st_mtime_ns}"

    for path in extra:
        digest.update(f"extra {stamp(path)}\n".encode())
    for crop, mask in files:
        digest.update(f"{stamp(Path(crop))} {stamp(mask)}\n".encode())
    return digest.hexdigest()


class StoredFaces:
    """The rows of a store, with what training uses of a ``N x 5 x R x R`` uint8 tensor: ``len``,
    ``shape``, ``numel()``, ``index_select(0, index)``, slicing and ``to(device)``; every call reads
    only the rows it returns."""

    device = torch.device("cpu")
    dtype = torch.uint8

    def __init__(self, path: Path, count: int, res: int) -> None:
        self.path = Path(path)
        self.count, self.res = count, res
        self.row_bytes = CHANNELS * res * res
        self.shape = torch.Size((count, CHANNELS, res, res))
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def __len__(self) -> int:
        return self.count

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def numel(self) -> int:
        return self.count * self.row_bytes

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def rows(self, index: Sequence[int]) -> np.ndarray:
        """Rows ``index`` (in that order) as a new ``len(index) x 5 x R x R`` array."""
        out = np.empty((len(index), CHANNELS, self.res, self.res), np.uint8)
        flat = out.reshape(len(index), self.row_bytes)
        for j in sorted(range(len(index)), key=index.__getitem__):  # in file order: fewer seeks
            i = int(index[j])
            if not 0 <= i < self.count:
                raise IndexError(f"face {i} is outside a set of {self.count}")
            if os.preadv(self._fd, [flat[j]], i * self.row_bytes) != self.row_bytes:
                raise OSError(f"{self.path} is shorter than its manifest says")
        return out

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        assert dim == 0
        return torch.from_numpy(self.rows(index.tolist()))

    def __getitem__(self, key: slice | int) -> torch.Tensor:
        if isinstance(key, int):
            return torch.from_numpy(self.rows([key])[0])
        return torch.from_numpy(self.rows(range(*key.indices(self.count))))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> StoredFaces | torch.Tensor:
        """On the CPU the store itself (read per batch); elsewhere the whole set in that device's memory,
        read in chunks (the host never holds more than a chunk)."""
        device = torch.device(device)
        if device.type == "cpu":
            return self
        out = torch.empty(tuple(self.shape), dtype=torch.uint8, device=device)
        for start in range(0, self.count, DEVICE_CHUNK):
            chunk = torch.from_numpy(self.rows(range(start, min(self.count, start + DEVICE_CHUNK))))
            out[start:start + len(chunk)].copy_(chunk.pin_memory() if device.type == "cuda" else chunk)
        return out


def open_store(folder: Path, name: str, res: int, key: str) -> tuple[StoredFaces, dict] | None:
    """The store ``name`` at ``res`` if it exists, is whole and was built from what ``key`` says."""
    manifest_path, data_path = _paths(folder, name, res)
    try:
        manifest = read_json(manifest_path)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("version") != VERSION or manifest.get("key") != key:
        return None
    count = manifest.get("count")
    try:
        size = data_path.stat().st_size
    except OSError:
        return None
    if not isinstance(count, int) or size != count * CHANNELS * res * res or manifest.get("res") != res:
        return None
    return StoredFaces(data_path, count, res), manifest


def open_or_build(folder: Path, name: str, res: int, key: str, items: Sequence[Any],
                  load: Callable[[Any], np.ndarray | None], files: Callable[[Any], str],
                  has_landmarks: Callable[[Any], bool],
                  progress: Callable[[int, int], None] | None = None) -> tuple[StoredFaces, dict]:
    """The store if it is current, else built (one process builds; others training on the same workspace,
    such as the ranks of ``--gpus N``, wait for it and open it)."""
    found = open_store(folder, name, res, key)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = os.open(folder / f".{name}_{res}.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = open_store(folder, name, res, key)
        if found is None:
            _, data_path = _paths(folder, name, res)
            for stale in folder.glob(f".{data_path.name}.*.tmp"):  # a build killed before its rename
                stale.unlink(missing_ok=True)
            found = build_store(folder, name, res, key, items, load, files, has_landmarks, progress)
        return found
    finally:
        os.close(lock)


def build_store(folder: Path, name: str, res: int, key: str, items: Sequence[Any],
                load: Callable[[Any], np.ndarray | None], files: Callable[[Any], str],
                has_landmarks: Callable[[Any], bool],
                progress: Callable[[int, int], None] | None = None) -> tuple[StoredFaces, dict]:
    """Decode ``items`` with ``load`` (an ``R x R x 5`` uint8 array, or None for an unreadable one) into a
    new store, a chunk at a time; returns it opened. Items ``load`` cannot read are left out."""
    manifest_path, data_path = _paths(folder, name, res)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    need = len(items) * CHANNELS * res * res
    free = shutil.disk_usage(folder).free
    if need > free - (256 << 20):
        raise UserError(f"The {name} faces need {need / 2**30:.1f} GB on disk at {res} px to train from, and "
                        f"{folder} has {free / 2**30:.1f} GB free.",
                        "Free some space, or train at a lower resolution.")
    kept_files: list[str] = []
    landmarks = True
    done = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{data_path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for start in range(0, len(items), BUILD_CHUNK):
                chunk = items[start:start + BUILD_CHUNK]
                # Decoding releases the GIL, so threads decode a chunk several times faster.
                for item, array in zip(chunk, pool.map(load, chunk)):
                    if array is not None:
                        out.write(np.ascontiguousarray(array.transpose(2, 0, 1)).tobytes())
                        kept_files.append(files(item))
                        landmarks = landmarks and has_landmarks(item)
                done += len(chunk)
                if progress is not None:
                    progress(done, len(items))
            out.flush()
            os.fsync(out.fileno())
        try:
            manifest_path.unlink()
        except FileNotFoundError:
            pass
        fsync_dir(folder)
        os.replace(tmp, data_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    manifest = {"version": VERSION, "key": key, "count": len(kept_files), "res": res, "channels": CHANNELS,
                "has_landmarks": landmarks and bool(kept_files), "files": kept_files}
    atomic_write_json(manifest_path, manifest)
    return StoredFaces(data_path, len(kept_files), res), manifest


def _paths(folder: Path, name: str, res: int) -> tuple[Path, Path]:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    return folder / f"{safe}_{res}.json", folder / f"{safe}_{res}.u8"


def describe(folder: Path) -> list[dict[str, Any]]:
    """The stores in ``folder`` (for tools and reports): name, faces, bytes."""
    found = []
    for manifest_path in sorted(Path(folder).glob("*.json")):
        data_path = manifest_path.with_suffix(".u8")
        try:
            manifest = json.loads(manifest_path.read_text())
            found.append({"name": manifest_path.stem, "faces": manifest.get("count"),
                          "bytes": data_path.stat().st_size})
        except (OSError, ValueError):
            continue
    return found
