"""Colour transfer: make one face crop take on another's colours, measured under a mask.

Every function takes float32 BGR images in 0..1 (H x W x 3) and returns ``source`` recoloured so
that its colour statistics match ``target``'s. Statistics are measured only where the mask is
above one half (the face), so background, hair and the crop's black border do not skew them; the
mapping found is then applied to every pixel of ``source`` (the merge masks the result anyway).

Kinds (the names DeepFaceLab users know):

- ``rct``: Reinhard: mean and standard deviation per channel in L*a*b*. Fast, robust; the default.
- ``lct``: linear: matches the full 3x3 colour covariance (PCA square roots) in BGR.
- ``mkl``: Monge-Kantorovich linear map between the two colour Gaussians.
- ``idt``: iterative distribution transfer (Pitie et al.): 1-D histogram matching along rotated axes.
- ``sot``: sliced optimal transport along random directions, then an edge-preserving smoothing.
- ``none``: the source unchanged.

    from engine.merge.colour import transfer, rct
    face = transfer("rct", predicted_face, dst_crop, mask)
"""

from __future__ import annotations

import numpy as np

KINDS = ("none", "rct", "lct", "mkl", "idt", "sot")

#: Fewer masked pixels than this and statistics are taken over the whole image instead.
_MIN_PIXELS = 16
_EPS = 1e-6


def _pixels(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The N x 3 pixels under the mask (all pixels without one, or when the mask is nearly empty).

    Statistics come from a strided sample of at most about 128 x 128 pixels: colour statistics of a
    face do not need every pixel, and this keeps a 512-pixel crop as cheap as a 128-pixel one.
    """
    step = max(1, max(image.shape[:2]) // 128)
    image = image[::step, ::step]
    flat = image.reshape(-1, 3)
    if mask is None:
        return flat
    chosen = np.asarray(mask)[::step, ::step].reshape(-1) > 0.5
    if chosen.size != flat.shape[0]:
        raise ValueError(f"mask has {chosen.size} pixels, image has {flat.shape[0]}")
    if int(chosen.sum()) < _MIN_PIXELS:
        return flat
    return flat[chosen]


def _as_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.ascontiguousarray(image, dtype=np.float32)


# sRGB (D65) <-> CIE L*a*b*, as OpenCV's float conversion does it. Written out in numpy because
# OpenCV builds its Lab tables on first use (about 0.3 s), which every short preview job would pay.
_RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                        [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]])
_WHITE = np.array([0.950456, 1.0, 1.088754])
_BGR_TO_XYZ = (_RGB_TO_XYZ[:, ::-1] / _WHITE[:, None]).T.astype(np.float32)  # rows: B, G, R
_XYZ_TO_BGR = np.linalg.inv(_BGR_TO_XYZ.astype(np.float64)).astype(np.float32)


def bgr_to_lab(image: np.ndarray) -> np.ndarray:
    """float32 BGR 0..1 (any shape ending in 3) -> L* 0..100, a*, b* about -127..127."""
    linear = np.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4)
    xyz = linear.astype(np.float32) @ _BGR_TO_XYZ
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lab = np.empty_like(xyz)
    lab[..., 0] = np.where(xyz[..., 1] > 0.008856, 116.0 * f[..., 1] - 16.0, 903.3 * xyz[..., 1])
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_bgr(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f ** 3 > 0.008856, f ** 3, (f - 16.0 / 116.0) / 7.787)
    xyz[..., 1] = np.where(lab[..., 0] > 8.0, xyz[..., 1], lab[..., 0] / 903.3)
    linear = np.clip(xyz.astype(np.float32) @ _XYZ_TO_BGR, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055).astype(np.float32)


def rct(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
        target_mask: np.ndarray | None = None) -> np.ndarray:
    """Reinhard colour transfer in L*a*b*: per-channel mean and spread of ``target``."""
    source, target = _as_float(source), _as_float(target)
    src_lab = bgr_to_lab(source)
    s = _pixels(src_lab, mask)
    # Only the target's sampled pixels are converted: the target is never changed.
    t = bgr_to_lab(_pixels(target, mask if target_mask is None else target_mask))
    s_mean, s_std = s.mean(axis=0), s.std(axis=0)
    t_mean, t_std = t.mean(axis=0), t.std(axis=0)
    scale = t_std / np.maximum(s_std, _EPS)
    out = (src_lab - s_mean) * scale + t_mean
    # L* is 0..100, a*/b* about -127..127 for float input; clip before converting back.
    out[..., 0] = np.clip(out[..., 0], 0.0, 100.0)
    out[..., 1:] = np.clip(out[..., 1:], -127.0, 127.0)
    return np.clip(lab_to_bgr(out.astype(np.float32)), 0.0, 1.0)


def _cov(pixels: np.ndarray) -> np.ndarray:
    return np.cov(pixels.astype(np.float64), rowvar=False) + np.eye(3) * 1e-5


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return vectors @ np.diag(np.sqrt(np.clip(values, _EPS, None))) @ vectors.T


def _apply_linear(source: np.ndarray, s_mean: np.ndarray, t_mean: np.ndarray,
                  matrix: np.ndarray) -> np.ndarray:
    flat = source.reshape(-1, 3).astype(np.float64)
    out = (flat - s_mean) @ matrix.T + t_mean
    return np.clip(out, 0.0, 1.0).astype(np.float32).reshape(source.shape)


def lct(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
        target_mask: np.ndarray | None = None) -> np.ndarray:
    """Linear colour transfer: whiten with the source covariance, colour with the target's."""
    source, target = _as_float(source), _as_float(target)
    s = _pixels(source, mask)
    t = _pixels(target, mask if target_mask is None else target_mask)
    matrix = _sqrtm(_cov(t)) @ np.linalg.inv(_sqrtm(_cov(s)))
    return _apply_linear(source, s.mean(axis=0), t.mean(axis=0), matrix)


def mkl(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
        target_mask: np.ndarray | None = None) -> np.ndarray:
    """Monge-Kantorovich linear transfer: the optimal-transport map between two colour Gaussians."""
    source, target = _as_float(source), _as_float(target)
    s = _pixels(source, mask)
    t = _pixels(target, mask if target_mask is None else target_mask)
    a, b = _cov(s), _cov(t)
    a_values, a_vectors = np.linalg.eigh(a)
    da = np.diag(np.sqrt(np.clip(a_values, _EPS, None)))
    c = da @ a_vectors.T @ b @ a_vectors @ da
    c_values, c_vectors = np.linalg.eigh(c)
    dc = np.diag(np.sqrt(np.clip(c_values, _EPS, None)))
    da_inv = np.diag(1.0 / np.diag(da))
    matrix = a_vectors @ da_inv @ c_vectors @ dc @ c_vectors.T @ da_inv @ a_vectors.T
    # The map is symmetric, so applying it to row vectors is the same as its transpose.
    return _apply_linear(source, s.mean(axis=0), t.mean(axis=0), matrix)


def _quantiles(values: np.ndarray, count: int = 256) -> np.ndarray:
    """``count`` evenly spaced quantiles (a sort and a pick: cheaper than np.quantile's interpolation)."""
    ordered = np.sort(values)
    return ordered[np.linspace(0, len(ordered) - 1, count).round().astype(np.int64)]


def _transport_1d(source_sample: np.ndarray, target_sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The monotone 1-D map (as interpolation knots) taking one distribution onto the other."""
    s_q = _quantiles(source_sample)
    # np.interp needs increasing knots; flat stretches (many equal values) get a tiny slope.
    return s_q + np.arange(len(s_q)) * 1e-9, _quantiles(target_sample)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def idt(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
        target_mask: np.ndarray | None = None, rotations: int = 10, seed: int = 0) -> np.ndarray:
    """Iterative distribution transfer: match 1-D marginals along a series of rotated colour axes."""
    source, target = _as_float(source), _as_float(target)
    flat = source.reshape(-1, 3).astype(np.float64)
    s = _pixels(source, mask).astype(np.float64)
    t = _pixels(target, mask if target_mask is None else target_mask).astype(np.float64)
    rng = np.random.default_rng(seed)
    for _ in range(rotations):
        rotation = _random_rotation(rng)
        projected, s_projected, t_projected = flat @ rotation.T, s @ rotation.T, t @ rotation.T
        moved = np.empty_like(projected)
        s_moved = np.empty_like(s_projected)
        for axis in range(3):
            knots = _transport_1d(s_projected[:, axis], t_projected[:, axis])
            moved[:, axis] = np.interp(projected[:, axis], *knots)
            s_moved[:, axis] = np.interp(s_projected[:, axis], *knots)
        # The sample moves with the image, so the next rotation measures the updated colours.
        flat = flat + (moved - projected) @ rotation
        s = s + (s_moved - s_projected) @ rotation
    return np.clip(flat, 0.0, 1.0).astype(np.float32).reshape(source.shape)


def sot(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
        target_mask: np.ndarray | None = None, steps: int = 10, batch: int = 5,
        sigma_space: float = 16.0, sigma_colour: float = 5.0, seed: int = 0) -> np.ndarray:
    """Sliced optimal transport: average 1-D transports along random directions; smooth the shift."""
    import cv2

    source, target = _as_float(source), _as_float(target)
    flat = source.reshape(-1, 3).astype(np.float64)
    s = _pixels(source, mask).astype(np.float64)
    t = _pixels(target, mask if target_mask is None else target_mask).astype(np.float64)
    rng = np.random.default_rng(seed)
    current = flat.copy()
    for _ in range(steps):
        advect = np.zeros_like(current)
        s_advect = np.zeros_like(s)
        for _ in range(batch):
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            projected, s_projected, t_projected = current @ direction, s @ direction, t @ direction
            knots = _transport_1d(s_projected, t_projected)
            advect += np.outer(np.interp(projected, *knots) - projected, direction)
            s_advect += np.outer(np.interp(s_projected, *knots) - s_projected, direction)
        current += advect / batch
        s += s_advect / batch
    shift = (flat - current).astype(np.float32).reshape(source.shape)
    if sigma_space > 0:
        # Regularise: the shift should follow the image's regions, not individual noisy pixels.
        # Filtered at 64 pixels (sigma scaled to match a 256 crop): the shift is smooth, and a
        # full-size 49 x 49 bilateral kernel would cost a second per crop.
        height, width = shift.shape[:2]
        small = cv2.resize(shift, (64, 64), interpolation=cv2.INTER_AREA)
        small = cv2.bilateralFilter(small, 0, sigma_colour, sigma_space * 64 / 256)
        shift = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(source - shift, 0.0, 1.0).astype(np.float32)


def transfer(kind: str, source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
             target_mask: np.ndarray | None = None) -> np.ndarray:
    """Recolour ``source`` toward ``target`` with the named method (see ``KINDS``)."""
    if kind == "none":
        return _as_float(source)
    functions = {"rct": rct, "lct": lct, "mkl": mkl, "idt": idt, "sot": sot}
    if kind not in functions:
        raise ValueError(f"unknown colour transfer {kind!r}; one of {', '.join(KINDS)}")
    return functions[kind](source, target, mask, target_mask)
