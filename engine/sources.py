"""Adding or replacing a workspace's source (``src``) or destination (``dst``) footage, checked first.

Every input is probed before anything in the workspace changes (``engine.media.probe``: ffmpeg only,
no cv2 or torch, so the CLI calls it in-process): a file that is not a readable video, or a folder whose
first image cannot be read, is refused and the workspace is left as it was.

Replacing footage that work was already done on invalidates that work: the side's extraction (its face
crops and records came from the old footage), the data check, models trained on the old faces and the
merged result. ``replace_source`` says so and refuses unless ``force``; with ``force`` it marks those
steps ``todo`` (extraction notices the new footage by its fingerprint and redoes the side; training
continues from the model's last checkpoint on the new faces).

Light on purpose (standard library, ffmpeg through the probe) so the CLI and the wizard can import it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import UserError
from engine.media.probe import probe
from engine.workspace import IMAGE_EXTENSIONS, SIDES, Workspace, check_source

SIDE_NAMES = {"src": "source", "dst": "destination"}
#: The steps whose outcome depends on each side's footage, in pipeline order.
DEPENDENT_STEPS = {"src": ("extract_src", "check", "train", "merge"),
                   "dst": ("extract_dst", "check", "train", "merge")}


def probe_input(path: str | os.PathLike[str], side: str) -> dict:
    """The probe of a would-be input (video or image folder) as a dict; ``UserError`` if it cannot be read."""
    path = Path(path).expanduser()
    check_source(path, side)  # exists, a video by its extension or a folder holding images
    try:
        info = probe(path)
    except UserError as exc:
        raise UserError(f"{exc.message.rstrip('.')} (--{side}, the {SIDE_NAMES[side]}).", exc.hint) from None
    if info.kind == "images" and (info.width <= 0 or info.height <= 0):
        raise UserError(f"The {SIDE_NAMES[side]} folder's first image, {info.images[0]}, cannot be read.",
                        "Check that the images open in an image viewer; re-export them as PNG or JPEG.")
    return info.to_dict()


@dataclass
class Invalidated:
    """What replacing one side's footage undoes."""

    side: str
    steps: list[str] = field(default_factory=list)  # steps done (or failed/running) that depend on it
    faces: int = 0                                   # face crops extracted from the old footage
    models: list[str] = field(default_factory=list)  # models trained on the old faces
    result: bool = False                             # output/result.mp4 was merged from it

    def __bool__(self) -> bool:
        return bool(self.steps or self.faces or self.models or self.result)

    def describe(self) -> str:
        """One clause per thing, for a sentence: "its 75 extracted faces, the data check, model default"."""
        parts = []
        if self.faces or f"extract_{self.side}" in self.steps:
            parts.append(f"its extraction ({self.faces} face crops)" if self.faces else "its extraction")
        if "check" in self.steps:
            parts.append("the data check")
        if self.models:
            parts.append(("model " if len(self.models) == 1 else "models ") + ", ".join(self.models)
                         + " (trained on the old faces)")
        elif "train" in self.steps:
            parts.append("the training step")
        if self.result or "merge" in self.steps:
            parts.append("the merged result")
        return ", ".join(parts)


def invalidated_by_replacing(ws: Workspace, side: str) -> Invalidated:
    """What work done on ``side``'s current footage a replacement would invalidate (nothing if it has none)."""
    found = Invalidated(side)
    if ws.source(side) is None:
        # Nothing was made from footage the workspace does not have (a face set unpacked into the
        # side is not footage: adding a video beside it changes nothing until extract --force).
        return found
    steps = ws.steps()
    found.steps = [s for s in DEPENDENT_STEPS[side] if steps[s].get("status") in ("done", "running", "failed")]
    aligned = ws.aligned_dir(side)
    if aligned.is_dir():
        found.faces = sum(1 for p in aligned.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if found.faces or f"extract_{side}" in found.steps:
        found.models = [name for name in ws.model_names() if _has_checkpoint(ws.model_dir(name))]
    found.result = (ws.output_dir / "result.mp4").exists()
    return found


def _has_checkpoint(model_dir: Path) -> bool:
    return any((model_dir / folder).is_dir() and any((model_dir / folder).iterdir())
               for folder in ("checkpoints", "backups", "best"))


def replace_source(ws: Workspace, side: str, path: str | os.PathLike[str], link: bool = False,
                   force: bool = False, probe: bool = True) -> tuple[Path, Invalidated]:
    """Probe ``path``, then make it ``side``'s footage (copied, or symlinked with ``link``).

    Refuses, changing nothing, when the input cannot be read (``probe``), or when it replaces footage that work
    was done on and ``force`` is not given. Returns the new input's path in the workspace and what
    was invalidated (those steps are now ``todo``).
    """
    if side not in SIDES:
        raise UserError(f"{side!r} is not a side.", "Use 'src' (the source person) or 'dst' (the destination).")
    path = Path(path).expanduser()
    if probe:  # (False: the caller probed it already)
        probe_input(path, side)
    if path.resolve() == (ws.source(side) or Path("/nonexistent")).resolve():
        raise UserError(f"{path} is already the workspace's {SIDE_NAMES[side]}.", "Nothing to change.")
    lost = invalidated_by_replacing(ws, side)
    if lost and not force:
        raise UserError(f"Replacing the {SIDE_NAMES[side]} invalidates {lost.describe()}; nothing was changed.",
                        "Add --force to replace it anyway (those steps go back to todo and run again), or put "
                        "the new footage in a new workspace.")
    old = ws.source(side)
    if old is not None and old.is_dir() and not old.is_symlink():
        # An image folder: its images go aside (kept, hidden), so that old and new frames never mix.
        aside = old / f".replaced-{os.getpid()}"
        aside.mkdir(exist_ok=True)
        for image in old.iterdir():
            if image.is_file() or image.is_symlink():
                if image.suffix.lower() in IMAGE_EXTENSIONS:
                    os.replace(image, aside / image.name)
        try:
            target = ws.set_source(side, path, link=link)
        except BaseException:
            for image in aside.iterdir():
                os.replace(image, old / image.name)
            aside.rmdir()
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        target = ws.set_source(side, path, link=link)
    reason = f"the {SIDE_NAMES[side]} footage was replaced"
    for step in lost.steps:
        ws.set_step(step, "todo", reason=reason)
    return target, lost
