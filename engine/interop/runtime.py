"""An ONNX face-swap model (DeepFaceLive's contract) that predicts as ``engine.train.api.SwapModel`` does.

::

    model = OnnxSwapModel(data, face_type="whole_face", device="cpu")
    preds = model.predict(crops)    # crops: list of R x R x 3 uint8 BGR; -> Prediction(face, mask_src, mask_dst)

Merging, its preview and the workers use ``resolution``, ``face_type``, ``iteration``, ``morph`` (models
with a ``morph_value`` input), ``device.type`` and ``predict``; nothing else. The session is made on first
use, so ``threads`` (ONNX Runtime's intra-op threads; 0: its own choice) can be set after loading, as
the merge workers set torch's. Providers: CUDA when ``device`` asks for it (or ``auto`` finds it), else
the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import UserError
from engine.train.api import Prediction, check_crops


@dataclass(frozen=True)
class RuntimeDevice:
    """Where the session runs, in the shape merging reads from a torch device (``.type``)."""

    type: str

    def __str__(self) -> str:
        return f"{self.type} (ONNX Runtime)"


def providers_for(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wants_gpu = device.startswith("cuda") or (device == "auto" and "CUDAExecutionProvider" in available)
    if wants_gpu and "CUDAExecutionProvider" not in available:
        raise UserError(f"ONNX Runtime on this machine has no CUDA provider for device {device!r}.",
                        "Install onnxruntime-gpu, or set [merge] runtime = \"torch\" (or the device to cpu).")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if wants_gpu else ["CPUExecutionProvider"]


class OnnxSwapModel:
    """An ONNX swap graph (``in_face`` [, ``morph_value``] -> dst mask, face, face mask), ready to merge."""

    def __init__(self, data: bytes, face_type: str, iteration: int = 0, device: str = "auto",
                 batch_size: int = 16, threads: int = 0) -> None:
        self._data = data
        self._providers = providers_for(device)
        self.device = RuntimeDevice("cuda" if self._providers[0].startswith("CUDA") else "cpu")
        self.face_type = face_type
        self.iteration = iteration
        self.batch_size = batch_size
        self.threads = threads
        self._morph = 1.0
        self._session: Any = None
        self.resolution, self._inputs = self._read_inputs()

    def _read_inputs(self) -> tuple[int, list[str]]:
        import onnx

        graph = onnx.load_from_string(self._data).graph
        initialised = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initialised]
        return int(inputs[0].type.tensor_type.shape.dim[1].dim_value), [i.name for i in inputs]

    @property
    def has_morph(self) -> bool:
        return len(self._inputs) == 2

    @property
    def morph(self) -> float:
        """How far toward the source the face goes (``morph_value``, 0..1); a model without the input ignores it."""
        return self._morph

    @morph.setter
    def morph(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise UserError(f"morph = {value} is out of range.", "Use 0 to 1.")
        self._morph = float(value)

    @property
    def session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
            options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
            self._session = ort.InferenceSession(self._data, sess_options=options, providers=self._providers)
        return self._session

    def run(self, faces: np.ndarray) -> list[np.ndarray]:
        """The raw outputs for N x R x R x 3 float32 faces in 0..1: [dst mask, face, face mask], NHWC."""
        feed = {self._inputs[0]: np.ascontiguousarray(faces, np.float32)}
        if self.has_morph:
            feed[self._inputs[1]] = np.float32([self._morph])
        return [np.asarray(out, np.float32) for out in self.session.run(None, feed)]

    def predict(self, crops_bgr_uint8: list[np.ndarray]) -> list[Prediction]:
        check_crops(crops_bgr_uint8, self.resolution)
        results: list[Prediction] = []
        for start in range(0, len(crops_bgr_uint8), self.batch_size):
            chunk = np.stack(crops_bgr_uint8[start:start + self.batch_size]).astype(np.float32) / 255.0
            mask_dst, face, mask_src = self.run(chunk)
            results += [Prediction(np.ascontiguousarray(f), np.ascontiguousarray(m[..., 0]),
                                   np.ascontiguousarray(d[..., 0]))
                        for f, m, d in zip(face, mask_src, mask_dst)]
        return results
