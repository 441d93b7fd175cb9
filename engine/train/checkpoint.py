"""Checkpoints that survive anything: safetensors for tensors, JSON for the rest, committed atomically.

Layout of a model folder (``ws.model_dir(name)``)::

    model.json                  summary for people and tools: options, iteration, latest checkpoint
    loss_history.json           the whole loss curve, [[iteration, loss_src, loss_dst, unix_time], ...]
    checkpoints/it000001234/    the newest few saves
        model.safetensors       network weights (``model.*``, ``disc.*`` for the GAN discriminator)
        optimizer.safetensors   optimizer state tensors, flattened; their structure is in state.json
        state.json              iteration, options, RNG states, LR schedule, loss history, sha256 of
                                both tensor files (written last: a folder without it is incomplete)
    backups/it000000500/        rolling backups (full copies), one per ``backup_every_min``, the last N kept
    best/it000001000/           a copy of the save with the lowest smoothed loss
    pretrained/                 the pretraining run's checkpoints, moved aside when training on the pair began

A save writes a hidden temporary folder (``.tmp-<name>-<pid>``), fsyncs every file and the folder,
then renames it into place: a reader sees a whole checkpoint or none. The temporary folder of a
save killed midway is removed by the next save into that folder (its pid is gone). Loading verifies sizes and hashes; a damaged
newest checkpoint falls back to the previous good one with a warning. Nothing here can run code
when loaded (no pickle).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine.atomic import fsync_dir
from engine.errors import UserError

FORMAT = 1
MODEL_FILE, OPTIMIZER_FILE, STATE_FILE = "model.safetensors", "optimizer.safetensors", "state.json"
NAME_RE = re.compile(r"^it(\d{9})$")
#: A save's temporary folder: ``.tmp-<name>-<pid of the saving process>``.
TMP_RE = re.compile(r"^\.tmp-it\d{9}-(\d+)$")


class DamagedCheckpoint(Exception):
    """A checkpoint folder that is incomplete, truncated or fails its hash."""


@dataclass
class Loaded:
    path: Path
    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]


def encode_bytes(tensor: torch.Tensor) -> str:
    """A uint8 tensor (an RNG state) as base64 text for JSON."""
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")


def decode_bytes(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def flatten_optimizer(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state dict as named tensors plus a JSON structure that points at them."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        state[str(pid)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tname = f"{name}.{pid}.{key}"
                tensors[tname] = value.detach().to("cpu").contiguous()
                state[str(pid)][key] = {"tensor": tname}
            else:
                state[str(pid)][key] = {"value": value}
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def unflatten_optimizer(structure: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for pid, entry in structure["state"].items():
        state[int(pid)] = {k: tensors[v["tensor"]] if "tensor" in v else v["value"] for k, v in entry.items()}
    return {"state": state, "param_groups": structure["param_groups"]}


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _digest(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _commit_dir(tmp: Path, final: Path) -> None:
    fsync_dir(tmp)
    if final.exists():
        # Same iteration saved again (e.g. stop right after a timed save): keep the one on disk if whole.
        try:
            read_checkpoint(final, with_optimizer=False)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        except DamagedCheckpoint:
            final.rename(final.with_name(f".damaged-{final.name}-{int(time.time())}"))
    os.rename(tmp, final)
    fsync_dir(final.parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(folder: Path) -> list[str]:
    """Remove the temporary folders of saves whose process is gone (killed mid-save); returns their names.
    A folder of a live process (another trainer of the same model) is left alone."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = TMP_RE.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def read_checkpoint(path: Path, with_optimizer: bool = True) -> Loaded:
    """Read and verify one checkpoint folder; raises ``DamagedCheckpoint`` with the reason."""
    try:
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedCheckpoint("state.json is missing") from None
    except (OSError, ValueError) as exc:
        raise DamagedCheckpoint(f"state.json is unreadable ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("files"), dict) \
            or not isinstance(state.get("iteration"), int) or not all(isinstance(v, dict) for v in state["files"].values()):
        # The hashes name only our two fixed file names: nothing in state.json is used as a path.
        raise DamagedCheckpoint("state.json is not a swapwizard checkpoint of a known format")
    loaded: dict[str, dict[str, torch.Tensor]] = {}
    for fname in (MODEL_FILE, OPTIMIZER_FILE) if with_optimizer else (MODEL_FILE,):
        try:
            data = (path / fname).read_bytes()
        except OSError as exc:
            raise DamagedCheckpoint(f"{fname} is unreadable ({exc.strerror})") from None
        expected = state["files"].get(fname, {})
        if _digest(data) != expected:
            raise DamagedCheckpoint(f"{fname} is truncated or damaged (size {len(data)}, expected {expected.get('size')})")
        try:
            loaded[fname] = st_load(data)
        except Exception as exc:  # safetensors raises its own error types
            raise DamagedCheckpoint(f"{fname} is not valid safetensors ({exc})") from None
    return Loaded(path, state, loaded[MODEL_FILE], loaded.get(OPTIMIZER_FILE, {}))


class CheckpointStore:
    """Saves, finds and loads the checkpoints of one model folder."""

    def __init__(self, model_dir: Path, keep: int = 3, backups_keep: int = 24) -> None:
        self.dir = Path(model_dir)
        self.keep = keep
        self.backups_keep = backups_keep

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def backups_dir(self) -> Path:
        return self.dir / "backups"

    @property
    def best_dir(self) -> Path:
        return self.dir / "best"

    @staticmethod
    def _list(folder: Path) -> list[tuple[int, Path]]:
        if not folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := NAME_RE.match(p.name)) and p.is_dir()]
        return sorted(found, reverse=True)

    def candidates(self) -> list[Path]:
        """Every saved checkpoint, newest first (checkpoints before backups before best at a tie)."""
        order = {self.checkpoints_dir: 0, self.backups_dir: 1, self.best_dir: 2}
        found = [(it, order[folder], p) for folder in order for it, p in self._list(folder)]
        return [p for _, _, p in sorted(found, key=lambda t: (-t[0], t[1]))]

    def exists(self) -> bool:
        return bool(self.candidates())

    def load(self, with_optimizer: bool = True, which: str = "latest",
             warn: Any = None) -> Loaded | None:
        """The newest whole checkpoint (or the best with ``which="best"``); None if there is none at all.

        Damaged ones are skipped with a warning through ``warn(message)``. If checkpoints exist but
        none is whole, this raises: a model is never silently started again from scratch.
        """
        candidates = self.candidates()
        if which == "best":
            best = [p for _, p in self._list(self.best_dir)]
            candidates = best + [p for p in candidates if p not in best]
        if not candidates:
            return None
        problems = []
        for path in candidates:
            try:
                loaded = read_checkpoint(path, with_optimizer)
            except DamagedCheckpoint as exc:
                problems.append(f"{path.relative_to(self.dir)}: {exc}")
                continue
            if problems and warn is not None:
                warn(f"Checkpoint {problems[0]}; using the previous good one, "
                     f"{path.relative_to(self.dir)} (iteration {loaded.state['iteration']}).")
                for extra in problems[1:]:
                    warn(f"Also skipped damaged checkpoint {extra}.")
            return loaded
        raise UserError(f"Every checkpoint in {self.dir} is damaged ({problems[0]}).",
                        "Restore the model folder from a copy, or train a new model with --model NAME.")

    def save(self, iteration: int, model_tensors: dict[str, torch.Tensor],
             optimizer_tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
        """Write one checkpoint atomically and prune old ones; returns its folder."""
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(self.checkpoints_dir)
        name = f"it{iteration:09d}"
        tmp = self.checkpoints_dir / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            files = {}
            for fname, tensors in ((MODEL_FILE, model_tensors), (OPTIMIZER_FILE, optimizer_tensors)):
                data = st_save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
                _write_synced(tmp / fname, data)
                files[fname] = _digest(data)
            full_state = {**state, "format": FORMAT, "iteration": iteration, "files": files,
                          "saved_at": time.time()}
            _write_synced(tmp / STATE_FILE, (json.dumps(full_state, indent=1) + "\n").encode("utf-8"))
            final = self.checkpoints_dir / name
            _commit_dir(tmp, final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"Could not write a checkpoint in {self.checkpoints_dir} ({exc.strerror or exc}).",
                            "Free some disk space (old backups/ can go), then train again: it resumes "
                            "from the last checkpoint.") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune(self.checkpoints_dir, self.keep)
        return final

    def _copy(self, source: Path, folder: Path, keep: int) -> Path:
        """Copy a committed checkpoint into ``folder``, atomically. Real copies, not hard links: damage
        to one file on disk must not reach its backup."""
        folder.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(folder)
        tmp = folder / f".tmp-{source.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for fname in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE):
            _write_synced(tmp / fname, (source / fname).read_bytes())
        _commit_dir(tmp, folder / source.name)
        self._prune(folder, keep)
        return folder / source.name

    def backup(self, checkpoint: Path) -> Path:
        return self._copy(checkpoint, self.backups_dir, self.backups_keep)

    def set_best(self, checkpoint: Path) -> Path:
        return self._copy(checkpoint, self.best_dir, 1)

    def archive(self, name: str) -> Path:
        """Move every checkpoint, backup and best aside into ``<model>/<name>/`` (kept, no longer loaded)."""
        target = self.dir / name
        target.mkdir(parents=True, exist_ok=True)
        for folder in (self.checkpoints_dir, self.backups_dir, self.best_dir):
            if folder.is_dir():
                dest = target / folder.name
                if dest.exists():
                    dest = target / f"{folder.name}-{int(time.time())}"
                os.rename(folder, dest)
        fsync_dir(self.dir)
        return target

    def latest_backup_time(self) -> float:
        backups = self._list(self.backups_dir)
        with contextlib.suppress(OSError, ValueError):
            if backups:
                return float(json.loads((backups[0][1] / STATE_FILE).read_text())["saved_at"])
        return 0.0

    def _prune(self, folder: Path, keep: int) -> None:
        for _, path in self._list(folder)[keep:]:
            shutil.rmtree(path, ignore_errors=True)
