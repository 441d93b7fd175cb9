"""DeepFaceLive's DFM contract, the metadata swapwizard writes into an exported file, and the checks an
imported file passes before it runs.

A ``.dfm`` is an ONNX file that DeepFaceLive (modelhub/DFLive/DFMModel.py) opens so:

- the first input's name contains ``in_face`` and is fed as ``in_face:0``: NHWC float32 BGR in 0..1,
  N x H x W x 3, H and W read from the input's shape (so they are fixed; N is not);
- an optional second input ``morph_value:0`` (float32, shape [1]): models that morph (AMP);
- three outputs, in order: the destination face's mask (N x H x W x 1), the swapped face (N x H x W x 3)
  and the swapped face's mask (N x H x W x 1).

An exported ``.onnx`` is the same graph. The face type and coverage the model expects are metadata
properties of the file (``swapwizard.face_type``, ``swapwizard.coverage``...), printed on export, so a
DeepFaceLive user picks the same face type. A file from DeepFaceLab carries none: its importer says which.

An imported file comes from anyone: it is read only as ONNX protobuf (never a pickle), at most
``MAX_BYTES``, with every tensor inside the file (ONNX "external data" would name other files, so it is
refused), only standard operator domains, and the contract's inputs and outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserError

INPUT = "in_face:0"
MORPH = "morph_value:0"
OUTPUTS = ("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0")
#: Protobuf's own limit for one file; DeepFaceLab's DFMs are 100 MB to 1 GB.
MAX_BYTES = 2 << 30
#: Operator domains ONNX Runtime implements itself (a custom domain would need a library loaded).
DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
#: Resolution limits of an imported model (DeepFaceLab trains 64 to 640 px).
MIN_RES, MAX_RES = 32, 1024

#: swapwizard's face types and DeepFaceLab's (and DeepFaceLive's) names for the nearest of them.
DFL_FACE_TYPES = {"half": "h", "mid_full": "mf", "full": "f", "whole_face": "wf", "head": "head"}
#: What DeepFaceLive calls them in its face aligner's list.
DFLIVE_FACE_TYPES = {"half": "HALF", "mid_full": "MID_FULL", "full": "FULL", "whole_face": "WHOLE_FACE",
                     "head": "HEAD"}


def face_type_named(name: str) -> str:
    """swapwizard's face type for ``name`` (its own name, or DeepFaceLab's: h, mf, f, wf, head)."""
    wanted = name.strip().lower()
    for ours, theirs in DFL_FACE_TYPES.items():
        if wanted in (ours, theirs, DFLIVE_FACE_TYPES[ours].lower()):
            return ours
    raise UserError(f"{name!r} is not a face type.",
                    "Use one of: " + ", ".join(f"{ours} ({theirs})" for ours, theirs in DFL_FACE_TYPES.items())
                    + " (DeepFaceLab's names in brackets).")


def coverage(face_type: str) -> str:
    """The crop a face type cuts, in words with its square (template units: the brows span 0..1)."""
    from engine.faces.align import CROPS

    centre_y, side = CROPS[face_type]
    return f"square of side {side:g} brow-widths centred {centre_y:g} below the brow tops"


def metadata(face_type: str, resolution: int, arch: str, iteration: int, morph: bool) -> dict[str, str]:
    """The metadata properties of an exported file (ONNX ``metadata_props``: strings)."""
    return {"swapwizard.face_type": face_type,
            "swapwizard.dfl_face_type": DFL_FACE_TYPES[face_type],
            "swapwizard.deepfacelive_face_type": DFLIVE_FACE_TYPES[face_type],
            "swapwizard.coverage": coverage(face_type),
            "swapwizard.resolution": str(resolution),
            "swapwizard.arch": arch,
            "swapwizard.iteration": str(iteration),
            "swapwizard.morph_input": "yes" if morph else "no",
            "swapwizard.colour_order": "BGR",
            "swapwizard.note": "Face-swap model: everything it makes is synthetic media; label it as such."}


@dataclass
class Described:
    """What an ONNX file that keeps the contract says about itself."""

    resolution: int
    morph: bool
    properties: dict[str, str]
    input_name: str

    @property
    def face_type(self) -> str | None:
        found = self.properties.get("swapwizard.face_type")
        return found if found in DFL_FACE_TYPES else None


def _refuse(path: Path, why: str, hint: str = "") -> UserError:
    return UserError(f"{path.name} cannot be used as a face-swap model: {why}",
                     hint or "Give a .dfm exported by DeepFaceLab or swapwizard, or an .onnx from "
                     "swapwizard export-model.")


def _dims(value_info: Any) -> list[int | str]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim]


def describe(path: Path) -> Described:
    """Check an (untrusted) ONNX file against the DFM contract and say what it holds; ``UserError`` if not."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(f"There is no file at {path}.", "Give the path of a .dfm or .onnx file.") from None
    if size > MAX_BYTES:
        raise _refuse(path, f"it is {size / 2**30:.1f} GB, more than the {MAX_BYTES >> 30} GB an ONNX file holds.")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - any parse failure of an untrusted file is the same answer
        raise _refuse(path, "it is not an ONNX file.") from None
    graph = model.graph
    tensors = list(graph.initializer) + [a.t for n in graph.node for a in n.attribute if a.HasField("t")]
    if any(uses_external_data(t) for t in tensors) or any(t.data_location == onnx.TensorProto.EXTERNAL
                                                          for t in tensors):
        raise _refuse(path, "its weights are in other files (ONNX external data), which are never read.",
                      "Save the model as one file (onnx.save with save_as_external_data=False).")
    unknown = sorted({o.domain for o in model.opset_import} - set(DOMAINS))
    if unknown:
        raise _refuse(path, f"it uses operators of {', '.join(unknown)}, which ONNX Runtime does not have.")
    initialised = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialised]
    if not inputs or "in_face" not in inputs[0].name:
        raise _refuse(path, "its first input is not in_face (DeepFaceLive's face input).")
    if len(inputs) > 2 or (len(inputs) == 2 and "morph_value" not in inputs[1].name):
        raise _refuse(path, "its inputs are not in_face and an optional morph_value.")
    dims = _dims(inputs[0])
    if len(dims) != 4 or dims[3] != 3 or not isinstance(dims[1], int) or dims[1] != dims[2]:
        raise _refuse(path, f"its face input has shape {dims}, not N x H x H x 3 with H fixed.")
    if not MIN_RES <= dims[1] <= MAX_RES:
        raise _refuse(path, f"its faces are {dims[1]} px, outside {MIN_RES} to {MAX_RES}.")
    if len(graph.output) != 3:
        raise _refuse(path, f"it has {len(graph.output)} outputs, not three (masks and face).")
    for output, wanted in zip(graph.output, (1, 3, 1)):
        last = _dims(output)[-1:]
        if last and isinstance(last[0], int) and last[0] != wanted:
            raise _refuse(path, "its outputs are not a mask, a face and a mask (1, 3 and 1 channels).")
    properties = {p.key: p.value for p in model.metadata_props}
    return Described(int(dims[1]), len(inputs) == 2, properties, inputs[0].name)
