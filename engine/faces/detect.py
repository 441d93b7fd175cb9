"""Face detection and 468-point landmarks with the models bundled in mediapipe 0.10.21.

* ``FaceFinder.detect(frame)``: the full-range BlazeFace detector (``model_selection=1``, made for
  faces up to about 5 m away) on the frame downscaled to at most ``detect_side`` pixels. Returns
  boxes, scores and the six keypoints in frame pixels.
* ``FaceFinder.landmarks(frame, roi)``: the face mesh model (``FaceLandmarkCpu`` subgraph, 192x192
  input) on one region of interest: a rotated square around a face. We cut that region out of the
  frame ourselves (and shrink it when it is large) before handing it to mediapipe, so a 4K frame
  costs the same as a 512 one and small faces get the model's full resolution. The stock
  ``FaceMesh`` solution instead runs a short-range detector on the whole frame, which misses small
  faces (about half of the Hamilton clip's).
* A region comes from a detection (``roi_from_detection``) or from the previous frame's landmarks
  (``roi_from_landmarks``): the second is how tracks follow a face without running the detector.

Landmarks are float32 arrays (468, 3) in frame pixels; z is depth in the same pixel scale (smaller
is nearer the camera), as mediapipe defines it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MESH_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
input_side_packet: "WITH_ATTENTION:with_attention"
output_stream: "LANDMARKS:landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
"""

DETECTOR_GRAPH = "mediapipe/modules/face_detection/face_detection_full_range_cpu.binarypb"

#: The expanded subgraph's stream with the mesh model's face-presence score (sigmoid, 0-1).
PRESENCE_STREAM = "facelandmarkcpu__face_presence_score"

#: Side (pixels) the mesh crop is shrunk to at most: twice the model's 192 input keeps full detail.
MESH_CROP_SIDE = 384


@dataclass
class Detection:
    box: np.ndarray        # x0, y0, x1, y1 in frame pixels
    score: float
    keypoints: np.ndarray  # (6, 2): right eye, left eye, nose tip, mouth, right ear, left ear
    #: The frame was rotated by this many degrees clockwise for the detector to find the face.
    rotated: int = 0


@dataclass
class Roi:
    """A rotated square around a face: centre, side and angle (radians, counter-clockwise)."""

    cx: float
    cy: float
    side: float
    angle: float


def _rotation(p_right_eye: np.ndarray, p_left_eye: np.ndarray) -> float:
    # mediapipe's convention: the angle that makes the eye line horizontal.
    return -math.atan2(-(p_left_eye[1] - p_right_eye[1]), p_left_eye[0] - p_right_eye[0])


def roi_from_detection(det: Detection) -> Roi:
    x0, y0, x1, y1 = det.box
    angle = _rotation(det.keypoints[0], det.keypoints[1])
    side = max(x1 - x0, y1 - y0) * 1.5
    return Roi(float((x0 + x1) / 2), float((y0 + y1) / 2), float(side), float(angle))


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    """The region the next frame's mesh should look at, as mediapipe's own face tracking makes it."""
    angle = _rotation(landmarks[33, :2], landmarks[263, :2])
    pts = landmarks[:, :2]
    centre = (pts.min(0) + pts.max(0)) / 2
    cos, sin = math.cos(-angle), math.sin(-angle)
    rot = np.array([[cos, -sin], [sin, cos]], dtype=np.float32)
    local = (pts - centre) @ rot.T
    lo, hi = local.min(0), local.max(0)
    mid = rot.T @ ((lo + hi) / 2) + centre
    side = float(max(hi - lo)) * 1.5
    return Roi(float(mid[0]), float(mid[1]), side, float(angle))


#: The size a face crop is read at by ``crop_mesh`` (the quality figures and the merge's ``follow``).
CROP_MESH_SIZE = 256


def crop_mesh(finder: FaceFinder, crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """The 468 mesh landmarks (x, y, z; crop pixels) of the face in a square crop (uint8 BGR, or float
    0..1), looked for where ``landmarks`` (any 468 points of a face in that crop, e.g. the destination's)
    say; None when the mesh sees no face there. The crop is read at ``CROP_MESH_SIZE`` px, whatever its
    own size, so that crops of any model resolution are read alike."""
    import cv2

    image = np.asarray(crop)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    scale = CROP_MESH_SIZE / float(image.shape[0])
    if image.shape[0] != CROP_MESH_SIZE:
        interp = cv2.INTER_AREA if image.shape[0] > CROP_MESH_SIZE else cv2.INTER_CUBIC
        image = cv2.resize(image, (CROP_MESH_SIZE, CROP_MESH_SIZE), interpolation=interp)
    roi = roi_from_landmarks(np.asarray(landmarks, np.float64)[:, :2] * scale)
    found = finder.landmarks(np.ascontiguousarray(image), roi)
    return None if found is None else np.asarray(found[0], np.float64) / scale


class FaceFinder:
    """The detector and the mesh, loaded once; not thread-safe (one per thread)."""

    def __init__(self, min_confidence: float = 0.5, min_presence: float = 0.1, detect_side: int = 640) -> None:
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.framework.formats import rect_pb2

        self._rect = rect_pb2.NormalizedRect
        self.detect_side = detect_side
        self.min_confidence = min_confidence
        self.min_presence = min_presence
        detector = _expanded(binary_graph=DETECTOR_GRAPH)
        _set_options(detector, "TensorsToDetectionsCalculatorOptions", min_score_thresh=min_confidence)
        self._detector = _solution(detector, outputs=["detections"])
        # The subgraph drops landmarks whose face-presence score is under 0.5; that loses most
        # three-quarter and small faces (the Obamas in the Hamilton clip score 0.1-0.5 with good
        # landmarks, while non-faces score under 0.05), so we gate on ``min_presence`` ourselves.
        mesh = _expanded(config=text_format.Parse(MESH_GRAPH, calculator_pb2.CalculatorGraphConfig()))
        _set_options(mesh, "ThresholdingCalculatorOptions", threshold=min_presence)
        self._mesh = _solution(mesh, side_inputs={"with_attention": False}, outputs=["landmarks", PRESENCE_STREAM])

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()

    # -- detection ------------------------------------------------------------------------
    def detect(self, frame: np.ndarray) -> list[Detection]:
        import cv2

        h, w = frame.shape[:2]
        scale = min(1.0, self.detect_side / max(h, w))
        small = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) \
            if scale < 1.0 else frame
        result = self._detector.process({"image": cv2.cvtColor(small, cv2.COLOR_BGR2RGB)})
        found = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w,
                            (rel.ymin + rel.height) * h], dtype=np.float32)
            kps = np.array([[k.x * w, k.y * h] for k in det.location_data.relative_keypoints], dtype=np.float32)
            found.append(Detection(box, float(det.score[0]), kps))
        return found

    def detect_tiled(self, frame: np.ndarray, overlap: float = 0.25) -> list[Detection]:
        """The whole frame plus 2x2 overlapping tiles, each seen at the detector's full input size:
        finds faces down to about half the size the whole frame alone does, for 5 detector runs."""
        h, w = frame.shape[:2]
        found = self.detect(frame)
        th, tw = int(h / (2 - overlap)), int(w / (2 - overlap))
        for y in (0, h - th):
            for x in (0, w - tw):
                for det in self.detect(frame[y:y + th, x:x + tw]):
                    det.box += np.array([x, y, x, y], dtype=np.float32)
                    det.keypoints += np.array([x, y], dtype=np.float32)
                    found.append(det)
        kept: list[Detection] = []
        for det in sorted(found, key=lambda d: -d.score):
            if all(_overlap(det.box, other.box) < 0.5 for other in kept):
                kept.append(det)
        return kept

    def detect_rotated(self, frame: np.ndarray) -> list[Detection]:
        """Detect in the frame turned by 90, 270 and 180 degrees; boxes mapped back to the frame."""
        import cv2

        h, w = frame.shape[:2]
        turns = ((90, cv2.ROTATE_90_CLOCKWISE), (270, cv2.ROTATE_90_COUNTERCLOCKWISE), (180, cv2.ROTATE_180))
        for degrees, code in turns:
            found = self.detect(cv2.rotate(frame, code))
            if found:
                for det in found:
                    det.keypoints = _unrotate(det.keypoints, degrees, w, h)
                    corners = _unrotate(det.box.reshape(2, 2), degrees, w, h)
                    det.box = np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)
                    det.rotated = degrees
                return found
        return []

    # -- landmarks ------------------------------------------------------------------------
    def landmarks(self, frame: np.ndarray, roi: Roi) -> tuple[np.ndarray, float] | None:
        """468 landmarks (x, y, z in frame pixels) of the face in ``roi`` and the presence score;
        None when the mesh sees no face there."""
        import cv2

        h, w = frame.shape[:2]
        # The axis-aligned square that holds the rotated ROI, clipped to the frame.
        half = roi.side * 0.75
        x0, y0 = max(0, int(roi.cx - half)), max(0, int(roi.cy - half))
        x1, y1 = min(w, int(math.ceil(roi.cx + half))), min(h, int(math.ceil(roi.cy + half)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = frame[y0:y1, x0:x1]
        scale = min(1.0, MESH_CROP_SIDE / max(crop.shape[:2]))  # linear: the model resamples to 192 anyway
        if scale < 1.0:
            crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                              interpolation=cv2.INTER_LINEAR)
        ch, cw = crop.shape[:2]
        sx, sy = cw / (x1 - x0), ch / (y1 - y0)
        rect = self._rect(x_center=(roi.cx - x0) * sx / cw, y_center=(roi.cy - y0) * sy / ch,
                          width=roi.side * sx / cw, height=roi.side * sy / ch, rotation=roi.angle)
        result = self._mesh.process({"image": cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), "roi": rect})
        presence = getattr(result, PRESENCE_STREAM)
        if result.landmarks is None or presence is None or presence < self.min_presence:
            return None
        pts = np.array([(p.x, p.y, p.z) for p in result.landmarks.landmark], dtype=np.float32)
        pts[:, 0] = pts[:, 0] * cw / sx + x0
        pts[:, 1] = pts[:, 1] * ch / sy + y0
        pts[:, 2] = pts[:, 2] * cw / sx
        return pts, float(presence)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box (a face cut by a tile edge is inside the whole one)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return float(w * h / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


def _expanded(binary_graph: str | None = None, config=None):
    """A graph config with its subgraphs expanded, so that inner calculators can be configured."""
    import os

    import mediapipe
    from mediapipe.framework import calculator_pb2
    from mediapipe.python._framework_bindings import resource_util, validated_graph_config

    root = os.path.dirname(os.path.dirname(mediapipe.__file__))
    resource_util.set_resource_dir(root)
    validated = validated_graph_config.ValidatedGraphConfig()
    if binary_graph:
        validated.initialize(binary_graph_path=os.path.join(root, binary_graph))
    else:
        validated.initialize(graph_config=config)
    expanded = calculator_pb2.CalculatorGraphConfig()
    expanded.ParseFromString(validated.binary_config)
    # One inference thread per model. XNNPACK's default thread pool spins while it waits: on a
    # shared 2-core machine 2 threads made the mesh 80x slower, and our pipeline already runs
    # decode, models and writing on separate threads.
    _set_options(expanded, "InferenceCalculatorOptions", num_threads=1)
    return expanded


def _set_options(config, options_name: str, **values) -> None:
    """Set fields of every node whose options are ``options_name`` (in ``node_options`` or ``options``)."""
    from mediapipe.calculators.tensor import inference_calculator_pb2, tensors_to_detections_calculator_pb2
    from mediapipe.calculators.util import thresholding_calculator_pb2

    types = {"InferenceCalculatorOptions": inference_calculator_pb2.InferenceCalculatorOptions,
             "TensorsToDetectionsCalculatorOptions": tensors_to_detections_calculator_pb2.TensorsToDetectionsCalculatorOptions,
             "ThresholdingCalculatorOptions": thresholding_calculator_pb2.ThresholdingCalculatorOptions}
    kind = types[options_name]
    found = 0
    for node in config.node:
        messages = []
        for any_options in node.node_options:
            if any_options.Is(kind.DESCRIPTOR):
                message = kind()
                any_options.Unpack(message)
                messages.append((message, any_options))
        if node.options.HasExtension(kind.ext):
            messages.append((node.options.Extensions[kind.ext], None))
        for message, any_options in messages:
            for name, value in values.items():
                if name == "num_threads":
                    message.delegate.xnnpack.num_threads = value
                else:
                    setattr(message, name, value)
            if any_options is not None:
                any_options.Pack(message)
            found += 1
    if not found:
        raise RuntimeError(f"no {options_name} in the mediapipe graph: is this mediapipe 0.10.21?")


def _solution(config, side_inputs=None, outputs=None):
    from mediapipe.python import solution_base

    return solution_base.SolutionBase(graph_config=config, side_inputs=side_inputs, outputs=outputs)


def _unrotate(points: np.ndarray, degrees: int, w: int, h: int) -> np.ndarray:
    """Map points found in a frame rotated clockwise by ``degrees`` back to the original frame."""
    x, y = points[:, 0], points[:, 1]
    if degrees == 90:    # rotated frame is h wide: (x', y') = (h - 1 - y, x)
        return np.stack([y, h - 1 - x], axis=1)
    if degrees == 270:   # (x', y') = (y, w - 1 - x)
        return np.stack([w - 1 - y, x], axis=1)
    if degrees == 180:
        return np.stack([w - 1 - x, h - 1 - y], axis=1)
    return points.copy()
