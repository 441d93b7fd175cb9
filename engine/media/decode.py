"""Stream frames from a video or an image folder as 8-bit BGR arrays, never dumping them to disk.

    for index, timestamp, frame in iter_frames(path):   # frame: uint8 H x W x 3, BGR
        ...

* Videos are decoded by OpenCV's bundled FFmpeg backend with rotation metadata applied (a phone clip
  shot upright comes out upright). ``timestamp`` is the frame's presentation time in seconds from
  the first video frame (exact for variable-frame-rate clips; add ``MediaInfo.video_start`` for the
  container time). ``index`` counts decoded frames from 0. A codec OpenCV's FFmpeg cannot decode
  (AV1, for one) is piped from the imageio-ffmpeg binary instead (timestamps then index / fps).
* Image folders yield the images sorted by file name (``timestamp`` is ``index / fps`` with the
  ``fps`` given, 25 by default). Grayscale, RGBA/BGRA, palette and 16-bit images are converted to
  8-bit BGR; EXIF orientation is applied. A file that is not a readable image is skipped with a
  warning through ``on_skip`` (the index of the files after it does not change: it counts files).

``start`` skips frames before that index (resuming an interrupted extraction, a worker's range, a
preview of one frame). By default the frames before it are decoded (``grab``, not converted): exact
for any clip, but a worker starting at frame 150 000 of a film would decode for minutes first. With
``seek=True`` (give ``MediaInfo.seekable``: every frame's time is index / fps) the decoder seeks to
the frame's time instead and checks where it landed (the frame number and its time); a seek that
lands anywhere else is dropped and the frames are decoded from the start as before. Decoding runs in the
caller's thread; ``DecodeAhead`` moves it onto a thread of its own, a few frames ahead of the caller
(extraction and merging both decode that way):

    with DecodeAhead(iter_frames(path), depth=8, name="merge-decode") as frames:
        for index, timestamp, frame in frames:
            ...
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from engine.errors import UserError
from engine.media.probe import list_images

Frame = tuple[int, float, np.ndarray]
T = TypeVar("T")
_END = object()


def iter_frames(path: str | Path, start: int = 0, fps: float = 25.0,
                on_skip: Callable[[str], None] | None = None, seek: bool = False) -> Iterator[Frame]:
    """Yield ``(index, timestamp_s, frame_bgr)`` for every frame from ``start`` on (``seek``: see the
    module's notes; give ``MediaInfo.seekable``)."""
    path = Path(path)
    if path.is_dir():
        yield from _iter_images(path, start, fps, on_skip)
    else:
        yield from _iter_video(path, start, seek)


def _seek(capture: Any, start: int) -> np.ndarray | None:
    """Seek an open capture (just past frame 0) to frame ``start`` and read it; None unless it landed
    there: the capture's frame counter and the frame's time both say so (half a frame's tolerance)."""
    import cv2

    rate = capture.get(cv2.CAP_PROP_FPS)
    first_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
    if not rate or rate <= 0 or not capture.set(cv2.CAP_PROP_POS_FRAMES, start):
        return None
    ok, frame = capture.read()
    if not ok or frame is None or round(capture.get(cv2.CAP_PROP_POS_FRAMES)) != start + 1:
        return None
    if abs(capture.get(cv2.CAP_PROP_POS_MSEC) - first_ms - start * 1000.0 / rate) > 500.0 / rate:
        return None
    return frame


def _iter_video(path: Path, start: int, seek: bool = False) -> Iterator[Frame]:
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if capture.isOpened():
            # This OpenCV build does not apply the display matrix by default: ask it to.
            capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
            ok, frame = capture.read()
            if ok and frame is not None:
                index = 0
                if seek and start > 0:
                    frame = _seek(capture, start)
                    if frame is None:  # landed elsewhere: decode the frames before it after all
                        capture.release()
                        yield from _iter_video(path, start, seek=False)
                        return
                    index = start
                while True:
                    if index >= start:
                        yield index, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, to_bgr8(frame)
                    index += 1
                    if index < start:  # skipping to a resume point: grab() does not convert
                        if not capture.grab():
                            return
                        continue
                    ok, frame = capture.read()
                    if not ok or frame is None:
                        return
    finally:
        capture.release()
    # OpenCV's FFmpeg lacks some decoders (AV1, for one): decode with the ffmpeg binary instead.
    yield from _iter_ffmpeg(path, start)


def _iter_ffmpeg(path: Path, start: int) -> Iterator[Frame]:
    """Frames piped from the imageio-ffmpeg binary (rotation applied by ffmpeg); timestamps from the
    stream's frame rate, so approximate for variable-rate clips."""
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="bgr24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration):
        raise UserError(f"{path.name} cannot be decoded.",
                        "Check that it plays in a video player; re-encode it to H.264 if it does not.") from None
    width, height = meta["size"]
    if meta.get("rotate", 0) in (90, 270):
        width, height = height, width
    fps = float(meta.get("fps") or 25.0)
    try:
        for index, data in enumerate(reader):
            if index >= start:
                yield index, index / fps, np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()
    finally:
        reader.close()


def read_image(path: Path) -> np.ndarray | None:
    """Read one image as 8-bit BGR (EXIF orientation applied), or None if it is not readable."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    # COLOR | ANYDEPTH: 3 channels and EXIF orientation applied, but 16-bit depth kept so that
    # to_bgr8 scales it (a plain IMREAD_COLOR would too, but not for every codec).
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    return None if image is None else to_bgr8(image)


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (gray, BGRA, 16-bit, float) as contiguous 8-bit 3-channel BGR."""
    import cv2

    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)


def _iter_images(folder: Path, start: int, fps: float, on_skip: Callable[[str], None] | None) -> Iterator[Frame]:
    images, _ = list_images(folder)
    if not images:
        raise UserError(f"The folder {folder} holds no images.", "Put .png or .jpg files in it, or give a video.")
    for index, image_path in enumerate(images):
        if index < start:
            continue
        frame = read_image(image_path)
        if frame is None:
            if on_skip:
                on_skip(f"{image_path.name} is not a readable image; skipped.")
            continue
        yield index, index / fps, frame


class DecodeAhead(Generic[T]):
    """``items`` (frames, usually) produced on a background thread, up to ``depth`` ahead of the consumer.

    OpenCV's FFmpeg releases the GIL while it decodes, so decoding overlaps with what the consumer does
    with the frames. Iterate it once; an error raised by ``items`` re-raises in the consumer where it
    happened. Leaving early (a ``break``, an exception, a cancel) should ``close()`` it (``with`` does):
    the producer stops after the item it is on and closes ``items`` (releasing the video), and its
    thread ends. ``cpu_s`` is the CPU time the producer thread used, once it has ended.
    """

    def __init__(self, items: Iterable[T], depth: int = 8, name: str = "decode-ahead") -> None:
        self._items = items
        self._slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._started = False
        self.cpu_s = 0.0

    def _produce(self) -> None:
        try:
            for item in self._items:
                while not self._stop.is_set():
                    try:
                        self._slots.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._slots.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._slots.put(exc)
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
            self.cpu_s = time.thread_time()

    def __iter__(self) -> Iterator[T]:
        if self._started:
            raise RuntimeError("DecodeAhead is iterated once")
        self._started = True
        self._thread.start()
        while True:
            item = self._slots.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self, timeout: float = 5.0) -> None:
        """Stop the producer and wait (up to ``timeout`` seconds) for its thread to end."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:  # a producer waiting on a full queue sees the stop at its next try
                self._slots.get(timeout=0.05)
            except queue.Empty:
                pass

    def __enter__(self) -> DecodeAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
