"""The SAEHD family of face-swap autoencoders (DF and LIAE, with the U and D variants), after
DeepFaceLab's published DeepFakeArchi.

- DF: a shared encoder and inter, one decoder per side; swap = decoder_src(inter(encoder(dst))).
- LIAE: a shared encoder, inter_AB and inter_B, one decoder; src code = [AB(src), AB(src)],
  dst code = [B(dst), AB(dst)], swap code = [AB(dst), AB(dst)].
- AMP (DeepFaceLab's "amplifier"): a shared encoder, inter_src and inter_dst, one decoder. While
  training, a src face's code takes a random ``morph_factor`` share of its channels from inter_src and
  the rest from inter_dst; a dst face's code is all inter_dst. At merge time ``swap(dst, morph)`` takes
  the first ``morph`` share of the channels from inter_src(dst): 0 is the destination's own face, 1 the
  source's look on the destination's shape.
- U: pixel-norm on the encoder's code. D: the decoder outputs double its internal resolution
  (a depth-to-space output head), so a 256 px model costs about what a 128 px one does.
- Every decoder has a learned mask branch.

Images are BGR float in 0..1, NCHW.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.train.cnn import FaceSwapCNN
from engine.train.options import ModelOptions


def init_weights(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, as DeepFaceLab initialises its convolutions and dense layers."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Downscale(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 5) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2), nn.LeakyReLU(0.1))


class Upscale(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__(nn.Conv2d(cin, cout * 4, kernel, padding=kernel // 2), nn.LeakyReLU(0.1),
                         nn.PixelShuffle(2))


class ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), 0.2)
        return F.leaky_relu(self.conv2(y) + x, 0.2)


class Encoder(nn.Module):
    def __init__(self, e_dims: int, use_pixel_norm: bool) -> None:
        super().__init__()
        chans = [3] + [e_dims * min(2 ** i, 8) for i in range(4)]
        self.down = nn.Sequential(*[Downscale(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.out_ch = chans[-1]
        self.use_pixel_norm = use_pixel_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x).flatten(1)
        if self.use_pixel_norm:
            x = x * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + 1e-6).to(x.dtype)
        return x


class Inter(nn.Module):
    def __init__(self, cin: int, ae_dims: int, ae_out: int, lowest_res: int) -> None:
        super().__init__()
        self.dense1 = nn.Linear(cin, ae_dims)
        self.dense2 = nn.Linear(ae_dims, lowest_res * lowest_res * ae_out)
        self.upscale = Upscale(ae_out, ae_out)
        self.shape = (ae_out, lowest_res, lowest_res)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense2(self.dense1(x)).view(-1, *self.shape)
        return self.upscale(x)


class Decoder(nn.Module):
    def __init__(self, cin: int, d_dims: int, d_mask_dims: int, double_res: bool) -> None:
        super().__init__()
        d, m = d_dims, d_mask_dims
        self.body = nn.Sequential(
            Upscale(cin, d * 8), ResidualBlock(d * 8),
            Upscale(d * 8, d * 4), ResidualBlock(d * 4),
            Upscale(d * 4, d * 2), ResidualBlock(d * 2))
        mask_layers = [Upscale(cin, m * 8), Upscale(m * 8, m * 4), Upscale(m * 4, m * 2)]
        self.double_res = double_res
        if double_res:
            # Four output heads interleaved by depth-to-space: twice the resolution for little extra cost.
            self.out = nn.ModuleList([nn.Conv2d(d * 2, 3, 1)] + [nn.Conv2d(d * 2, 3, 3, padding=1) for _ in range(3)])
            mask_layers.append(Upscale(m * 2, m))
            self.out_mask = nn.Conv2d(m, 1, 1)
        else:
            self.out = nn.ModuleList([nn.Conv2d(d * 2, 3, 1)])
            self.out_mask = nn.Conv2d(m * 2, 1, 1)
        self.mask_body = nn.Sequential(*mask_layers)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.body(z)
        if self.double_res:
            x = F.pixel_shuffle(torch.cat([head(x) for head in self.out], dim=1), 2)
        else:
            x = self.out[0](x)
        mask = self.out_mask(self.mask_body(z))
        return torch.sigmoid(x), torch.sigmoid(mask)


class SwapAutoencoder(nn.Module):
    """One model: ``forward(src, dst)`` gives the six training outputs; ``swap(dst)`` is for merging."""

    def __init__(self, options: ModelOptions) -> None:
        super().__init__()
        self.options = options.validate()
        o = options
        double_res = "d" in o.variants
        self.encoder = Encoder(o.e_dims, use_pixel_norm="u" in o.variants)
        code_in = self.encoder.out_ch * (o.resolution // 16) ** 2
        lowest = o.resolution // (32 if double_res else 16)
        if o.base == "df":
            self.inter = Inter(code_in, o.ae_dims, o.ae_dims, lowest)
            self.decoder_src = Decoder(o.ae_dims, o.d_dims, o.d_mask_dims, double_res)
            self.decoder_dst = Decoder(o.ae_dims, o.d_dims, o.d_mask_dims, double_res)
        elif o.base == "amp":
            self.inter_src = Inter(code_in, o.ae_dims, o.ae_dims * 2, lowest)
            self.inter_dst = Inter(code_in, o.ae_dims, o.ae_dims * 2, lowest)
            self.decoder = Decoder(o.ae_dims * 2, o.d_dims, o.d_mask_dims, double_res)
        else:
            self.inter_ab = Inter(code_in, o.ae_dims, o.ae_dims * 2, lowest)
            self.inter_b = Inter(code_in, o.ae_dims, o.ae_dims * 2, lowest)
            self.decoder = Decoder(o.ae_dims * 4, o.d_dims, o.d_mask_dims, double_res)
        #: AMP: the merge-time morph (``[merge] morph``) used by ``swap`` and the previews.
        self.morph = 1.0
        init_weights(self)

    def inter_modules(self) -> list[str]:
        """Names of the inter layers (re-initialised when pretraining ends, as DeepFaceLab does)."""
        return {"df": ["inter"], "amp": ["inter_src", "inter_dst"]}.get(self.options.base, ["inter_ab", "inter_b"])

    @staticmethod
    def morphed(src_code: torch.Tensor, dst_code: torch.Tensor, morph: float) -> torch.Tensor:
        """AMP at merge time: the first ``morph`` share of the channels from ``src_code``, the rest from ``dst_code``."""
        cut = int(round(src_code.shape[1] * min(max(morph, 0.0), 1.0)))
        return torch.cat([src_code[:, :cut], dst_code[:, cut:]], 1)

    def _amp_forward(self, src: torch.Tensor, dst: torch.Tensor, with_swap: bool) -> tuple[torch.Tensor, ...]:
        enc = self.encoder(torch.cat([src, dst]))
        src_enc, dst_enc = enc.chunk(2)
        to_src = self.inter_src(torch.cat([src_enc, dst_enc]) if with_swap else src_enc)
        to_dst = self.inter_dst(enc)
        src_as_src = to_src[: len(src)]
        src_as_dst, dst_as_dst = to_dst.chunk(2)
        if self.training:
            # Each src sample takes a random morph_factor share of its channels from inter_src
            # (DeepFaceLab's binomial mix): any prefix of the channels works at merge time.
            n, ch = src_as_src.shape[:2]
            keep = int(ch * self.options.morph_factor)
            picks = torch.rand(n, ch, device=src.device).argsort(1) < keep
            picks = picks.to(src_as_src.dtype).view(n, ch, 1, 1)
            src_code = src_as_src * picks + src_as_dst * (1 - picks)
        else:
            src_code = src_as_src
        codes = [src_code, dst_as_dst]
        if with_swap:
            codes.append(self.morphed(to_src[len(src):], dst_as_dst, self.morph))
        out, outm = self.decoder(torch.cat(codes))
        faces, masks = out.chunk(len(codes)), outm.chunk(len(codes))
        result = (faces[0], masks[0], faces[1], masks[1])
        return result + (faces[2], masks[2]) if with_swap else result

    def forward(self, src: torch.Tensor, dst: torch.Tensor, with_swap: bool = False) -> tuple[torch.Tensor, ...]:
        """(src->src, its mask, dst->dst, its mask), plus (dst->src swap, its mask) with ``with_swap``.

        Training leaves the swap out: the loss does not use it, and it would cost a third of the
        decoder's work (previews ask for it).
        """
        if self.options.base == "amp":
            return self._amp_forward(src, dst, with_swap)
        if self.options.base == "df":
            # One encoder pass over both sides: a bigger batch uses the device better.
            code = self.inter(self.encoder(torch.cat([src, dst])))
            src_code, dst_code = code.chunk(2)
            src_src, src_srcm = self.decoder_src(torch.cat([src_code, dst_code]) if with_swap else src_code)
            dst_dst, dst_dstm = self.decoder_dst(dst_code)
            if not with_swap:
                return src_src, src_srcm, dst_dst, dst_dstm
            (src_src, swap), (src_srcm, swapm) = src_src.chunk(2), src_srcm.chunk(2)
            return src_src, src_srcm, dst_dst, dst_dstm, swap, swapm
        enc = self.encoder(torch.cat([src, dst]))
        src_enc, dst_enc = enc.chunk(2)
        ab = self.inter_ab(enc)
        src_ab, dst_ab = ab.chunk(2)
        dst_b = self.inter_b(dst_enc)
        codes = [torch.cat([src_ab, src_ab], 1), torch.cat([dst_b, dst_ab], 1)]
        if with_swap:
            codes.append(torch.cat([dst_ab, dst_ab], 1))
        out, outm = self.decoder(torch.cat(codes))
        faces, masks = out.chunk(len(codes)), outm.chunk(len(codes))
        result = (faces[0], masks[0], faces[1], masks[1])
        return result + (faces[2], masks[2]) if with_swap else result

    def swap(self, dst: torch.Tensor, morph: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For merging: (dst->src face, the swap decoder's mask, the dst reconstruction's mask).

        ``morph`` (AMP only; None: ``self.morph``, 1 unless set) is how far toward the source the face goes.
        """
        if self.options.base == "amp":
            enc = self.encoder(dst)
            to_dst = self.inter_dst(enc)
            code = self.morphed(self.inter_src(enc), to_dst, self.morph if morph is None else morph)
            out, outm = self.decoder(torch.cat([code, to_dst]))
            return out[: len(dst)], outm[: len(dst)], outm[len(dst):]
        if self.options.base == "df":
            code = self.inter(self.encoder(dst))
            face, mask_src = self.decoder_src(code)
            _, mask_dst = self.decoder_dst(code)
        else:
            enc = self.encoder(dst)
            ab, b = self.inter_ab(enc), self.inter_b(enc)
            out, outm = self.decoder(torch.cat([torch.cat([ab, ab], 1), torch.cat([b, ab], 1)]))
            face, mask_dst = out[: len(dst)], outm[len(dst):]
            mask_src = outm[: len(dst)]
        return face, mask_src, mask_dst


def build_model(options: ModelOptions) -> nn.Module:
    """The network ``options`` describes: an autoencoder (df, liae, amp) or the CNN of Korshunova et al.
    (engine.train.cnn); both answer ``forward(src, dst, with_swap)`` and ``swap(dst)``."""
    options.validate()
    return FaceSwapCNN(options) if options.base == "cnn" else SwapAutoencoder(options)
