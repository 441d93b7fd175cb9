"""Every setting of swapwizard, declared once: name, type, default, range or choices, help, wizard key.

A *setting* is a key of a ``workspace.toml`` section (``[merge] erode``) that a job reads, a CLI option
can override and the wizard may show. Everything else is derived from the declarations below:

- the values a job works with: ``values_class("merge")`` is a dataclass holding every ``[merge]`` key
  with its default, checked on construction (``MergeSettings`` is one);
- a job's parameters: ``overrides_class("merge")`` holds the same keys, each ``None`` ("the workspace's
  value") unless the request gives one, checked on construction, so the engine refuses a bad value
  when the job is submitted (before anything runs or is saved);
- the merger: ``layered("merge", ("workspace.toml", toml), ("the request", given))`` starts from the
  defaults and lays each source over the last (template defaults < workspace.toml < model's last run <
  request), checking each value and naming the source in its error;
- the CLI options (``tui.cli.options``), the wizard's settings form and its keys, and the documented
  ``workspace_template/workspace.toml`` (``python -m engine.settings`` prints it; a test keeps the
  file equal to it).

How to add a setting (see docs/settings.md): append one ``Setting(...)`` to ``SETTINGS`` below, in its
section, then read it where it is used (``settings.erode`` in the merge code, ``ws.setting(...)``...).
That is all: the job parameter, CLI option, template line and (with ``label``/``keys``) the wizard's
form entry follow from the declaration. Code that only reads a setting uses ``settings.read(ws, "section")``.

Errors are one ``UserError`` format for every section and source::

    [train] batch_size = 1000000000 (the request) is out of range.   hint: Use 1 to 1024.

This module sits in the base layer: it imports only the standard library, ``engine.errors`` and
``engine.values`` (the one check of a value against a declaration, which ``Setting.check`` calls).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import UserError
from engine.values import check_value, show

#: How a setting appears in workspace_template/workspace.toml: "set" (key = default) or "commented"
#: (``# key = default``: left to a preset or the model's last run unless the user sets it).
TEMPLATE_MODES = ("set", "commented")


@dataclass(frozen=True)
class Setting:
    """One setting: the single place its name, type, default, limits, help and wizard key are written."""

    section: str
    key: str
    type: type  # bool, int, float or str
    default: Any
    #: One or two sentences: the workspace.toml comment and the CLI option's help.
    help: str
    #: The allowed values (str settings); empty: any value of the type.
    choices: tuple[Any, ...] = ()
    #: Inclusive (low, high) for numbers; None: unbounded.
    range: tuple[float, float] | None = None
    #: A subset of the section (merge: "face" changes a preview frame, "export" only the video;
    #: train: "model" fixed at creation, "options" per run, "run" the loop's schedule, "job").
    group: str = ""
    #: CLI flags; empty: ``--key-with-dashes`` (booleans get ``--no-...`` too). ``cli=False``: none.
    flags: tuple[str, ...] = ()
    cli: bool = True
    #: The wizard's settings form: its label (empty: not in the form), the two keys that lower / raise
    #: it (or cycle choices back / forward; "" none) and the step of a number.
    label: str = ""
    keys: str = ""
    step: float | None = None
    template: str = "set"
    #: What the value reaches beyond the workspace's own numbers: "path" (names a file: in an unpacked
    #: archive only a path inside the workspace stays) or "url" (contacts a server: never kept from an
    #: archive). engine.pack drops the others from an archive's workspace.toml, saying so.
    reaches: str = ""
    #: A text setting's values must match this (``re.fullmatch``); ``pattern_words`` says it to people.
    pattern: str = ""
    pattern_words: str = ""

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"

    @property
    def option(self) -> str:
        """The main CLI flag."""
        return self.flags[0] if self.flags else "--" + self.key.replace("_", "-")

    def check(self, value: Any, source: str = "") -> Any:
        """``value`` if it suits this setting (an int is taken for a float), else ``UserError`` (engine.values)."""
        return check_value(self.name, value, self.type, source=source,
                           hint=f"For example: {self.key} = {toml_value(self.default)}.", choices=self.choices,
                           range=self.range, range_words=self.range_words() if self.range else "",
                           pattern=self.pattern, pattern_words=self.pattern_words)

    def range_words(self) -> str:
        """The range as people read it: ``0.0 to 1.0`` for a float, ``0 to 4294967295`` for an int."""
        assert self.range is not None
        show_one = (lambda x: repr(float(x))) if self.type is float else show
        return f"{show_one(self.range[0])} to {show_one(self.range[1])}"


def toml_value(value: Any) -> str:
    """``value`` written as TOML (bool, int, float, str)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


# ------------------------------------------------------------------------------------------------
# The declarations. Order within a section is the order of the template, the CLI help and the form.
# ------------------------------------------------------------------------------------------------

S = Setting
FACE_TYPES = ("half", "mid_full", "full", "whole_face", "head")
MASK_MODES = ("auto", "hull", "learned-prd", "learned-dst", "learned-prd*learned-dst", "hull*learned-prd",
              "hull*learned-dst", "hull*learned-prd*learned-dst",
              # the segmenter's visible face (engine/segment): occluders stay in front
              "segment", "hull*segment", "learned-prd*segment", "hull*learned-prd*segment")
COLOUR_MODES = ("none", "rct", "lct", "mkl", "idt", "sot")
BLEND_MODES = ("overlay", "seamless", "histogram")
#: [merge] mouth (engine.merge.mouth).
MOUTH_MODES = ("swap", "follow", "destination", "auto")
#: [merge] runtime (engine.interop.load).
MERGE_RUNTIMES = ("torch", "onnx", "auto")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
#: A model's name (its folder under model/): engine.workspace checks every name against it too.
MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
TRAIN_PRESETS = ("saehd", "quick", "tiny", "amp", "cnn")
IMAGE_MODES = ("auto", "kitty", "sixel", "blocks")

#: The comment at the head of each section of the template.
SECTION_HELP = {
    "extract": "Written back by `swapwizard extract` (and the wizard) with the values it used; change them here or\n"
               "with the command's options. A change makes the next extraction redo that side.",
    "train": "Settings for `swapwizard train WS` (and the wizard's training step). A key left out (commented)\n"
             "comes from the model's previous run, else from the preset; a command-line option wins over this.",
    "merge": "Written back by `swapwizard merge` (and the wizard) with the values it used; each is also an option\n"
             "of `swapwizard merge`. Sizes are in pixels of a 256-pixel face crop (scaled to the model's size).",
    "segment": "The segmenter (swapwizard segment WS): a small network that learns the visible face of this workspace's "
               "people, so that hands, microphones, hair and glasses stay in front of the swapped face (merge --mask "
               "hull*segment). Trained on the aligned faces with automatic labels and synthetic occluders; masks you paint "
               "(swapwizard masks import) outrank them.",
    "quality": "Held-out faces: quality measured on frames the model never saw (swapwizard quality / compare).",
    "identity": "Who each face is (dlib's face descriptor): tracks linked into people at extraction, the reference\n"
                "photo, check's face-set purity, sort --by identity and the identity figures of quality.",
    "engine": "The workspace's engine process (its fixed limits: docs/security.md).",
    "wizard": "How the wizard shows this workspace (read when it opens it from the command line).",
    "c2pa": "Content Credentials: every file swapwizard writes carries a signed C2PA manifest saying it is "
            "synthetic (swapwizard verify FILE reads it). Without cert and key, a local identity is created once in "
            "~/.config/swapwizard/c2pa/; verifiers show it as untrusted until you give a certificate from a trusted CA.",
}

SETTINGS: tuple[Setting, ...] = (
    # -- [workspace] and [consent]: recorded by swapwizard itself, not options ------------------------
    S("workspace", "version", int, 1, "Format version of this workspace (swapwizard refuses to open newer ones it "
      "does not understand).", range=(1, 1_000), cli=False),
    S("workspace", "share", str, "private", "Who besides you may read this workspace: private (folders 0700, files "
      "0600: only you) or group (0750 / 0640: your group reads, nobody writes). Applies to what is created "
      "from now on, and to this folder; see docs/security.md.", choices=("private", "group"), cli=False),
    S("consent", "confirmed", bool, False, "Set by the wizard (or `swapwizard consent WS`) when you confirm that "
      "you have permission from the people whose faces appear in the source and destination footage.", cli=False),
    S("consent", "date", str, "", "When it was confirmed (ISO 8601).", cli=False),
    S("consent", "confirmed_by", str, "", "Who confirmed it.", cli=False),

    # -- [extract] ---------------------------------------------------------------------------------
    S("extract", "face_type", str, "whole_face",
      "How much of the head the aligned crops hold: half (brows to lips), mid_full, full (brows to chin), "
      "whole_face (forehead to chin), head (the whole head with hair).", choices=FACE_TYPES),
    S("extract", "size", int, 512, "Aligned crop size in pixels. Training at a lower resolution scales these down.",
      range=(64, 2048)),
    S("extract", "crop_format", str, "jpg", "Crop files: jpg (fast, small) or png (lossless, about 20 times "
      "slower to write).", choices=("jpg", "png")),
    S("extract", "jpeg_quality", int, 95, "JPEG quality of jpg crops (1-100).", range=(1, 100)),
    S("extract", "detect_every", int, 10, "Run the face detector every N frames; faces already found are "
      "followed by their landmarks between.", range=(1, 1000)),
    S("extract", "min_confidence", float, 0.5, "Detector confidence (0-1) a face needs.", range=(0.0, 1.0)),
    S("extract", "min_presence", float, 0.1, "The landmark model's face-presence score (0-1) a face needs.",
      range=(0.0, 1.0)),
    S("extract", "rotate_retry", bool, True, "When a frame has no face, look again with the frame turned by 90, "
      "270 and 180 degrees."),
    S("extract", "small_faces", bool, False, "Also look for small, distant faces (the detector runs on 2x2 tiles "
      "too: about 5 times the detection cost). For wide shots and crowds; a close-up does not need it."),
    S("extract", "smooth", bool, True, "Temporal smoothing of the landmarks (One Euro filter): less shimmer in "
      "the swapped face."),
    S("extract", "min_cutoff", float, 1.0, "Smoothing cut-off in Hz: lower smooths a still face more.",
      range=(0.001, 100.0)),
    S("extract", "beta", float, 10.0, "Smoothing speed coefficient: higher follows fast motion more closely.",
      range=(0.0, 1000.0)),
    S("extract", "hands", bool, True, "Look for hands near the faces (mediapipe's hand models) and record each one "
      "as an occluder of the face it covers (the segmenter leaves it out of the face)."),
    S("extract", "hands_every", int, 5, "Look for hands every N frames while none is near a face (every frame while "
      "one is).", range=(1, 1000)),
    S("extract", "write_frames", bool, False, "Also save every frame as PNG in data_<side>/frames/ (large: about "
      "2 MB a 1080p frame)."),
    S("extract", "workers", int, 0, "Worker processes extracting a long video in segments, joined in frame order "
      "(tracks stitched across the borders). 0 = automatic: one per two cores, as many as the memory holds, up "
      "to 16; clips under 1000 frames use one.", range=(0, 64)),

    # -- [train] -----------------------------------------------------------------------------------
    S("train", "preset", str, "saehd", "The preset a new model is created from: saehd, quick, tiny, amp or cnn "
      "(each one's shape, batch size and target are declared in engine/train/options.py and listed in the "
      "docs' settings reference). The [train] defaults below are saehd's.",
      choices=TRAIN_PRESETS, group="job", template="commented"),
    S("train", "model", str, "default", "Model name: several models can live in one workspace (model/<name>/).",
      group="job", template="commented", pattern=MODEL_NAME, pattern_words="model name (letters, digits, '-', "
      "'_' and '.', starting with a letter or digit; at most 64)"),
    S("train", "iters", int, 100_000, "Target iteration (absolute); 0 trains until stopped. Unset: the preset's "
      "target.", range=(0, 100_000_000), group="job", template="commented"),
    S("train", "until", str, "target", "target: train to the target iteration; good: stop as soon as the model is "
      "good by the verdicts (identity, mouth and eyes follow, held-out SSIM no longer rising) or at a plateau, "
      "with the target as the ceiling (docs/until-good.md). swapwizard run uses good.", choices=("target", "good"),
      group="job", template="commented"),
    S("train", "time_limit", str, "", "Stop after this much training time, saved like any stop: 2h, 90m, 1h30m; "
      "empty: no limit.", group="job", flags=("--for",), template="commented"),
    S("train", "device", str, "auto", "auto (first GPU, else CPU), cpu, cuda or cuda:N; CUDA_VISIBLE_DEVICES "
      "applies.", group="run", template="commented"),
    S("train", "arch", str, "liae-ud", "New models only: df, liae or amp (with -u, -d or -ud), or cnn (the "
      "multi-scale CNN of Korshunova et al. 2017; needs the VGG-19 weights).", group="model", template="commented"),
    S("train", "resolution", int, 128, "New models only: face size in pixels (a multiple of 16, or of 32 for -d).",
      range=(16, 2048), group="model", template="commented"),
    S("train", "ae_dims", int, 256, "New models only: autoencoder dims.", range=(1, 4096), group="model",
      template="commented"),
    S("train", "e_dims", int, 64, "New models only: encoder dims.", range=(1, 4096), group="model",
      template="commented"),
    S("train", "d_dims", int, 64, "New models only: decoder dims.", range=(1, 4096), group="model",
      template="commented"),
    S("train", "d_mask_dims", int, 22, "New models only: mask decoder dims.", range=(1, 4096), group="model",
      template="commented"),
    S("train", "morph_factor", float, 0.5, "New amp models only: the share of the code taken from the source's "
      "inter while training (DeepFaceLab's AMP morph factor, 0.1-0.5).", range=(0.1, 0.5), group="model",
      template="commented"),
    S("train", "batch_size", int, 16, "Batch size per GPU; halved automatically when the GPU runs out of memory.",
      range=(1, 1024), group="options", flags=("--batch",), template="commented"),
    S("train", "lr", float, 5e-5, "Learning rate (AdamW); halved automatically after a non-finite loss.",
      range=(1e-9, 1.0), group="options", template="commented"),
    S("train", "optimizer", str, "adamw", "adamw or rmsprop.", choices=("adamw", "rmsprop"), group="options",
      template="commented"),
    S("train", "weight_decay", float, 0.0, "Optimizer weight decay.", range=(0.0, 1.0), group="options",
      cli=False, template="commented"),
    S("train", "warmup_iters", int, 100, "Linear learning-rate warm-up over this many iterations.",
      range=(0, 1_000_000), group="options", cli=False, template="commented"),
    S("train", "clip_grad", float, 0.0, "Clip the gradient norm to this; 0 = off.", range=(0.0, 1e6),
      group="options", template="commented"),
    S("train", "masked_training", bool, True, "Learn only inside the (blurred) face mask.", group="options",
      flags=("--masked",), template="commented"),
    S("train", "eyes_mouth_prio", bool, True, "Weight eyes and mouth more (from the landmarks).", group="options",
      flags=("--eyes-mouth",), template="commented"),
    S("train", "gan_power", float, 0.0, "GAN patch discriminator weight; 0.1 sharpens detail late in training.",
      range=(0.0, 10.0), group="options", template="commented"),
    S("train", "perceptual_power", float, 0.0, "VGG19 perceptual loss weight (0 = off; needs the weights in the "
      "torch cache).", range=(0.0, 100.0), group="options", template="commented"),
    S("train", "random_warp", bool, True, "Random grid warp of the inputs (turn off for a final polish).",
      group="options", template="commented"),
    S("train", "flip_src", bool, False, "Random horizontal flip of src faces.", group="options",
      template="commented"),
    S("train", "flip_dst", bool, True, "Random horizontal flip of dst faces.", group="options",
      template="commented"),
    S("train", "hsv_power", float, 0.0, "Random hue/saturation/value of src faces; 0.05-0.1 is gentle.",
      range=(0.0, 1.0), group="options", template="commented"),
    S("train", "colour_transfer", str, "none", "rct: src samples take the colours of random dst samples.",
      choices=("none", "rct"), group="options", flags=("--colour-transfer", "--ct"), template="commented"),
    S("train", "src_sampling", str, "shuffle", "shuffle (every src face once per epoch) or expression (each dst "
      "face in a batch gets a src face of like mouth/eye opening and pose: engine.train.augment; the tiny "
      "and cnn presets' choice).",
      choices=("shuffle", "expression"), group="options", template="commented"),
    S("train", "precision", str, "auto", "auto (bf16 where the GPU has it, else fp16; fp32 on CPU), fp32, bf16, "
      "fp16.", choices=("auto", "fp32", "bf16", "fp16"), group="options", template="commented"),
    S("train", "channels_last", bool, True, "Channels-last memory layout (CUDA only).", group="options", cli=False,
      template="commented"),
    S("train", "compile", bool, False, "torch.compile the model (GPU; slower start, faster steps).",
      group="options", template="commented"),
    S("train", "save_every_min", float, 10.0, "Minutes between checkpoints (also saved on every stop).",
      range=(0.0, 100_000.0), group="run", flags=("--save-every",), template="commented"),
    S("train", "save_every_iters", int, 0, "Also save every this many iterations (0 = only by time).",
      range=(0, 100_000_000), group="run", cli=False, template="commented"),
    S("train", "preview_every_min", float, 5.0, "Minutes between preview images (also on request: swapwizard "
      "train-preview).", range=(0.0, 100_000.0), group="run", flags=("--preview-every",), template="commented"),
    S("train", "backup_every_min", float, 60.0, "Minutes between kept backups (model/<name>/backups/).",
      range=(0.0, 1_000_000.0), group="run", flags=("--backup-every",), template="commented"),
    S("train", "backups_keep", int, 24, "How many backups to keep (each a full checkpoint: ~1 GB for saehd).",
      range=(0, 10_000), group="run", flags=("--backups",), template="commented"),
    S("train", "sync_every", int, 4, "Read the losses back from the GPU every this many iterations.",
      range=(1, 10_000), group="run", cli=False, template="commented"),
    S("train", "seed", int, 0, "Random seed of a new run.", range=(0, 2**32 - 1), group="run",
      template="commented"),
    S("train", "threads", int, 0, "CPU threads for torch; 0 = all cores.", range=(0, 4096), group="run",
      template="commented"),

    # -- [merge] -----------------------------------------------------------------------------------
    S("merge", "mask", str, "auto", "Mask that cuts the new face out: auto (hull*segment when the destination's "
      "faces have something in front of them, found at extraction or by the segmenter, which is then fine-tuned "
      "first; else hull), hull (landmark outline), learned-prd (learned with the new face), learned-dst (learned "
      "from the destination), segment (the segmenter's visible face), or a product such as hull*segment.", choices=MASK_MODES, group="face", label="Mask", keys="xX"),
    S("merge", "erode", int, 0, "Shrink (positive) or grow (negative) the mask, px of a 256 crop.",
      range=(-128, 128), group="face", label="Erode", keys="de", step=2),
    S("merge", "blur", int, 16, "Soften the mask edge, px of a 256 crop.", range=(0, 256), group="face",
      label="Blur", keys="fr", step=2),
    S("merge", "edge_fade", int, 12, "Fade the mask out before the crop edge, px of a 256 crop.", range=(0, 128),
      group="face", label="Edge fade", keys="hy", step=2),
    S("merge", "colour", str, "rct", "Colour transfer toward the destination's skin: none, rct, lct, mkl, idt, sot "
      "(idt and sot match the whole colour distribution and are slower).", choices=COLOUR_MODES, group="face",
      flags=("--colour", "--color"), label="Colour", keys="cC"),
    S("merge", "blend", str, "overlay", "Blend: overlay (alpha), seamless (Poisson), histogram (match the "
      "histogram, then overlay).", choices=BLEND_MODES, group="face", label="Blend", keys="vV"),
    S("merge", "face_scale", float, 1.0, "Scale the new face about its centre (1 = as predicted).",
      range=(0.5, 1.5), group="face", label="Face scale", keys="ju", step=0.02),
    S("merge", "sharpen", float, 0.0, "Sharpen the new face (0 = off, 1 = strong).", range=(0.0, 2.0),
      group="face", label="Sharpen", keys="ki", step=0.05),
    S("merge", "morph", float, 1.0, "AMP models: how far toward the source the face goes (0 = the destination's "
      "own face, 1 = the source's; other models ignore it).", range=(0.0, 1.0), group="face", label="Morph (amp)",
      keys="lo", step=0.05),
    S("merge", "mouth", str, "auto", "Mouth: swap (the model's own), follow (the swap's own lips moved to the "
      "destination's mouth shape, the destination's teeth in the opening: the lip sync is kept, the lips stay the "
      "source's), destination (the destination's whole mouth region, feathered and colour-matched, over the swap), "
      "auto (follow where the model's latest quality says its mouth does not follow; the merge says which).",
      choices=MOUTH_MODES,
      group="face", label="Mouth", keys="tT"),
    S("merge", "crf", int, 18, "Video quality, x264 CRF (lower is better and bigger; 18 looks lossless).",
      range=(0, 51), group="export", label="Quality (CRF)", step=1),
    S("merge", "preset", str, "veryfast", "x264 speed preset: faster presets encode quicker, bigger files.",
      choices=X264_PRESETS, group="export", flags=("--encoder-preset",), label="Encoder speed"),
    S("merge", "audio", str, "", "Audio: \"\" copies the destination's (kept in sync); a file path uses that "
      "file; \"none\" leaves it silent.", group="export", reaches="path"),
    S("merge", "mark", bool, False, "Burn a visible \"SYNTHETIC - face-swapped\" into the corner (every output "
      "is labelled as synthetic media in its metadata anyway).", group="face", label="Visible mark"),
    S("merge", "png", bool, False, "Also write output/frames/NNNNNN.png (labelled).", group="export"),
    S("merge", "mask_video", bool, False, "Also write output/result_mask.mp4 (the mask per frame).",
      group="export"),
    S("merge", "workers", int, 0, "Worker processes merging a long destination, each a range of frames written "
      "as its own segments (the result is the same frames). 0 = automatic: one per two cores, as many as the "
      "memory holds, up to 16; clips under 500 frames use one.", range=(0, 64), group="export", label="Workers",
      step=1),
    S("merge", "runtime", str, "torch", "What runs the model while merging: torch (PyTorch), onnx (ONNX Runtime, "
      "the graph export-model writes) or auto (ONNX Runtime where swapwizard bench merge --runtime measured it "
      "faster on this machine for the model's device, architecture and size, else PyTorch). Imported .dfm and "
      ".onnx models always run on ONNX Runtime.", choices=MERGE_RUNTIMES, group="face"),

    # -- [segment] (engine/segment) -----------------------------------------------------------------
    S("segment", "resolution", int, 128, "Segmenter input size in pixels (a multiple of 16); a new size trains a "
      "new segmenter.", range=(32, 512)),
    S("segment", "iters", int, 1000, "Training iterations of a segmenter learnt from scratch (minutes on a CPU at "
      "128 px).", range=(1, 10_000_000)),
    S("segment", "start", str, "generic", "generic: fine-tune the segmenter shipped with swapwizard (trained on other "
      "people's faces) on this workspace's faces for finetune_iters; scratch: learn from nothing for iters.",
      choices=("generic", "scratch")),
    S("segment", "finetune_iters", int, 200, "Iterations of fine-tuning the shipped segmenter (start = generic).",
      range=(1, 10_000_000)),
    S("segment", "batch_size", int, 16, "Faces per training step.", range=(1, 1024), flags=("--batch",)),
    S("segment", "width", int, 8, "Channels of the U-Net's first level (8: about 0.2 M parameters).",
      range=(2, 64)),
    S("segment", "device", str, "auto", "auto (first GPU, else CPU), cpu, cuda or cuda:N."),
    S("segment", "threads", int, 0, "CPU threads for torch; 0 = all cores.", range=(0, 4096)),

    # -- [quality] ---------------------------------------------------------------------------------
    S("quality", "holdout", float, 0.1, "Hold out the last fraction of each side's faces from training. "
      "0 trains on everything (quality is then measured on training frames, which flatters the model). "
      "Recorded in data_<side>/holdout.json.", range=(0.0, 0.5), cli=False),
    S("quality", "every_iters", int, 500, "The trainer measures the held-out faces (SSIM/PSNR, expression, "
      "identity until it holds) every this many iterations, more often while the run is young (each time the "
      "iteration grew 8 %, at least a fifth of this apart), and at every save, into "
      "model/<name>/quality_history.json. 0 = only when you run quality or compare.", range=(0, 100_000_000),
      cli=False),

    # -- [identity] (engine/faces/identity.py) ------------------------------------------------------
    S("identity", "threshold", float, 0.6, "Identity distance above which two faces are taken for different "
      "people (dlib's 0.6; lower is stricter). Linking tracks into people uses the smaller of this and 0.5.",
      range=(0.2, 1.2), cli=False),

    # -- [c2pa] (engine/media/credentials.py; --c2pa-cert/--c2pa-key/--no-c2pa are options of merge, run
    # and compare) ----------------------------------------------------------------------------------
    S("c2pa", "cert", str, "", "Signing certificate chain (PEM, the signing certificate first), relative to the "
      "workspace or absolute. Empty: the local identity.", cli=False, reaches="path"),
    S("c2pa", "key", str, "", "The signing certificate's private key (PEM, no passphrase).", cli=False,
      reaches="path"),
    S("c2pa", "timestamp_url", str, "", "RFC 3161 time-stamp server that dates each signature; empty: none "
      "(a server without internet cannot reach one, and signing would fail).", cli=False, reaches="url"),
    S("c2pa", "consent_date", bool, True, "Put the date of this workspace's consent record in the credentials.",
      cli=False),
    S("c2pa", "model_info", bool, True, "Put the model's name and iteration in the credentials.", cli=False),

    # -- [engine] (engine/server) ----------------------------------------------------------------------
    S("engine", "idle_exit_min", float, 60.0, "The engine stops after this many minutes with no job running or "
      "queued and no client connected (the next command starts it again). 0 = never.", range=(0.0, 10_080.0),
      cli=False),
    S("engine", "connection_idle_s", float, 300.0, "A connection that sends no request for this many seconds is "
      "closed, unless it follows events: that one is closed when it takes nothing sent to it for that long "
      "(one that has not said hello gets at most 10 s).",
      range=(1.0, 86_400.0), cli=False),
    S("engine", "events_max_mb", float, 64.0, "The event log (.swapwizard/events.jsonl) is compacted when it grows "
      "past this many MB: old metrics thinned, finished jobs summarised (their outcomes kept).",
      range=(1.0, 100_000.0), cli=False),

    # -- [wizard] (tui/graphics.py) ---------------------------------------------------------------------
    S("wizard", "images", str, "auto", "How the wizard draws pictures: auto (ask the terminal), kitty (the kitty "
      "graphics protocol: kitty, Ghostty), sixel (WezTerm, foot, iTerm2, Windows Terminal 1.22+, VS Code, xterm -ti "
      "vt340) or blocks (half-block characters: any terminal). The environment variable SWAPWIZARD_IMAGES wins.",
      choices=IMAGE_MODES, cli=False),
)

_BY_KEY: dict[tuple[str, str], Setting] = {}
for _s in SETTINGS:
    assert (_s.section, _s.key) not in _BY_KEY, f"{_s.name} is declared twice"
    assert _s.template in TEMPLATE_MODES, _s.name
    _s.check(_s.default)  # a default must pass its own checks
    _BY_KEY[(_s.section, _s.key)] = _s


# ------------------------------------------------------------------------------------------------
# Looking settings up
# ------------------------------------------------------------------------------------------------

def of(section: str, group: str | Iterable[str] | None = None) -> tuple[Setting, ...]:
    """The settings of ``section`` in declaration order (only those of ``group``, one name or several)."""
    groups = None if group is None else {group} if isinstance(group, str) else set(group)
    return tuple(s for s in SETTINGS if s.section == section and (groups is None or s.group in groups))


def keys(section: str, group: str | Iterable[str] | None = None) -> tuple[str, ...]:
    return tuple(s.key for s in of(section, group))


def get(section: str, key: str) -> Setting:
    try:
        return _BY_KEY[(section, key)]
    except KeyError:
        known = ", ".join(keys(section)) or "none"
        raise UserError(f"There is no setting [{section}] {key}.", f"Settings of [{section}]: {known}.") from None


def sections() -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.section for s in SETTINGS))


def defaults(section: str, group: str | Iterable[str] | None = None) -> dict[str, Any]:
    return {s.key: s.default for s in of(section, group)}


# ------------------------------------------------------------------------------------------------
# The merger
# ------------------------------------------------------------------------------------------------

def layered(section: str, *layers: tuple[str, Mapping[str, Any] | None], group: str | Iterable[str] | None = None,
            base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values of ``section`` (or of its ``group``): ``base`` (default: the declared defaults) with each
    ``(source, values)`` layer laid over the one before, lowest first.

    A ``None`` value or an unknown key in a layer leaves the value below (workspace.toml may hold keys of a
    newer version; a job's parameters hold keys that are not settings). Every value taken is checked
    against its declaration; the error names the setting and ``source``.
    """
    chosen = of(section, group)
    values = dict(base) if base is not None else {s.key: s.default for s in chosen}
    for source, layer in layers:
        for s in chosen:
            value = (layer or {}).get(s.key)
            if value is not None:
                values[s.key] = s.check(value, source)
    return values


def read(ws: Any, section: str, *layers: tuple[str, Mapping[str, Any] | None],
         group: str | Iterable[str] | None = None) -> dict[str, Any]:
    """The workspace's ``[section]`` (defaults < workspace.toml < ``layers``), checked: how code reads a
    setting, e.g. ``settings.read(ws, "quality")["holdout"]``. ``ws`` is anything with ``section(name)``."""
    return layered(section, ("workspace.toml", ws.section(section)), *layers, group=group)


def check_values(section: str, values: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """``values`` with each known, non-None key checked (and an int taken for a float)."""
    return {key: (get(section, key).check(value, source) if value is not None and (section, key) in _BY_KEY
                  else value) for key, value in values.items()}


# ------------------------------------------------------------------------------------------------
# Types derived from the declarations
# ------------------------------------------------------------------------------------------------

_CLASSES: dict[tuple, type] = {}


def _check_fields(self: Any, section: str, source: str) -> None:
    for f in dataclasses.fields(self):
        value = getattr(self, f.name)
        if value is not None and (section, f.name) in _BY_KEY:
            object.__setattr__(self, f.name, _BY_KEY[(section, f.name)].check(value, source))


def values_class(name: str, section: str, group: str | Iterable[str] | None = None,
                 module: str | None = None) -> type:
    """A dataclass of the settings of ``section`` (``group``) with their defaults, checked when made.

    It has ``to_dict()`` and ``replace(**changes)`` (None changes are ignored; unknown names refused).
    Subclass it to add fields or methods that are not settings.
    """
    cache = (name, section, None if group is None else tuple(sorted([group] if isinstance(group, str) else group)))
    if cache in _CLASSES:
        return _CLASSES[cache]
    chosen = of(section, group)

    def __post_init__(self: Any) -> None:  # noqa: N807 - the dataclass hook
        _check_fields(self, section, "")

    def to_dict(self: Any) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self: Any, **changes: Any) -> Any:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UserError(f"Unknown [{section}] setting(s): {', '.join(unknown)}.", f"Known: {', '.join(sorted(known))}.")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def check(self: Any) -> Any:
        _check_fields(self, section, "")
        return self

    cls = dataclasses.make_dataclass(
        name, [(s.key, s.type, dataclasses.field(default=s.default)) for s in chosen],
        namespace={"__post_init__": __post_init__, "to_dict": to_dict, "replace": replace, "check": check,
                   "__doc__": f"The [{section}] settings (declared in engine.settings)."},
    )
    cls.__module__ = module or __name__
    _CLASSES[cache] = cls
    return cls


def overrides_class(name: str, section: str, group: str | Iterable[str] | None = None,
                    module: str | None = None, source: str = "the request", only: Iterable[str] | None = None) -> type:
    """A dataclass of job parameters: each setting of ``section`` (``group``; ``only`` these keys) as
    ``type | None = None`` (None: the workspace's value), checked when made, so a bad value fails when
    the job is submitted.

    Subclass it (``@dataclass class Params(...)``) to add the job's own parameters.
    """
    wanted = None if only is None else set(only)
    chosen = tuple(s for s in of(section, group) if wanted is None or s.key in wanted)

    def __post_init__(self: Any) -> None:  # noqa: N807 - the dataclass hook
        _check_fields(self, section, source)

    def overrides(self: Any) -> dict[str, Any]:
        """The settings this request sets (its non-None values of the section)."""
        return {s.key: getattr(self, s.key) for s in chosen if getattr(self, s.key) is not None}

    cls = dataclasses.make_dataclass(
        name, [(s.key, s.type | None, dataclasses.field(default=None)) for s in chosen],
        namespace={"__post_init__": __post_init__, "overrides": overrides,
                   "declared_settings": {s.key: s for s in chosen},
                   "__doc__": f"Job parameters: [{section}] settings, None for the workspace's value."})
    cls.__module__ = module or __name__
    return cls


# ------------------------------------------------------------------------------------------------
# The documented workspace.toml
# ------------------------------------------------------------------------------------------------

def _comment(text: str, width: int = 100) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += textwrap.wrap(paragraph, width - 2, break_on_hyphens=False) or [""]
    return [f"# {line}".rstrip() for line in lines]


def template_section(section: str) -> str:
    """``[section]`` of workspace_template/workspace.toml, with every setting's help as its comment."""
    lines = [f"[{section}]", *_comment(SECTION_HELP[section]), "#"] if section in SECTION_HELP else [f"[{section}]"]
    for s in of(section):
        line = f"{s.key} = {toml_value(s.default)}"
        if s.template == "commented":  # the compact form, help beside the key, where it fits
            compact = f"# {line}".ljust(28) + f"# {s.help}"
            if len(compact) <= 110:
                lines.append(compact)
                continue
            lines += [*_comment(s.help), f"# {line}"]
        else:
            lines += [*_comment(s.help), line]
    return "\n".join(lines) + "\n"


TEMPLATE_HEAD = """\
# swapwizard workspace settings.
#
# The wizard and the CLI read this file and write back the choices you make, so a second run reuses
# them. You may edit it by hand; each key is explained above it. Paths are relative to this folder.
# (Generated from the declarations in engine/settings.py: python -m engine.settings)
"""


def template() -> str:
    """The whole workspace_template/workspace.toml."""
    return TEMPLATE_HEAD + "".join("\n" + template_section(name) for name in sections())


def wizard_form(section: str) -> tuple[Setting, ...]:
    """The settings the wizard's form shows (those with a label), in order."""
    return tuple(s for s in of(section) if s.label)


def where(section: str, test: Callable[[Setting], bool]) -> tuple[Setting, ...]:
    return tuple(s for s in of(section) if test(s))


if __name__ == "__main__":
    sys.stdout.write(template())
