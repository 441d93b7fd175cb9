"""Rich tables of quality results, shared by the CLI (``swapwizard quality`` / ``compare``) and the
wizard's Compare view. Input is the JSON the quality and compare jobs write (engine.quality)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.quality.opening_plot import opening_lines
from engine.quality.verdict import verdicts

#: Metric -> how to print its value.
FORMATS = {"ssim_dst": "{:.4f}", "ssim_src": "{:.4f}", "psnr_dst": "{:.2f} dB", "psnr_src": "{:.2f} dB",
           "pose_error": "{:.4f}", "eyes_error": "{:.4f}", "mouth_error": "{:.4f}", "extra_flicker": "{:+.3f}",
           "sharpness": "{:.3f}", "id_src": "{:.3f}", "id_dst": "{:.3f}", "id_closer_src": "{:.0%}",
           "expr_mouth_ratio": "{:.2f}x", "expr_eyes_ratio": "{:.2f}x", "expr_pose_ratio": "{:.2f}x",
           "expr_mouth_corr": "{:.2f}", "expr_mouth_spread": "{:.2f}x", "expr_eyes_corr": "{:.2f}",
           "expr_eyes_spread": "{:.2f}x"}
MEANINGS = {
    "ssim_dst": "dst->dst SSIM in the face mask (held-out; higher is better)",
    "psnr_dst": "dst->dst PSNR in the face mask (higher is better)",
    "ssim_src": "src->src SSIM in the face mask (held-out; higher is better)",
    "psnr_src": "src->src PSNR in the face mask (higher is better)",
    "pose_error": "swap's landmarks vs the destination's / face size (0 is perfect)",
    "eyes_error": "the same, eyes only",
    "mouth_error": "the same, mouth only",
    "extra_flicker": "frame-to-frame change of the swap over the destination's, minus 1 (0: as steady)",
    "sharpness": "fine detail of the swap over the destination's (1: as sharp)",
    "id_src": "identity distance of the swap to the source person (lower; under 0.6 dlib says same person)",
    "id_dst": "identity distance of the swap to the destination person (higher: less of dst left)",
    "id_closer_src": "share of swapped faces closer to the source person than to the destination",
    "expr_mouth_ratio": "mouth error of the swap over the reconstruction's (1: follows as well as it can)",
    "expr_eyes_ratio": "the same, eyes",
    "expr_pose_ratio": "the same, head pose (all 68 points)",
    "expr_mouth_corr": "the swap's mouth opens and closes with the destination's (1: exactly)",
    "expr_mouth_spread": "how far the swap's mouth opens against the destination's (1: as far; 0: frozen)",
    "expr_eyes_corr": "the swap's eyes open and close with the destination's (1: exactly)",
    "expr_eyes_spread": "how far the swap's eyes open against the destination's (1: as far)",
}
#: Verdict level -> rich style.
LEVEL_STYLES = {"good": "green", "fair": "yellow", "poor": "red"}


def verdict_lines(entry: dict[str, Any]) -> list[str]:
    """A quality result's (or a compared model's) verdicts as rich markup lines, worst first: the ones
    the job wrote, else made from its metrics (engine.quality.verdict, for results written before)."""
    found = entry.get("verdicts")
    if not isinstance(found, list):
        found = [{"level": v.level, "text": v.text} for v in verdicts(entry.get("metrics", {}))]
    order = {"poor": 0, "fair": 1, "good": 2}
    found = sorted((v for v in found if isinstance(v, dict)), key=lambda v: order.get(v.get("level"), 3))
    return [f"[{LEVEL_STYLES.get(v.get('level'), 'white')}]{escape(str(v.get('text', '')))}[/]" for v in found]


def opening_plot(metrics: dict[str, Any]) -> list[str]:
    """The mouth-opening plot (destination against swap, ``engine.quality.opening_plot``) of a result's
    metrics as rich markup lines; [] when it was not measured."""
    lines = opening_lines(metrics.get("expr_openings", metrics.get("quality_expr_openings")))
    return [f"[dim]{escape(lines[0])}[/dim]", *(escape(line) for line in lines[1:])] if lines else []


def value_text(key: str, value: Any) -> str:
    if value is None:
        return "-"
    return FORMATS.get(key, "{}").format(value) if isinstance(value, (int, float)) else str(value)


def duration_text(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def quality_table(result: dict[str, Any]) -> Table:
    """One model's (or video's) metrics with what each says."""
    title = f"model {result['model']} at iteration {result['iteration']}" if result.get("model") else \
        f"video {result.get('video')}"
    table = Table(title=f"Quality of {title}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("what it says")
    metrics = result.get("metrics", {})
    for key, meaning in MEANINGS.items():
        if key in metrics:
            table.add_row(key, value_text(key, metrics[key]), meaning)
    return table


def compare_table(result: dict[str, Any], title: str = "Models compared on the same held-out frames") -> Table:
    """Metric rows x model columns, the better value marked, then each model's training cost.

    ``*`` marks a clearly better value; ``(*)`` the best value when its lead is within the
    frame-to-frame noise (see engine.quality.compare.clear_margin)."""
    names = [m["name"] for m in result.get("models", [])]
    table = Table(title=title, title_justify="left",
                  caption="* better   (*) best, but within the frame-to-frame noise", caption_justify="left")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("better")
    for row in result.get("table", []):
        cells: list[str | Text] = []
        for name in names:
            text = value_text(row["metric"], row["values"].get(name))
            if name in row.get("best", []):  # styled, not markup: the CLI's consoles print markup as text
                cells.append(Text(f"{text} *", style="bold green") if row.get("clear", True) else f"{text} (*)")
            else:
                cells.append(text)
        table.add_row(row["metric"], *cells, row.get("better", ""))
    costs = [m.get("cost", {}) for m in result.get("models", [])]
    table.add_section()
    table.add_row("iterations", *[str(c.get("iterations", "-")) for c in costs], "")
    table.add_row("train time", *[duration_text(c.get("train_seconds")) + ("~" if c.get("train_seconds_estimated") else "")
                                  for c in costs], "")
    table.add_row("device", *[str(c.get("device", "-")) for c in costs], "")
    table.add_row("gan_power", *[str(c.get("gan_power", "-")) for c in costs], "")
    table.add_row("frames unseen", *[str(m.get("unseen") or "-").split(" (")[0] for m in result.get("models", [])], "")
    return table
