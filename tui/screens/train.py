"""Step 5: train the model; a live loss chart, speed, ETA, the latest preview, and its controls.

After a reconnect the chart shows the whole curve: the model's ``loss_history.json`` (written with
each save) plus every metrics event of the running job replayed from its start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from engine import settings as declared
from engine.atomic import read_json
from engine.errors import UserError
from engine.quality.verdict import LEVELS, verdicts
from tui.job_board import JobRecord
from tui.quality_tables import opening_plot
from tui.screens.ask import AskScreen
from tui.screens.new_model import ask_new_model, model_exists
from tui.screens.step import StepScreen
from tui.widgets.job_progress import STATUS_WORDS, format_duration
from tui.widgets.loss_chart import WINDOWS, LossChart, QualityLine, window_label
from tui.widgets.picture import Picture


def history_from_file(data: Any) -> list[dict[str, Any]]:
    """``loss_history.json`` (``{"columns": [...], "points": [[iteration, loss_src, loss_dst, time], ...]}``)
    as metrics dicts; rows it cannot read are skipped."""
    rows = data.get("points") if isinstance(data, dict) else data
    columns = data.get("columns") if isinstance(data, dict) else None
    names = ["iter" if c == "iteration" else c for c in columns] if isinstance(columns, list) else \
        ["iter", "loss_src", "loss_dst"]
    out = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, list) and len(row) >= 3:
            out.append(dict(zip(names, row)))
    return out


def merge_history(saved: list[dict[str, Any]], live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The saved curve, continued by live points newer than its last iteration."""
    last = saved[-1].get("iter", 0) if saved else -1
    return saved + [values for values in live if isinstance(values.get("iter"), int) and values["iter"] > last]


#: Identity is judged from this many swapped faces the recogniser found (an untrained model's swaps are
#: blurs: at iteration 0 one found "face" gave "like src 100%", and 0% at 124).
MIN_ID_FACES = 5


def measured(points: list[dict[str, Any]], live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every held-out measurement with the iteration it was made at: the model's quality_history.json
    points, and live metrics that name their measurement's iteration (``quality_iter``). A metrics event's
    own ``iter`` is not it: the newest measurement rides on every event, made iterations earlier."""
    found = {int(p["iteration"]): dict(p) for p in points if isinstance(p.get("iteration"), (int, float))}
    for values in live:
        at = values.get("quality_iter")
        if isinstance(at, (int, float)) and at >= 0:
            found[int(at)] = {**found.get(int(at), {}), "iteration": int(at),
                              **{k.removeprefix("quality_"): v for k, v in values.items() if k.startswith("quality_")}}
    return [found[it] for it in sorted(found)]


def newest(points: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    return next((p for p in reversed(points) if p.get(key) is not None), None)


def quality_parts(points: list[dict[str, Any]]) -> list[str]:
    """The newest SSIM and identity figures, each with the iteration it was measured at; identity only
    once enough swapped faces are recognised to judge it."""
    parts = []
    ssim = newest(points, "ssim_dst")
    if ssim is not None:
        parts.append(f"held-out SSIM dst {ssim['ssim_dst']:.3f} src {ssim.get('ssim_src') or 0:.3f} @{ssim['iteration']}")
    ident = newest(points, "id_closer_src")
    if ident is not None:
        faces = ident.get("id_faces")
        if isinstance(faces, (int, float)) and faces < MIN_ID_FACES or ident.get("iteration") == 0:
            parts.append(f"like src: not judged yet @{ident['iteration']} (the swaps are not faces yet)")
        else:
            parts.append(f"like src {ident['id_closer_src']:.0%} (id src {ident.get('id_src') or 0:.2f}"
                         f" dst {ident.get('id_dst') or 0:.2f}) @{ident['iteration']}")
    return parts


def stats_text(job: JobRecord | None, values: dict[str, Any], points: list[dict[str, Any]] | None = None) -> str:
    """The Train screen's status line. ``points``: the held-out measurements (``measured``); None takes
    the quality figures of ``values`` as measured at its iteration."""
    if job is None and not values:
        return "Not trained yet. Press r to start training."
    iteration, target = values.get("iter", 0), values.get("target")
    parts = [f"iteration {iteration}" + (f" / {target}" if target else "")]
    if isinstance(values.get("loss_src"), (int, float)):  # None at iteration 1: sent before the first loss is kept
        parts.append(f"loss src {values['loss_src']:.4f}  dst {values.get('loss_dst') or 0:.4f}")
    if points is None:
        points = measured([], [{**values, "quality_iter": values.get("quality_iter", iteration)}])
    parts += quality_parts(points)
    if job is not None and job.status == "running":
        parts.append(f"{values.get('iters_per_s', 0):.2f} it/s  ETA {format_duration(values.get('eta_s'))}")
    if values.get("until_text"):  # train --until good: when it will be good (engine.quality.estimate)
        parts.append(escape(str(values["until_text"])))
    status = STATUS_WORDS.get(job.status, job.status) if job is not None else "stopped"
    faces = job.params.get("pretrain_faces") if job is not None else None
    if faces:  # not the pair: say so, and on what
        shown = str(faces) if len(str(faces)) <= 40 else "…" + str(faces)[-39:]
        parts.insert(0, f"pretraining on {escape(shown)}")
    return f"[b]{status}[/b] · " + " · ".join(parts)


#: Verdict level -> colour of its line on the screen.
LEVEL_COLOURS = {"good": "green", "fair": "yellow", "poor": "red"}


def latest_expression(history: list[dict[str, Any]], live: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest expression figures: the running job's metrics, else the model's quality history."""
    for values in reversed(live):
        if values.get("quality_expr_mouth_ratio") is not None:
            return values
    for point in reversed(history):
        if point.get("expr_mouth_ratio") is not None:
            return point
    return {}


def expression_text(values: dict[str, Any], arch: str | None = None) -> str:
    """Beside the loss chart: does the swap follow the destination's expression (how its mouth and eye
    opening move against the destination's, and the pose error ratio; engine.quality.expression), the
    verdict (engine.quality.verdict) and the mouth-opening plot (destination against swap)."""
    def get(key: str) -> Any:
        return values.get(f"quality_{key}", values.get(key))

    if get("expr_mouth_ratio") is None and get("expr_mouth_corr") is None:
        return "[dim]expression: not measured yet[/dim]"
    figures = [f"{name} corr {get(f'expr_{name}_corr'):.2f}, {get(f'expr_{name}_spread'):.2f}x as far"
               for name in ("mouth", "eyes") if get(f"expr_{name}_corr") is not None
               and get(f"expr_{name}_spread") is not None]
    if get("expr_pose_ratio") is not None:
        figures.append(f"pose {get('expr_pose_ratio'):.1f}x the reconstruction's error")
    at = f" @{values['iteration']}" if isinstance(values.get("iteration"), int) else ""  # when it was measured
    head = f"expression{at}: " + ("; ".join(figures) if figures else "measured")
    found = [v for v in verdicts(values, arch) if v.topic == "expression"]
    lines = [head] + [f"[{LEVEL_COLOURS[v.level]}]{escape(v.text)}[/]" for v in
                      sorted(found, key=lambda v: -LEVELS.index(v.level))[:2]]
    return "\n".join(lines + opening_plot(values))


class TrainScreen(StepScreen):
    STEP = "train"
    STOP_IDLE_TEXT = "No training is running."
    STOP_SENT_TEXT = "Stopping: the model is saved first."
    TITLE_TEXT = "Train"
    ABOUT_TEXT = ("Trains the face-swap model on both sides' faces: the loss chart, a preview of the swap and "
                  "quality measured on held-out frames. Stop (x) and start (r) at will: it resumes.")
    NEXT_TEXT = "6 Merge: tune how the swapped face is pasted into one frame, then 7 Export the whole clip."

    BINDINGS = [
        Binding("r", "start", "Train", id="train-start"),
        Binding("s", "command('save')", "Save now", id="train-save"),
        Binding("p", "command('preview')", "Preview", id="train-preview"),
        Binding("t", "target", "Target", id="train-target"),
        Binding("x", "stop", "Stop", id="train-stop"),
        Binding("l", "window", "Chart range", id="train-window"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.saved_history: list[dict[str, Any]] = []
        #: The model's quality_history.json points (held-out SSIM over iterations).
        self.saved_quality: list[dict[str, Any]] = []
        #: The model's architecture (model.json), for the verdicts' advice.
        self.arch: str | None = None
        #: The live quality figures last seen (a change means a new measurement: reload the history).
        self._quality_seen: tuple[Any, ...] = ()

    def body(self) -> ComposeResult:
        yield Static(id="train-stats")
        with Horizontal(id="train-main"):
            with Vertical(id="train-chart-box", classes="panel"):
                yield Static("[cyan]━ src[/] [magenta]━ dst[/] [yellow]━ both[/] (log, bright: smoothed)",
                             classes="legend")
                yield LossChart(id="train-chart")
                yield QualityLine(id="train-quality")
                yield Static(id="train-expression")
            yield Picture(caption="the preview appears here", id="train-preview", classes="panel",
                          title="training preview (src, src→src, dst, dst→dst, dst→src, masks)")

    def refresh_from_board(self) -> None:
        super().refresh_from_board()
        self.load_saved_history()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def load_saved_history(self) -> None:
        ws = self.wizard.ws
        if ws is None:
            return
        saved = history_from_file(read_json(self.model_dir() / "loss_history.json", default=None))
        quality = read_json(self.model_dir() / "quality_history.json", default=None)
        points = quality.get("points") if isinstance(quality, dict) else None
        info = read_json(self.model_dir() / "model.json", default=None)
        options = info.get("model_options") if isinstance(info, dict) else None
        self.arch = options.get("arch") if isinstance(options, dict) else None
        self.app.call_from_thread(self._saved_history_loaded, saved,
                                  [q for q in points or [] if isinstance(q, dict)])

    def _saved_history_loaded(self, saved: list[dict[str, Any]], quality: list[dict[str, Any]] | None = None) -> None:
        self.saved_history = saved
        self.saved_quality = quality or []
        self.show_job(self.wizard.board.latest("train", "run"))

    def model_dir(self) -> Path:
        """The model being trained: the job's, else the workspace's choice, else "default"."""
        ws = self.wizard.ws
        assert ws is not None
        job = self.wizard.board.latest("train", "run")
        name = ws.model_name(job.params.get("model") if job else None)
        try:
            return ws.model_dir(str(name))
        except UserError:  # a bad name typed into workspace.toml: the train job will say so
            return ws.model_dir()

    def show_job(self, job: JobRecord | None) -> None:
        live = job.metrics if job is not None else []
        history = merge_history(self.saved_history, live)
        values = live[-1] if live else (history[-1] if history else {})
        news = tuple(sorted((k, v) for k, v in values.items() if k.startswith("quality_") and isinstance(v, (int, float))))
        if live and news != self._quality_seen:  # a new measurement: its iteration is in the model's history
            self._quality_seen = news
            self.load_saved_history()
        points = measured(self.saved_quality, live)
        self.query_one("#train-stats", Static).update(stats_text(job, values, points))
        if job is not None and job.status == "failed":
            self.query_one("#train-stats", Static).update(Text.assemble((job.error or "", "red"), f"\nhint: {job.hint}"))
        chart = self.query_one(LossChart)
        chart.target = values.get("target") or None
        chart.history = history
        quality_line = self.query_one(QualityLine)
        quality_line.span = chart.shown_range()
        quality_line.quality = points
        pretraining = job is not None and bool(job.params.get("pretrain_faces"))
        self.query_one("#train-expression", Static).update(
            "[dim]quality: not measured while pretraining (measured on your pair's held-out faces once the "
            "model trains on them)[/dim]" if pretraining else
            expression_text({**latest_expression(self.saved_quality, live),
                             **(newest(points, "expr_mouth_corr") or newest(points, "expr_mouth_ratio") or {})},
                            self.arch))
        ws = self.wizard.ws
        picture = self.query_one("#train-preview", Picture)
        if job is not None and job.preview is not None and ws is not None:
            # The full grid (real images, z); the 160 px copy for half-blocks.
            picture.show(ws.root / job.preview.path, ws.root / job.preview.small if job.preview.small else None)
        elif ws is not None and picture.path is None:
            folder = self.model_dir() / "previews"  # the last run's (train/preview.py)
            if (folder / "latest.png").is_file():
                picture.show(folder / "latest.png", folder / "latest_small.png")

    # -- actions ---------------------------------------------------------------------------------
    def action_window(self) -> None:
        """``l``: the chart shows the whole run, or the last 10 000 / 1 000 iterations."""
        chart = self.query_one(LossChart)
        before = chart.window
        window = chart.cycle_window()
        self.query_one(QualityLine).span = chart.shown_range()
        if window is None and before is None:  # nothing shorter than the run yet: say so, not a silent no-op
            shortest = min(w for w in WINDOWS if w is not None)
            self.notify(f"Loss chart: the whole run. l shows the last {shortest:,} iterations once the run is "
                        "longer than that.".replace(",", " "), timeout=4)
            return
        self.notify(f"Loss chart: {window_label(window)}.", timeout=2)

    def action_start(self) -> None:
        """Continue the model; a new one first asks for its preset and target."""
        ws = self.wizard.ws
        if ws is None:
            return
        if self.wizard.board.active("train", "run"):
            self.notify("Training is already running.")
            return
        if model_exists(ws):
            self.submit_training({})
        else:
            ask_new_model(self.app, ws, self.submit_training)

    @work(group="train-submit", exit_on_error=False)
    async def submit_training(self, params: dict[str, Any]) -> None:
        if await self.wizard.submit_job("train", params):
            self.notify("Training started: it keeps running if you close the wizard or lose SSH.")

    async def action_command(self, command: str, args: dict[str, Any] | None = None) -> None:
        job = self.wizard.board.active("train", "run")
        if job is None:
            self.notify("No training is running.", severity="warning")
            return
        if await self.wizard.engine_request("command", command=command, args=args or {}, job_id=job.job_id):
            self.notify({"save": "Saving the model...", "preview": "A preview is on its way."}.get(command, "Sent."))

    def action_target(self) -> None:
        job = self.wizard.board.latest("train", "run")
        current = str((job.latest_metrics.get("target") if job else None) or 0)

        async def chosen(answer: str | None) -> None:
            if not answer or not answer.isdigit() or int(answer) < 1:
                return
            try:
                iters = declared.get("train", "iters").check(int(answer), "the target")
            except UserError as exc:
                self.wizard.notify_error(exc.message, exc.hint)
                return
            if self.wizard.ws is not None:
                self.wizard.ws.update_settings("train", {"iters": iters})
            if self.wizard.board.active("train", "run"):
                await self.action_command("set_target", {"iters": iters})
            else:
                self.notify(f"Target set to {iters} iterations; press r to train.")

        self.app.push_screen(AskScreen("Train until iteration:", current, restrict=r"[0-9]*"), chosen)
