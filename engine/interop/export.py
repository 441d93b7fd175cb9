"""A trained model's swap path as one ONNX file in DeepFaceLive's shapes (``swapwizard export-model``).

::

    from engine.interop.export import export_model
    info = export_model(ws.model_dir("default"), Path("me.dfm"))   # -> {"face_type": ..., "resolution": ...}

The graph takes ``in_face:0`` (N x R x R x 3 float32 BGR in 0..1, N free) and, for an AMP model,
``morph_value:0`` (float32 [1], 0: the destination's own face, 1: the source's); it gives the
destination's mask, the swapped face and its mask, NHWC (engine.interop.contract). A ``.dfm`` and an
``.onnx`` are the same bytes: DeepFaceLive only asks for the extension.

Every family swapwizard trains can be expressed: DF and LIAE (any -u/-d variant; DeepFaceLab's Quick96
is the ``quick`` preset, df-ud at 96 px), AMP with its morph input, and cnn (its masks are all ones: it
learns none; its pyramid's area resizes go in as the equal average pools). The exporter is PyTorch's TorchScript-based one (``dynamo=False``): it needs no onnxscript,
and these networks have no data-dependent control flow that would need the newer one.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.atomic import atomic_write_bytes
from engine.interop.contract import INPUT, MORPH, OUTPUTS, coverage, metadata

#: ONNX opset: ONNX Runtime 1.17 and later, and DeepFaceLive's bundled 1.15+, run it.
OPSET = 17


class SwapGraph(nn.Module):
    """``network.swap`` with DeepFaceLive's inputs and outputs: NHWC in, (dst mask, face, face mask) out."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.amp = network.options.base == "amp"

    def forward(self, in_face: torch.Tensor, morph_value: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        x = in_face.permute(0, 3, 1, 2)
        base = self.network.options.base
        if base == "cnn":
            face = self._cnn_transform(x)
            mask_src = mask_dst = torch.ones_like(face[:, :1])
        else:
            face, mask_src, mask_dst = getattr(self, f"_{base}_swap")(x, morph_value)
        return mask_dst.permute(0, 2, 3, 1), face.permute(0, 2, 3, 1), mask_src.permute(0, 2, 3, 1)

    # Each swap below is its ``SwapAutoencoder.swap`` without the batch's length in it (a trace would keep
    # the example's length as a constant: the batch must stay free) and with the destination's mask from
    # the decoder's mask branch alone (its face half is not an output).

    @staticmethod
    def _mask(decoder: nn.Module, code: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(decoder.out_mask(decoder.mask_body(code)))

    def _df_swap(self, x: torch.Tensor, _morph: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        net = self.network
        code = net.inter(net.encoder(x))
        face, mask_src = net.decoder_src(code)
        return face, mask_src, self._mask(net.decoder_dst, code)

    def _liae_swap(self, x: torch.Tensor, _morph: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        net = self.network
        enc = net.encoder(x)
        ab, b = net.inter_ab(enc), net.inter_b(enc)
        face, mask_src = net.decoder(torch.cat([ab, ab], 1))
        return face, mask_src, self._mask(net.decoder, torch.cat([b, ab], 1))

    def _cnn_transform(self, x: torch.Tensor) -> torch.Tensor:
        """``FaceSwapCNN.transform`` with its pyramid's area resizes as average pools (the same numbers for
        these whole-number factors): the exporter cannot express an area resize to a size read from the input."""
        net = self.network
        pyramid = [F.avg_pool2d(x, 1 << (net.scales - 1 - i)) if i < net.scales - 1 else x
                   for i in range(net.scales)]
        y = net.branches[0](pyramid[0])
        for k in range(1, net.scales):
            y = F.interpolate(y, scale_factor=2.0, mode="nearest")
            y = net.joins[k - 1](torch.cat([y, net.branches[k](pyramid[k])], 1))
        return torch.sigmoid(net.out(y))

    def _amp_swap(self, x: torch.Tensor, morph: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """The morph as a tensor: the first round(morph x channels) channels of the code from inter_src, the
        rest from inter_dst, as a 0/1 channel mask (a slice whose length comes from an input has no static
        shape)."""
        net = self.network
        enc = net.encoder(x)
        to_src, to_dst = net.inter_src(enc), net.inter_dst(enc)
        channels = net.options.ae_dims * 2
        share = torch.ones(1, dtype=x.dtype) if morph is None else morph.to(x.dtype)
        cut = torch.round(share.clamp(0.0, 1.0) * channels)
        keep = (torch.arange(channels, dtype=x.dtype) < cut).to(x.dtype).view(1, channels, 1, 1)
        face, mask_src = net.decoder(to_src * keep + to_dst * (1.0 - keep))
        return face, mask_src, self._mask(net.decoder, to_dst)


def onnx_bytes(network: nn.Module, face_type: str, iteration: int = 0) -> bytes:
    """The ONNX file of ``network``'s swap path (on the CPU, float32) with its metadata, as bytes."""
    import onnx

    network = network.eval().float().cpu()
    graph = SwapGraph(network).eval()  # the exporter puts the module back in the mode it found it in
    res = network.options.resolution
    example = (torch.rand(2, res, res, 3),) + ((torch.tensor([0.5]),) if graph.amp else ())
    names = [INPUT, MORPH] if graph.amp else [INPUT]
    batch = {0: "N"}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, not gone
        torch.onnx.export(graph, example, buffer, input_names=names, output_names=list(OUTPUTS),
                          dynamic_axes={INPUT: batch, **{name: batch for name in OUTPUTS}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    model.producer_name = "swapwizard"
    props = metadata(face_type, res, network.options.arch, iteration, graph.amp)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def export_model(model_dir: Path, output: Path, which: str = "latest", warn: Any = None) -> dict[str, Any]:
    """Write ``model_dir``'s model to ``output`` (whole, or not at all); returns what a user needs to know."""
    from engine.train.api import load_model

    model = load_model(model_dir, device="cpu", which=which, warn=warn)
    data = onnx_bytes(model.network, model.face_type, model.iteration)
    atomic_write_bytes(output, data)
    options = model.network.options
    return {"output": str(output), "bytes": len(data), "arch": options.arch, "resolution": options.resolution,
            "face_type": model.face_type, "coverage": coverage(model.face_type),
            "morph_input": options.base == "amp", "iteration": model.iteration}
