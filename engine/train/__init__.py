"""Training the face-swap autoencoders (DeepFaceLab's SAEHD family, in PyTorch).

Modules: ``options`` (model and training options, presets), ``models`` (DF / LIAE networks),
``samples`` (aligned face sets in memory), ``augment`` (random warp, flip, colour, batched on the
device), ``losses``, ``gan``, ``checkpoint`` (safetensors + JSON, atomic, backups), ``trainer``
(one optimisation step), ``loop`` (the training loop with its guards and events), ``preview``,
``api`` (what merging uses: ``load_model``), ``ddp_worker`` (one rank under torchrun).
"""
