"""Does the swapped face look like the source person? Identity distances of swapped faces.

The first column of every face-swap paper's table (ID retrieval / identity similarity on
FaceForensics++): each swapped face is embedded with dlib's face descriptor
(``engine.faces.identity``) and compared with the source person (the source side's target person)
and with the destination person (the destination side's):

- ``id_src``: mean identity distance of the swapped face to the source person (lower: more like
  the source; under about 0.6 dlib calls it the same person);
- ``id_dst``: mean distance to the destination person (higher: less of the destination left);
- ``id_closer_src``: the share of faces closer to the source person than to the destination one.

The unswapped destination scores ``id_closer_src`` 0 and the source clip 1 (tests). Each face costs
one embedding (about 80 ms on a CPU core), so a 50-frame measurement adds about 4 s per model.
During training (``swap_likeness``) the swaps of at most ``TRAINING_FACES`` held-out destination
crops are measured at each save.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import UserError
from engine.faces import identity
from engine.faces.identity import distance
from engine.workspace import Workspace

#: Held-out destination faces whose swap the trainer measures at each save.
TRAINING_FACES = 16
KEYS = ("id_src", "id_dst", "id_closer_src")


class LikenessMeter:
    """Running identity distances of swapped faces to the source and destination people."""

    def __init__(self, embedder: Any, source: np.ndarray, destination: np.ndarray) -> None:
        self.embedder = embedder
        self.source = np.asarray(source, np.float64)
        self.destination = np.asarray(destination, np.float64)
        self.to_src: list[float] = []
        self.to_dst: list[float] = []
        self.samples: dict[str, dict[int, float]] = {key: {} for key in KEYS}

    def add_vector(self, index: int, vector: np.ndarray) -> None:
        if not np.isfinite(vector).all():
            return
        d_src, d_dst = float(distance(vector, self.source)), float(distance(vector, self.destination))
        self.to_src.append(d_src)
        self.to_dst.append(d_dst)
        self.samples["id_src"][index] = d_src
        self.samples["id_dst"][index] = d_dst
        self.samples["id_closer_src"][index] = float(d_src < d_dst)

    def add(self, index: int, image: np.ndarray, landmarks: np.ndarray) -> None:
        """One swapped face: ``image`` (BGR) and the face's 468 mesh landmarks in its pixels."""
        self.add_vector(index, self.embedder.embed(image, landmarks))

    def result(self) -> dict[str, Any]:
        if not self.to_src:
            return {"id_src": None, "id_dst": None, "id_closer_src": None, "id_faces": 0}
        src, dst = np.asarray(self.to_src), np.asarray(self.to_dst)
        return {"id_src": round(float(src.mean()), 4), "id_dst": round(float(dst.mean()), 4),
                "id_closer_src": round(float((src < dst).mean()), 4), "id_faces": len(src)}


def likeness_meter(ws: Workspace, warn: Any = None, embedder: Any = None) -> LikenessMeter | None:
    """A meter for this workspace's source and destination people; None (with a warning) when a
    side has no faces to compare with or the embedder is not installed."""
    try:
        source = identity.person_embedding(ws, "src")
        destination = identity.person_embedding(ws, "dst")
        if source is None or destination is None:
            raise UserError("a side has no faces to compare with")
        return LikenessMeter(embedder or identity.Embedder(), source, destination)
    except UserError as exc:
        if warn is not None:
            warn(f"Identity is not measured: {exc.message}")
        return None


def swap_likeness(network: Any, held: Any, device: Any, meter: LikenessMeter, limit: int = TRAINING_FACES) -> dict[str, Any]:
    """The trainer's network swaps held-out destination crops (``engine.quality.reconstruct``'s
    ``HeldOutFaces`` with landmarks), and the meter measures them."""
    import torch

    meter = LikenessMeter(meter.embedder, meter.source, meter.destination)  # a fresh measurement
    count = min(limit, len(held.crops))
    if not count or held.landmarks is None:
        return meter.result()
    picks = np.linspace(0, len(held.crops) - 1, count).round().astype(int)
    model = getattr(network, "module", network)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.from_numpy(held.crops[picks]).to(device).permute(0, 3, 1, 2).float().div_(255)
            faces = model.swap(x)[0].float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    finally:
        model.train(was_training)
    for pick, face in zip(picks, faces):
        meter.add(int(held.frames[pick]), np.ascontiguousarray((face * 255).round().astype(np.uint8)),
                  held.landmarks[pick])
    return meter.result()
