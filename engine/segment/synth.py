"""Synthetic occluders pasted over a face on the fly, with the label they imply (numpy + OpenCV).

``paste(image, label, rng, source)`` lays one or two occluders over ``image`` (uint8 BGR, R x R) and
returns the new image and label (uint8, 255 = visible face): wherever an occluder is opaque (alpha
>= 0.5) the label becomes 0. The kinds, drawn at random:

- ``shape``: a random polygon, ellipse, rounded bar (a microphone, a cup, an arm) or a capsule (a
  finger), filled with a texture: a flat colour with noise, a gradient, stripes, or a patch of
  another frame;
- ``patch``: a piece of another face crop (skin of another frame, background) in a random shape:
  the hardest case, skin in front of skin;
- ``hand``: a hand cut from another frame where extraction recorded one (``source.hands``);
- ``glasses``: two lens rims, a bridge and temples over the eyes (clear lenses stay face; dark ones do not);
- ``hair``: strands curving down over the forehead and eyes.

Most occluders are placed over the face, so the network learns "face vs not face" rather than the
landmark outline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

KINDS = ("shape", "patch", "hand", "glasses", "hair")
WEIGHTS = (0.35, 0.2, 0.15, 0.12, 0.18)


@dataclass
class Source:
    """What occluders are cut from: other faces' crops (uint8 N x R x R x 3), the eye centres of
    each face (N x 2 x 2, crop pixels; NaN when unknown) and recorded hands (crop index, polygon)."""

    crops: np.ndarray
    eyes: np.ndarray
    hands: list[tuple[int, np.ndarray]] = field(default_factory=list)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3)


def _texture(res: int, rng: np.random.Generator, source: Source) -> np.ndarray:
    """An R x R float32 BGR texture."""
    choice = rng.integers(0, 5)
    if choice == 0:  # flat colour with noise
        base = np.broadcast_to(_colour(rng), (res, res, 3)).astype(np.float32)
        return base + rng.normal(0, rng.uniform(2, 30), (res, res, 3)).astype(np.float32)
    if choice == 1:  # linear gradient between two colours
        angle = rng.uniform(0, np.pi)
        axis = np.cos(angle) * np.arange(res)[None, :] + np.sin(angle) * np.arange(res)[:, None]
        t = ((axis - axis.min()) / max(1e-6, np.ptp(axis)))[..., None]
        return ((1 - t) * _colour(rng) + t * _colour(rng)).astype(np.float32)
    if choice == 2:  # stripes
        period = rng.uniform(3, res / 4)
        angle = rng.uniform(0, np.pi)
        axis = np.cos(angle) * np.arange(res)[None, :] + np.sin(angle) * np.arange(res)[:, None]
        t = (np.sin(axis * 2 * np.pi / period) > 0)[..., None]
        return np.where(t, _colour(rng), _colour(rng)).astype(np.float32)
    # a patch of another frame (shifted, scaled, sometimes recoloured)
    other = source.crops[rng.integers(0, len(source.crops))].astype(np.float32)
    scale = rng.uniform(0.7, 1.6)
    matrix = cv2.getRotationMatrix2D((res / 2, res / 2), rng.uniform(-180, 180), scale)
    matrix[:, 2] += rng.uniform(-res / 2, res / 2, 2)
    patch = cv2.warpAffine(other, matrix, (res, res), borderMode=cv2.BORDER_REFLECT)
    if choice == 4:
        patch = patch * rng.uniform(0.6, 1.3, 3) + rng.uniform(-30, 30, 3)
    return patch.astype(np.float32)


def _anchor(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A point on the face (usually) or anywhere in the crop."""
    res = label.shape[0]
    if rng.random() < 0.85:
        ys, xs = np.nonzero(label[::4, ::4] > 127)
        if len(xs):
            i = rng.integers(0, len(xs))
            return np.array([xs[i] * 4, ys[i] * 4], np.float64) + rng.uniform(0, 4, 2)
    return rng.uniform(0, res, 2)


def _shape_alpha(res: int, rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    alpha = np.zeros((res, res), np.float32)
    size = rng.uniform(0.12, 0.5) * res
    kind = rng.integers(0, 4)
    if kind == 0:  # star-shaped random polygon
        n = int(rng.integers(3, 13))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = size * rng.uniform(0.35, 1.0, n)
        points = centre + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1)
        cv2.fillPoly(alpha, [np.round(points * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    elif kind == 1:  # ellipse
        axes = (int(size * rng.uniform(0.3, 1.0)), int(size * rng.uniform(0.3, 1.0)))
        cv2.ellipse(alpha, tuple(int(v) for v in centre), axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA)
    else:  # a bar from outside the crop (microphone, arm, cup) or a finger-like capsule
        angle = rng.uniform(0, 2 * np.pi)
        length = size * (3.0 if kind == 2 else rng.uniform(0.8, 1.6))
        end = centre + length * np.array([np.cos(angle), np.sin(angle)])
        thickness = max(2, int(size * (rng.uniform(0.25, 0.6) if kind == 2 else rng.uniform(0.12, 0.3))))
        cv2.line(alpha, tuple(int(v) for v in centre), tuple(int(v) for v in end), 1.0, thickness, cv2.LINE_AA)
        if kind == 2 and rng.random() < 0.6:  # a microphone's head
            cv2.circle(alpha, tuple(int(v) for v in centre), int(thickness * rng.uniform(0.7, 1.3)), 1.0, -1,
                       cv2.LINE_AA)
    return alpha


def _glasses(res: int, rng: np.random.Generator, eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(opaque rims alpha, lens alpha, colour)."""
    rims = np.zeros((res, res), np.float32)
    lens = np.zeros((res, res), np.float32)
    left, right = eyes
    distance = float(np.linalg.norm(right - left))
    axes = (int(distance * rng.uniform(0.32, 0.45)), int(distance * rng.uniform(0.22, 0.34)))
    thick = max(1, int(distance * rng.uniform(0.04, 0.12)))
    angle = float(np.degrees(np.arctan2(*(right - left)[::-1])))
    lift = np.array([0.0, rng.uniform(-0.1, 0.1) * distance])
    for eye in (left, right):
        centre = tuple(int(v) for v in eye + lift)
        cv2.ellipse(lens, centre, axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA)
        cv2.ellipse(rims, centre, axes, angle, 0, 360, 1.0, thick, cv2.LINE_AA)
    direction = (right - left) / max(distance, 1e-6)
    inner_l, inner_r = left + direction * axes[0] + lift, right - direction * axes[0] + lift
    cv2.line(rims, tuple(int(v) for v in inner_l), tuple(int(v) for v in inner_r), 1.0, thick, cv2.LINE_AA)
    for eye, sign in ((left, -1), (right, 1)):
        start = eye + sign * direction * axes[0] + lift
        cv2.line(rims, tuple(int(v) for v in start), tuple(int(v) for v in start + sign * direction * res),
                 1.0, thick, cv2.LINE_AA)
    dark = rng.random() < 0.3  # sunglasses hide the eyes; clear lenses do not
    lens = lens * (rng.uniform(0.75, 0.95) if dark else rng.uniform(0.0, 0.35))
    return rims, lens, (rng.uniform(0, 60, 3) if rng.random() < 0.6 else _colour(rng))


def _hair(res: int, rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    alpha = np.zeros((res, res), np.float32)
    ys, xs = np.nonzero(label > 127)
    top = float(ys.min()) if len(ys) else 0.0
    x_lo, x_hi = (float(xs.min()), float(xs.max())) if len(xs) else (0.0, float(res))
    width = max(4.0, (x_hi - x_lo) * rng.uniform(0.1, 0.5))
    start_x = rng.uniform(x_lo, x_hi)
    drop = rng.uniform(0.15, 0.6) * res
    for _ in range(int(rng.integers(6, 40))):
        p0 = np.array([start_x + rng.normal(0, width / 2), top - rng.uniform(0, 0.15 * res)])
        p2 = p0 + np.array([rng.normal(0, width), drop * rng.uniform(0.6, 1.2)])
        p1 = (p0 + p2) / 2 + np.array([rng.normal(0, width), 0.0])
        t = np.linspace(0, 1, 24)[:, None]
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
        thickness = max(1, int(rng.uniform(0.006, 0.03) * res))
        cv2.polylines(alpha, [np.round(curve * 16).astype(np.int32)], False, 1.0, thickness, cv2.LINE_AA, shift=4)
    return alpha


def one(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, source: Source,
        index: int = -1, kind: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image`` and ``label`` with one occluder of ``kind`` (random when None) pasted over them, and
    where it lies (float32 0..1: there the label is known for sure)."""
    res = image.shape[0]
    kind = kind or str(rng.choice(KINDS, p=WEIGHTS))
    if kind == "hand" and not source.hands:
        kind = "patch"
    eyes = source.eyes[index] if 0 <= index < len(source.eyes) else None
    if kind == "glasses" and (eyes is None or not np.isfinite(eyes).all()):
        kind = "shape"
    out = image.astype(np.float32)
    if kind == "glasses":
        rims, lens, colour = _glasses(res, rng, eyes)
        out = out * (1 - lens[..., None]) + (out * 0.3 + colour * 0.2) * lens[..., None]
        alpha, texture = rims, np.broadcast_to(colour, (res, res, 3)).astype(np.float32)
        opaque = np.maximum(rims, (lens >= 0.5).astype(np.float32))
    elif kind == "hair":
        alpha = _hair(res, rng, label)
        colour = rng.choice([[20, 25, 30], [30, 50, 80], [60, 110, 160], [15, 15, 15], [90, 90, 100]])
        texture = np.broadcast_to(np.asarray(colour, np.float32) * rng.uniform(0.7, 1.3), (res, res, 3))
        texture = texture + rng.normal(0, 10, (res, res, 3)).astype(np.float32)
        opaque = alpha
    elif kind == "hand":
        owner, polygon = source.hands[rng.integers(0, len(source.hands))]
        hand = np.zeros((res, res), np.float32)
        cv2.fillPoly(hand, [np.round(polygon * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        centre = polygon.mean(0)
        target = _anchor(label, rng)
        matrix = cv2.getRotationMatrix2D(tuple(float(v) for v in centre), rng.uniform(-40, 40), rng.uniform(0.8, 1.2))
        matrix[:, 2] += target - centre
        alpha = cv2.warpAffine(hand, matrix, (res, res))
        texture = cv2.warpAffine(source.crops[owner].astype(np.float32), matrix, (res, res),
                                 borderMode=cv2.BORDER_REFLECT)
        opaque = alpha
    else:
        alpha = _shape_alpha(res, rng, _anchor(label, rng))
        texture = _texture(res, rng, source)
        if kind == "shape" and rng.random() < 0.5:  # shading, so it is not flat
            shade = cv2.GaussianBlur(alpha, (0, 0), res / 16)
            texture = texture * (0.7 + 0.3 * shade[..., None] / max(1e-6, float(shade.max())))
        opaque = alpha
    if rng.random() < 0.5:  # a soft edge (motion blur, focus)
        alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.5, 1.5))
    out = out * (1 - alpha[..., None]) + texture * alpha[..., None]
    label = np.where(opaque >= 0.5, 0, label).astype(np.uint8)
    return np.clip(out, 0, 255).astype(np.uint8), label, np.maximum(alpha, opaque)


def paste(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, source: Source,
          index: int = -1, chance: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """With probability ``chance``, one occluder (sometimes two) over the face; also where they lie."""
    covered = np.zeros(label.shape, np.float32)
    if rng.random() >= chance:
        return image, label, covered
    image, label, covered = one(image, label, rng, source, index)
    if rng.random() < 0.25:
        image, label, more = one(image, label, rng, source, index)
        covered = np.maximum(covered, more)
    return image, label, covered
