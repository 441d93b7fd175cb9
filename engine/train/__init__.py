"""Training the face-swap autoencoders (DeepFaceLab's SAEHD family, in PyTorch).

Modules: ``options`` (model and training options, presets), ``models`` (DF / LIAE networks),
``samples`` (aligned face sets in memory), ``augment`` (random warp, flip, colour, batched on the
device), ``colour`` (rct and HSV jitter in torch), ``losses``, ``gan``, ``device`` (device and
precision), ``checkpoint`` (safetensors + JSON, atomic, backups), ``history`` (the loss curve),
``perceptual`` (the VGG feature loss), ``trainer`` (one optimisation step), ``loop`` (the training loop with its guards and events),
``resolve`` (job parameters -> run configuration), ``preview``, ``signals`` (SIGTERM), ``dist`` /
``launch`` (several GPUs under torchrun; each rank runs ``engine.ddp_worker``), ``api`` (what merging uses:
``load_model``). The learning check (held-out SSIM over training) is ``engine.bench.learning``.
"""
