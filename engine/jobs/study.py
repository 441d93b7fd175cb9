"""Job ``study``: the write-up's question, reproducibly: which model family (and GAN power) swaps best?

    swapwizard study WS --models df,liae,amp[,cnn] --gan 0,0.1 --budget 30m|N

Each configuration (every model with every GAN power) is trained for the same budget (wall time such
as ``30m``/``2h``/``90s`` of its own, or ``N`` iterations) on the same faces with the same options,
into ``model/study-<arch>-gan<power>/``; then all are measured together by the quality module on the
same held-out destination frames (``engine.quality.compare``: reconstruction, pose/eyes/mouth, flicker,
sharpness, identity and expression figures) and the study writes, in ``output/study/``:

- ``report.md`` and ``report.json``: the configurations, what each cost, the figures with the better
  values marked (and whether the lead is larger than the frame-to-frame noise), the caveats;
- ``contact_sheet.png`` (the same frames per model) and ``side_by_side.mp4``, labelled as synthetic
  media and signed with Content Credentials like every output;
- ``progress.json``: which configurations are finished.

Resumable: a killed or cancelled study, run again with the same arguments, skips the finished
configurations and goes on with the next unfinished one (from its last checkpoint). Other arguments
are refused (the models would not be comparable) unless ``restart``, which trains them anew.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from engine import settings
from engine.errors import UserError
from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace

OUT_DIR = "output/study"
#: [train] settings the study sets per configuration (the rest are shared by all of them).
_PER_CONFIG = ("arch", "gan_power", "model", "iters")
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass
class Params(settings.overrides_class("StudyTrain", "train", module=__name__)):
    """The shared [train] settings (engine/settings.py; None: workspace.toml, then the preset), plus the study's own."""

    #: Architectures to compare (df, liae, amp, cnn, with variants such as liae-ud).
    models: list[str] = field(default_factory=lambda: ["df", "liae", "amp"])
    #: GAN powers; every model is trained with each.
    gan: list[float] = field(default_factory=lambda: [0.0, 0.1])
    #: The budget of each configuration: "30m", "2h", "90s" (wall time) or "N" (iterations).
    budget: str = ""
    #: Held-out destination frames to measure on.
    frames: int = 50
    #: Train every configuration anew (their study-* models are replaced).
    restart: bool = False
    c2pa: bool = True
    c2pa_cert: str = ""
    c2pa_key: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_budget(self.budget)  # refused when the job is submitted, before anything queues
        configurations(self)


def parse_budget(text: str) -> tuple[str, float]:
    """("iterations", N) or ("seconds", S) from "N" or "30m"/"2h"/"90s"; ``UserError`` for anything else or 0."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text or ""))
    if not found:
        raise UserError(f"The study budget {text!r} is neither a number of iterations nor a time.",
                        "Give --budget 2000 (iterations, the same for every model) or --budget 30m (minutes; "
                        "also s or h).")
    number, unit = float(found.group(1)), found.group(2)
    if number <= 0:
        raise UserError("A study budget of 0 trains nothing, so there would be nothing to compare.",
                        "Give each model a budget: --budget 2000 (iterations) or --budget 30m.")
    if not unit:
        if not number.is_integer():
            raise UserError(f"A budget of {text} iterations is not a whole number.", "For example: --budget 2000.")
        return "iterations", number
    return "seconds", number * _UNITS[unit]


def config_name(arch: str, gan: float) -> str:
    return f"study-{arch}-gan{gan:g}"


def configurations(params: Params) -> list[dict[str, Any]]:
    if not params.models:
        raise UserError("The study has no models to compare.", "Give them with --models df,liae,amp.")
    if not params.gan:
        raise UserError("The study has no GAN powers.", "Give them with --gan 0,0.1.")
    gan_setting = settings.get("train", "gan_power")
    arch_names = [a.strip() for a in params.models if a.strip()]
    for arch in arch_names:
        if arch.split("-")[0] not in ("df", "liae", "amp", "cnn"):
            raise UserError(f"{arch!r} is not a model the study knows.", "Use df, liae, amp or cnn (e.g. --models "
                            "df,liae,amp,cnn).")
    found = [{"name": config_name(arch, gan_setting.check(float(g), "--gan")), "arch": arch, "gan_power": float(g)}
             for arch in dict.fromkeys(arch_names) for g in dict.fromkeys(params.gan)]
    if len(found) < 2:
        raise UserError("A study needs at least two configurations to compare.",
                        "Give two models or two GAN powers, e.g. --models df,liae --gan 0.")
    return found


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.atomic import atomic_write_json, atomic_write_text, read_json
    from engine.quality.compare import compare
    from engine.quality.cost import training_cost
    from engine.quality.training import TrainingQuality
    from engine.train.loop import TrainingRun
    from engine.train.resolve import resolve
    from engine.train.signals import stop_on_sigterm

    kind, amount = parse_budget(params.budget)
    configs = configurations(params)
    shared = {k: v for k, v in params.overrides().items() if k not in _PER_CONFIG}
    out = ws.root / OUT_DIR
    fingerprint = {"configs": [c["name"] for c in configs], "budget": [kind, amount], "shared": shared}
    progress_path = out / "progress.json"
    progress = read_json(progress_path, default=None) or {}
    if progress and progress.get("fingerprint") != fingerprint and not params.restart:
        raise UserError("A study with other arguments was run in this workspace; its models would not compare "
                        "with these.", "Run it again with its own arguments to finish it, or add --restart to train "
                        "these configurations anew.")
    if params.restart or progress.get("fingerprint") != fingerprint:
        for config in configs:
            shutil.rmtree(ws.model_dir(config["name"]), ignore_errors=True)
        progress = {}
    progress = {"fingerprint": fingerprint, "done": dict(progress.get("done", {}))}

    def request(config: dict[str, Any], target: int) -> dict[str, Any]:
        return {**shared, "arch": config["arch"], "gan_power": config["gan_power"], "model": config["name"],
                "iters": target}

    # Every configuration resolved before any is trained: a bad one (cnn without VGG weights, a shape
    # the preset cannot take) is said now, not after hours of the others.
    target_iters = int(amount) if kind == "iterations" else 0
    for config in configs:
        resolve(ws, request(config, target_iters))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(progress_path, progress)
    budget_words = f"{int(amount)} iterations" if kind == "iterations" else f"{amount:g} s of training"
    started = time.time()
    for number, config in enumerate(configs):
        report.check_cancelled()
        name = config["name"]
        report.progress("study", number, len(configs), unit="configurations")
        if name in progress["done"]:
            report.log(f"{name}: already trained ({progress['done'][name]['iteration']} iterations); skipped.")
            continue
        deadline = None
        if kind == "seconds":
            spent = training_cost(ws.model_dir(name)).get("train_seconds") or 0.0 \
                if ws.model_dir(name).exists() else 0.0
            deadline = time.monotonic() + max(0.0, amount - float(spent))
        report.log(f"{name}: training for {budget_words} (configuration {number + 1} of {len(configs)}).")
        cfg = resolve(ws, request(config, target_iters))
        with stop_on_sigterm() as stopped:
            def stop(stopped=stopped, deadline=deadline) -> bool:
                return stopped() or (deadline is not None and time.monotonic() >= deadline)

            result = TrainingRun(ws, cfg, report, stop_requested=stop, watch=TrainingQuality).run()
            if stopped():
                raise UserError(f"The study was stopped during {name}.", "Run the same command again to go on.")
        progress["done"][name] = {"iteration": result["iteration"], "loss_src": result["loss_src"],
                                  "loss_dst": result["loss_dst"]}
        atomic_write_json(progress_path, progress)
    report.progress("study", len(configs), len(configs), unit="configurations")

    names = [c["name"] for c in configs]
    compared = compare(ws, names, report, frames=params.frames, device=shared.get("device") or "auto",
                       c2pa=params.c2pa, c2pa_cert=params.c2pa_cert, c2pa_key=params.c2pa_key, out_dir=OUT_DIR)
    study = {"command": command_line(params), "budget": {"kind": kind, "amount": amount, "words": budget_words},
             "shared_settings": shared, "configurations": [], "table": compared["table"],
             "frames": compared["frames"], "held_out": compared["held_out"], "frames_note": compared["frames_note"],
             "outputs": {**compared["outputs"], "report": f"{OUT_DIR}/report.md", "json": f"{OUT_DIR}/report.json"},
             "label": compared["label"], "content_credentials": compared["content_credentials"],
             "caveats": caveats(compared, kind, amount), "seconds": round(time.time() - started, 1)}
    for config, entry in zip(configs, compared["models"]):
        study["configurations"].append({**config, "iteration": entry["iteration"], "cost": entry["cost"],
                                        "metrics": entry["metrics"], "verdicts": entry.get("verdicts", [])})
    atomic_write_json(out / "report.json", study)
    atomic_write_text(out / "report.md", markdown(study))
    (out / "compare.json").unlink(missing_ok=True)  # report.json holds all of it
    report.log(f"Study of {len(configs)} configurations written to {OUT_DIR}/report.md (figures, caveats), "
               f"report.json, contact_sheet.png and side_by_side.mp4 (labelled as synthetic media).")
    return {"output": f"{OUT_DIR}/report.md", "outputs": study["outputs"],
            "configurations": [c["name"] for c in configs], "seconds": study["seconds"]}


def command_line(params: Params) -> str:
    shared = " ".join(f"{settings.get('train', k).option} {v}" for k, v in params.overrides().items()
                      if k not in _PER_CONFIG and settings.get("train", k).cli)
    return (f"swapwizard study WS --models {','.join(params.models)} --gan {','.join(f'{g:g}' for g in params.gan)} "
            f"--budget {params.budget}" + (f" {shared}" if shared else "")).strip()


def caveats(compared: dict[str, Any], kind: str, amount: float) -> list[str]:
    found = [f"Measured on {len(compared['frames'])} destination frames ({compared['frames_note']}); a lead "
             "marked 'clear' beats every other configuration by more than twice the standard error of the "
             "paired per-frame differences, so only those are differences the frames support."]
    if kind == "seconds":
        found.append("The budget is wall time: a faster model gets more iterations, and a busy machine fewer.")
    else:
        found.append("The budget is iterations: every configuration took the same number of steps, whatever each "
                     "step cost (see the seconds column).")
    if not compared.get("held_out"):
        found.append("The measured frames were also trained on: the figures flatter every model.")
    return found


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def markdown(study: dict[str, Any]) -> str:
    """report.md: the command, the table (best values in bold, a clear lead marked), costs, caveats."""
    names = [c["name"] for c in study["configurations"]]
    rows = [row for row in study["table"] if any(v is not None for v in row["values"].values())]
    lines = ["# Model study", "", f"Command: `{study['command']}`", "",
             f"Budget per configuration: {study['budget']['words']}. {study['label']}", "",
             "| figure | better | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for row in rows:
        cells = []
        for name in names:
            text = _fmt(row["values"].get(name))
            if name in row["best"]:
                text = f"**{text}**" + (" (clear)" if row["clear"] else "")
            cells.append(text)
        lines.append(f"| {row['metric']} | {row['better']} | " + " | ".join(cells) + " |")
    lines += ["", "| configuration | arch | GAN | iterations | train s | device |", "|---|---|---|---|---|---|"]
    for c in study["configurations"]:
        cost = c["cost"]
        lines.append(f"| {c['name']} | {c['arch']} | {c['gan_power']:g} | {_fmt(c['iteration'])} | "
                     f"{_fmt(cost.get('train_seconds'))} | {cost.get('device')} |")
    lines += ["", "What the figures mean:", ""]
    lines += [f"- `{row['metric']}`: {row['meaning']}" for row in rows]
    lines += ["", "Caveats:", ""] + [f"- {text}" for text in study["caveats"]]
    lines += ["", f"Files: {study['outputs'].get('contact_sheet', 'no contact sheet')} (the same frames per "
              f"configuration), {study['outputs']['video']} (side by side).", ""]
    return "\n".join(lines)


JOB = JobKind(kind="study", params=Params, run=run, label="Study")
