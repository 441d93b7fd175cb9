"""One optimisation step of the face-swap autoencoder, and the state a checkpoint needs.

``Trainer`` owns the network (and the optional GAN discriminator), their optimizers, the mixed
precision scaler and the learning-rate schedule (a linear warm-up, times ``lr_scale`` that the
non-finite-loss guard lowers). ``step`` runs forward, loss, backward and the optimizer, and returns
the two losses as device tensors without reading them back (a read is a GPU sync point; the loop
reads them in batches).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.distributed as dist

from engine.errors import UserError
from engine.train import gan
from engine.train.augment import Batch
from engine.train.checkpoint import Loaded, flatten_optimizer, unflatten_optimizer
from engine.train.cnn import CNNLoss
from engine.train.device import autocast, autocast_dtype
from engine.train.losses import reconstruction_loss
from engine.train.models import build_model
from engine.train.options import ModelOptions, TrainOptions
from engine.train.perceptual import PerceptualLoss


def make_optimizer(params, options: TrainOptions, device: torch.device) -> torch.optim.Optimizer:
    if options.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=options.lr, alpha=0.9, eps=1e-7, weight_decay=options.weight_decay)
    if options.optimizer != "adamw":
        raise UserError(f"{options.optimizer!r} is not an optimizer swapwizard knows.", "Use adamw or rmsprop.")
    return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay,
                             fused=device.type == "cuda")


class Trainer:
    def __init__(self, model_options: ModelOptions, options: TrainOptions, device: torch.device,
                 distributed: bool = False) -> None:
        self.model_options = model_options
        self.options = options
        self.device = device
        self.distributed = distributed
        self.model = build_model(model_options).to(device)
        self.channels_last = options.channels_last and device.type == "cuda"
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.disc = gan.PatchDiscriminator(model_options.resolution).to(device) if options.gan_power > 0 else None
        self.perceptual = None
        #: The cnn model's VGG-19 losses (engine.train.cnn) in place of the reconstruction loss.
        self.cnn_loss = CNNLoss(device) if model_options.base == "cnn" else None
        if options.perceptual_power > 0:
            self.perceptual = PerceptualLoss("vgg19", device)
        self.optimizer = make_optimizer(self.model.parameters(), options, device)
        self.disc_optimizer = make_optimizer(self.disc.parameters(), options, device) if self.disc else None
        self.dtype = autocast_dtype(device, options.precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.lr_scale = 1.0
        #: Discriminator weights kept from a checkpoint while the GAN is off, so they are not lost.
        self.carried: dict[str, torch.Tensor] = {}
        self.forward_model: Callable = self.model
        if distributed:
            self.forward_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if options.compile:
            self.forward_model = torch.compile(self.forward_model)

    # -- schedule ---------------------------------------------------------------------------------
    def lr_at(self, iteration: int) -> float:
        warm = min(1.0, (iteration + 1) / max(1, self.options.warmup_iters))
        return self.options.lr * self.lr_scale * warm

    def _set_lr(self, iteration: int) -> None:
        lr = self.lr_at(iteration)
        for opt in (self.optimizer, self.disc_optimizer):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr

    # -- one step -----------------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the memory layout the network runs in (channels-last on CUDA when asked)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def losses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        o, res = self.options, self.model_options.resolution
        if self.cnn_loss is not None:
            return self._cnn_losses(batch)
        with autocast(self.device, self.dtype):
            out = self.forward_model(self.prepare(batch.src_in), self.prepare(batch.dst_in))
        src_src, src_srcm, dst_dst, dst_dstm = out
        loss_src = reconstruction_loss(src_src, batch.src_target, src_srcm, batch.src_mask, batch.src_em,
                                       res, o.masked_training, o.eyes_mouth_prio)
        loss_dst = reconstruction_loss(dst_dst, batch.dst_target, dst_dstm, batch.dst_mask, batch.dst_em,
                                       res, o.masked_training, o.eyes_mouth_prio)
        if self.perceptual is not None:
            loss_src = loss_src + o.perceptual_power * self.perceptual(src_src, batch.src_target, batch.src_mask)
            loss_dst = loss_dst + o.perceptual_power * self.perceptual(dst_dst, batch.dst_target, batch.dst_mask)
        return loss_src, loss_dst, out

    def _cnn_losses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """The cnn model: its swap of the (unwarped) dst faces styled after the batch's src faces;
        ``out[0]`` is the swap, so the GAN (if on) judges it against real src faces."""
        dst = self.prepare(batch.dst_target)
        with autocast(self.device, self.dtype):
            swapped = self.forward_model(dst[:0], dst)[2]  # no src faces through the network: only the swap
        loss_style, loss_content = self.cnn_loss(swapped.float(), batch.dst_target, batch.src_target)
        ones = torch.ones_like(swapped[:, :1])
        return loss_style, loss_content, (swapped, ones, swapped, ones)

    def step(self, batch: Batch, iteration: int, poison: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step; ``poison`` makes the loss NaN (the forced-NaN test switch)."""
        self._set_lr(iteration)
        loss_src, loss_dst, out = self.losses(batch)
        total = loss_src + loss_dst
        fake_src = None
        if self.disc is not None:
            weight = batch.src_mask if self.options.masked_training else 1.0
            fake_src = out[0].float() * weight
            with autocast(self.device, self.dtype):
                total = total + self.options.gan_power * gan.generator_loss(self.disc, fake_src)
        if poison:
            total = total * float("nan")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.options.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.clip_grad)
        self.scaler.step(self.optimizer)
        if self.disc is not None and fake_src is not None:
            self._disc_step(batch, fake_src)
        self.scaler.update()
        return loss_src.detach(), loss_dst.detach()

    def _disc_step(self, batch: Batch, fake_src: torch.Tensor) -> None:
        weight = batch.src_mask if self.options.masked_training else 1.0
        self.disc_optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.dtype):
            loss = gan.discriminator_loss(self.disc, batch.src_target * weight, fake_src)
        self.scaler.scale(loss).backward()
        if self.distributed:
            # The discriminator is not wrapped in DDP (it runs twice per step); average its gradients here.
            world = dist.get_world_size()
            for p in self.disc.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(world)
        self.scaler.step(self.disc_optimizer)

    # -- checkpoint state ---------------------------------------------------------------------------
    def tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
        """(model tensors, optimizer tensors, JSON state) for a checkpoint."""
        model = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.disc is not None:
            model.update({f"disc.{k}": v for k, v in self.disc.state_dict().items()})
        else:
            model.update(self.carried)
        opt_tensors, structures = {}, {}
        for name, opt in (("model", self.optimizer), ("disc", self.disc_optimizer)):
            if opt is not None:
                tensors, structures[name] = flatten_optimizer(name, opt)
                opt_tensors.update(tensors)
        state = {"model_options": dataclasses.asdict(self.model_options),
                 "train_options": dataclasses.asdict(self.options),
                 "optimizers": structures, "optimizer_kind": self.options.optimizer,
                 "lr_scale": self.lr_scale, "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None}
        return model, opt_tensors, state

    def load(self, loaded: Loaded, log: Callable[[str], None], with_optimizer: bool = True) -> None:
        """Restore weights (strictly: a mismatch is an error, never a partial re-initialisation)."""
        weights = {k[6:]: v for k, v in loaded.model.items() if k.startswith("model.")}
        try:
            self.model.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise UserError(f"The checkpoint {loaded.path.name} does not fit this model's shape.",
                            f"Train it with its own options, or start a new model with --model NAME ({str(exc)[:200]}).") from None
        disc = {k[5:]: v for k, v in loaded.model.items() if k.startswith("disc.")}
        if self.disc is not None and disc:
            self.disc.load_state_dict(disc, strict=True)
        elif self.disc is not None:
            log("The GAN discriminator starts fresh: this model had no GAN training yet.")
        else:
            self.carried = {f"disc.{k}": v for k, v in disc.items()}
        self.lr_scale = float(loaded.state.get("lr_scale", 1.0))
        if not with_optimizer:
            return
        structures = loaded.state.get("optimizers", {})
        if loaded.state.get("optimizer_kind") != self.options.optimizer:
            log(f"The optimizer changed to {self.options.optimizer}: its state starts fresh (the weights are kept).")
            return
        for name, opt in (("model", self.optimizer), ("disc", self.disc_optimizer)):
            if opt is not None and name in structures:
                # Keep this run's implementation flags (fused on a GPU, not on the CPU) and weight decay.
                keep = [{k: g[k] for k in ("fused", "foreach", "capturable", "differentiable", "weight_decay")
                         if k in g} for g in opt.param_groups]
                opt.load_state_dict(unflatten_optimizer(structures[name], loaded.optimizer))
                for group, flags in zip(opt.param_groups, keep):
                    group.update(flags)
        if loaded.state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(loaded.state["scaler"])
