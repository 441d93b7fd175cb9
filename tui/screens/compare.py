"""The Compare view: the latest model comparison's table (better values marked, training cost) and its
contact sheet drawn in the terminal, plus each model's quality over training.

It reads what the ``compare`` job wrote (``output/compare/compare.json`` and ``contact_sheet.png``)
and the models' ``quality_history.json``, and looks again every second, so a comparison finished
by the CLI or by ``r`` here shows up by itself. ``r`` compares every trained model of the workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.atomic import read_json
from tui.quality_tables import compare_table, opening_plot, value_text, verdict_lines
from tui.widgets.picture import Picture
from tui.widgets.step_bar import StepBar

COMPARE_JSON = "output/compare/compare.json"
#: The model study (engine.jobs.study: swapwizard study WS ...), shown under the latest comparison.
STUDY_JSON = "output/study/report.json"
#: Metrics shown in the quality-over-training lines (the trainer measures these every few hundred iterations).
TRAINING_KEYS = ("ssim_dst", "ssim_src", "id_closer_src", "expr_mouth_ratio")


def training_line(name: str, points: list[dict[str, Any]], last: int = 4) -> str:
    """``name: it 500 ssim_dst 0.41 · it 1000 ssim_dst 0.52 ...`` from the newest points."""
    shown = []
    for point in points[-last:]:
        values = " ".join(f"{k} {value_text(k, point[k])}" for k in TRAINING_KEYS if point.get(k) is not None)
        if values:
            shown.append(f"it {point.get('iteration')} {values}")
    return f"[b]{escape(name)}[/b]: " + (" · ".join(shown) if shown else "no measurement yet")


class CompareScreen(Screen[None]):
    DEFAULT_CSS = """
    CompareScreen { padding: 0 1; }
    #compare-main { height: 1fr; }
    #compare-head { height: 1; }
    #compare-head StepBar { width: auto; }
    #compare-title { width: 1fr; margin-left: 1; text-style: bold; color: $accent; }
    #compare-report { width: 2fr; max-width: 80%; }
    #compare-sheet { width: 1fr; min-width: 16; }
    #compare-history, #compare-status { margin-top: 1; }
    """

    TITLE_TEXT = "Compare models"
    ABOUT_TEXT = ("Merges the same held-out frames with every model of the workspace and tabulates their "
                  "quality (a contact sheet beside it), and each model's quality over its training.")
    NEXT_TEXT = "Escape goes back to the step you came from."

    BINDINGS = [
        Binding("escape", "close", "Back", id="compare-back"),
        Binding("r", "run", "Compare all models", id="compare-run"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._stamp: tuple | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-head"):  # where the user is (the step it was opened from), and what this is
            yield StepBar(id="step-bar")
            yield Static("· Compare models", id="compare-title")
        with Horizontal(id="compare-main"):
            with VerticalScroll(id="compare-report", classes="panel"):
                yield Static(id="compare-table")
                yield Static(id="compare-study")
                yield Static(id="compare-history")
                yield Static(id="compare-status")
            yield Picture(caption="the contact sheet appears here", id="compare-sheet", classes="panel",
                          title="contact sheet")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        bar = self.query_one(StepBar)
        step_screen = getattr(self.app, "step_screen", lambda: None)()
        if step_screen is not None:
            bar.current = step_screen.STEP
            bar.statuses = self.app.step_statuses()  # type: ignore[attr-defined]
        self.reload()
        self.set_interval(1.0, self.reload)

    @property
    def ws(self) -> Any:
        return getattr(self.app, "ws", None)

    def _files(self) -> list[Path]:
        ws = self.ws
        if ws is None:
            return []
        return [ws.root / COMPARE_JSON, ws.root / STUDY_JSON, *(ws.model_dir(n) / "quality_history.json" for n in ws.model_names())]

    def reload(self) -> None:
        """Redraw when a file changed (or a compare job's status did)."""
        stamps = []
        for path in self._files():
            try:
                stamps.append((str(path), path.stat().st_mtime_ns))
            except OSError:
                stamps.append((str(path), None))
        job = self.app.board.latest("compare") if hasattr(self.app, "board") else None
        stamp = (tuple(stamps), job.status if job else None)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self.show(job)

    def show(self, job: Any) -> None:
        ws = self.ws
        table = self.query_one("#compare-table", Static)
        status = self.query_one("#compare-status", Static)
        sheet = self.query_one(Picture)
        if ws is None:
            table.update("Open a workspace first.")
            return
        result = read_json(ws.root / COMPARE_JSON, default=None)
        if isinstance(result, dict) and result.get("models"):
            note = Text(f"{len(result.get('frames', []))} frames: {result.get('frames_note', '')}", style="dim")
            drawn = compare_table(result, title="Latest comparison")
            said = [Text.from_markup(f"[b]{escape(model['name'])}[/b]: {line}") for model in result["models"]
                    for line in verdict_lines(model) + opening_plot(model.get("metrics", {}))]
            table.update(Group(drawn, note, *said))
            # As wide as the table wants (border, padding and scroll bar: 6 cells); the sheet gets the rest.
            self.query_one("#compare-report").styles.width = self.app.console.measure(drawn).maximum + 6
            contact = result.get("outputs", {}).get("contact_sheet")
            sheet.path = ws.root / contact if contact else None
        else:
            table.update("No comparison yet. Train two or more models (train --model NAME), then press r, "
                         "or run: swapwizard compare WS --models A B")
            sheet.path = None
        self.show_study(ws, sheet)
        lines = [training_line(name, read_json(ws.model_dir(name) / "quality_history.json",
                                               default={}).get("points", []))
                 for name in ws.model_names()]
        self.query_one("#compare-history", Static).update(
            "[b]Quality over training[/b] (held-out reconstruction)\n" + "\n".join(lines) if lines else "")
        if job is None:
            status.update("")
        elif job.status in ("queued", "running"):
            stage = job.stage("compare")
            where = f" frame {stage.done}/{stage.total}" if stage is not None and stage.total else ""
            status.update(Text(f"Comparing...{where} the table updates when it ends.", style="yellow"))
        elif job.status == "failed":
            status.update(Text.assemble((job.error or "", "red"), f"\nhint: {job.hint}"))
        else:
            status.update("")

    def show_study(self, ws: Any, sheet: Picture) -> None:
        """The study's table (output/study/report.json), if one was run; its contact sheet when there is
        no comparison's."""
        study = read_json(ws.root / STUDY_JSON, default=None)
        shown = self.query_one("#compare-study", Static)
        if not isinstance(study, dict) or not study.get("configurations"):
            shown.update("")
            return
        as_result = {"models": study["configurations"], "table": study.get("table", [])}
        budget = study.get("budget", {}).get("words", "")
        shown.update(Group(Text(""), compare_table(as_result, title=f"Model study ({budget} each)"),
                           Text(f"{study.get('command', '')}  ->  output/study/report.md", style="dim")))
        contact = study.get("outputs", {}).get("contact_sheet")
        if sheet.path is None and contact:
            sheet.path = ws.root / contact

    # -- actions ---------------------------------------------------------------------------------
    def action_close(self) -> None:
        self.app.pop_screen()

    async def action_run(self) -> None:
        board = getattr(self.app, "board", None)
        if board is not None and board.active("compare"):
            self.notify("A comparison is already running.")
            return
        ws = self.ws
        if ws is None:
            return
        if len(ws.model_names()) < 2:
            self.notify("Train at least two models first (train --model NAME).", severity="warning")
            return
        if await self.app.submit_job("compare", {}):
            self.notify("Comparing every model on the held-out frames...")
            self.reload()
