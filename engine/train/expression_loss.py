"""A differentiable expression loss (``[train] expression_power``): the swap of each dst face should
open its mouth and eyes as much as the dst face does.

A small regressor is fitted on the workspace's own crops, both sides, when a model first trains with
the loss on: its labels are each face's mouth and eye opening from the extraction's landmarks
(``engine.faces.landmarks.expression``, normalised by face width), scaled by their spread over both
sides. Its weights are saved with the model's (``expr.*`` tensors), so a resumed run reads the swaps
with the same regressor. During training it is frozen; the loss is its reading of the swap (dst -> src
path, inside the face mask) against the dst face's own labels, smooth L1. Only how open, not the
shape: identity (how wide this person's mouth is) stays the source's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: The label columns of ``expression`` the loss asks for: mouth opening and eye opening.
COLUMNS = (0, 1)
FIT_STEPS, FIT_BATCH, FIT_LR = 800, 32, 2e-3


class OpeningRegressor(nn.Module):
    """Masked face crop (N x 3 x R x R, 0..1) -> normalised mouth and eye opening (N x 2)."""

    def __init__(self, outputs: int = len(COLUMNS)) -> None:
        super().__init__()
        widths = (3, 16, 32, 64, 64)
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(0.1)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def _views(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training views: random flip, brightness, and (half of them) a blur like a young model's output."""
    n = images.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    images = images * (0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=generator))
    res = images.shape[-1]
    small = F.interpolate(images, size=(res // 2, res // 2), mode="area")
    blurred = F.interpolate(small, size=(res, res), mode="bilinear", align_corners=False)
    soft = torch.rand(n, generator=generator) < 0.5
    return torch.where(soft[:, None, None, None], blurred, images).clamp(0, 1)


def masked(raw: torch.Tensor) -> torch.Tensor:
    """Face set rows (N x 5 x R x R uint8: BGR, face mask, eyes-and-mouth mask) -> masked crops 0..1."""
    x = raw.float() / 255
    return x[:, :3] * x[:, 3:4]


class ExpressionLoss:
    """The frozen regressor and each dst face's labels (normalised), by the dst face set's index."""

    def __init__(self, regressor: OpeningRegressor, norm: torch.Tensor, dst_features: np.ndarray,
                 device: torch.device) -> None:
        self.regressor = regressor.to(device).eval().requires_grad_(False)
        for parameter in self.regressor.parameters():
            parameter.grad = None  # what the fit left
        self.norm = norm.float().cpu()  # 2 x len(COLUMNS): mean and spread of the labels when fitted
        labels = (dst_features[:, COLUMNS] - self.norm[0].numpy()) / self.norm[1].numpy()
        self.dst_labels = torch.from_numpy(labels.astype(np.float32)).to(device)

    @classmethod
    def fit(cls, faces: list, labels: list[np.ndarray], device: torch.device, seed: int,
            log: Callable[[str], None], steps: int | None = None) -> ExpressionLoss:
        """Fit on both sides' faces (``faces``: face set data, src then dst; ``labels``: their
        ``expression`` rows); a tenth held back says how well it reads openings."""
        both = np.concatenate(labels)[:, COLUMNS]
        mean, spread = both.mean(0), both.std(0) + 1e-6
        targets = torch.from_numpy(((both - mean) / spread).astype(np.float32))
        steps = steps or FIT_STEPS
        side_of = torch.cat([torch.full((int(d.shape[0]),), k) for k, d in enumerate(faces)])
        local = torch.cat([torch.arange(int(d.shape[0])) for d in faces])
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(side_of), generator=generator)
        held = order[: max(1, min(500, len(order) // 10))]
        train = order[len(held):] if len(order) > 10 else order

        def crops(index: torch.Tensor) -> torch.Tensor:
            """The faces at ``index`` (into both sides, src first), masked, in that order."""
            out = None
            for k, data in enumerate(faces):
                at = (side_of[index] == k).nonzero().flatten()
                if len(at):
                    rows = masked(data.index_select(0, local[index[at]]))
                    out = rows.new_zeros((len(index), *rows.shape[1:])) if out is None else out
                    out[at] = rows
            assert out is not None
            return out.to(device)

        torch.manual_seed(seed)
        model = OpeningRegressor().to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=FIT_LR)
        for step in range(steps):
            pick = train[torch.randint(0, len(train), (min(FIT_BATCH, len(train)),), generator=generator)]
            x = _views(crops(pick).cpu(), generator).to(device)
            loss = F.smooth_l1_loss(model(x), targets[pick].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = FIT_LR * (1 - step / steps)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            predicted = model(crops(held)).cpu().numpy()
        truth = targets[held].numpy()
        if len(held) >= 3:
            corr = [float(np.corrcoef(predicted[:, k], truth[:, k])[0, 1]) for k in range(truth.shape[1])]
            log(f"Expression loss: its reader of mouth and eye opening was fitted on {len(train)} faces; on "
                f"{len(held)} held back it reads them with correlation {corr[0]:.2f} (mouth) and {corr[1]:.2f} "
                "(eyes).")
        return cls(model, torch.from_numpy(np.stack([mean, spread])), labels[1], device)

    def tensors(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps: the regressor's weights and its labels' normalisation."""
        state = {f"expr.{k}": v.detach().cpu() for k, v in self.regressor.state_dict().items()}
        state["expr_norm"] = self.norm.clone()
        return state

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], dst_features: np.ndarray,
                     device: torch.device) -> ExpressionLoss | None:
        """The loss a checkpoint's regressor gives (None when it has none), labelling the dst faces
        of this run (the face set may have changed since)."""
        weights = {k[5:]: v for k, v in tensors.items() if k.startswith("expr.")}
        if not weights or "expr_norm" not in tensors:
            return None
        regressor = OpeningRegressor()
        regressor.load_state_dict(weights, strict=True)
        return cls(regressor, tensors["expr_norm"], dst_features, device)

    def __call__(self, swap: torch.Tensor, dst_mask: torch.Tensor, dst_index: torch.Tensor) -> torch.Tensor:
        """The loss for a batch: the swaps (N x 3 x R x R), the dst faces' masks and face set indices."""
        read = self.regressor(swap.float() * dst_mask)
        return F.smooth_l1_loss(read, self.dst_labels[dst_index.to(self.dst_labels.device)])
