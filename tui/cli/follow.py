"""Following a job in the terminal: rich progress bars, the latest metrics, logs, the outcome.

``run_job`` is what job commands (extract, train, merge...) call (``submit_and_follow`` when the command
goes on after the job); ``follow`` is shared with ``swapwizard attach``. Ctrl-C only detaches: the job keeps running in the engine.
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

from engine.client import EngineClient
from engine.errors import UserError
from engine.launcher import ensure_engine
from engine.protocol import Event
from engine.quality.opening_plot import opening_lines
from engine.quality.verdict import summary
from engine.workspace import Workspace
from tui.cli.common import CONSENT_KINDS, EXIT_DONE, EXIT_FAILED, EXIT_USAGE, err, out, remind_consent

#: Jobs whose metrics events are a training's (a bar of iterations); other jobs' (quality) are not.
TRAINING_KINDS = ("train", "run", "study", "segment")


def _format_metrics(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        if key.startswith("until_"):
            continue  # train --until good: its own line, once per measurement
        if isinstance(value, (dict, list)) or key.startswith("quality_expr_"):
            continue  # the expression figures have their own line (expression_line), once per measurement
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{key}={value}")
    return "  ".join(parts)


def expression_line(values: dict[str, Any]) -> str | None:
    """Lines for a metrics event that carries expression figures (engine.quality.expression): how the
    mouth and eye opening move against the destination's (correlation, spread), the pose error ratio,
    the verdict and the mouth-opening plot (plain text)."""
    if values.get("quality_expr_mouth_ratio") is None and values.get("quality_expr_mouth_corr") is None:
        return None
    figures = "  ".join(f"{name} corr {values[f'quality_expr_{name}_corr']:.2f} {values[f'quality_expr_{name}_spread']:.2f}x"
                        for name in ("mouth", "eyes")
                        if isinstance(values.get(f"quality_expr_{name}_corr"), (int, float))
                        and isinstance(values.get(f"quality_expr_{name}_spread"), (int, float)))
    pose = values.get("quality_expr_pose_ratio")
    pose_text = f"  pose {pose:.2f}x" if isinstance(pose, (int, float)) else ""
    verdict = summary({k: v for k, v in values.items() if k.startswith("quality_expr_")})
    plot = opening_lines(values.get("quality_expr_openings"))
    head = f"expression at iteration {values.get('iter')}: {figures}{pose_text}. {verdict}".rstrip()
    return "\n".join([head, *plot])


class PlainProgress(Progress):
    """Progress for logs and pipes (not a terminal): a plain line per stage every few seconds."""

    interval = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs, disable=True)
        self._last_line: dict[Any, float] = {}

    def update(self, task_id: Any, **fields: Any) -> None:
        super().update(task_id, **fields)
        task = self._tasks[task_id]
        now = time.monotonic()
        finished = task.total is not None and task.completed >= task.total
        if finished or now - self._last_line.get(task_id, 0.0) >= self.interval:
            self._last_line[task_id] = now
            total = f"/{task.total:g}" if task.total is not None else ""
            extra = " ".join(str(v) for v in (task.fields.get("rate"), task.fields.get("metrics")) if v)
            self.console.print(f"{task.description}: {task.completed:g}{total} {extra}", highlight=False)


class TerminalProgress(Progress):
    """The bars, then the newest training metrics on lines of their own: in a column beside the bars
    they squeezed the stage names to "ex…" and the rates to "…" at 120 columns."""

    metrics_line: str = ""

    def get_renderables(self) -> Any:
        yield self.make_tasks_table(self.tasks)
        if self.metrics_line:
            yield Text(self.metrics_line, style="dim")  # wraps between figures, never inside one


def follow_progress(console: Console, quiet: bool = False) -> Progress:
    """What ``follow`` draws with: bars in a terminal, a plain line per stage in a log or a pipe."""
    if console.is_terminal or quiet:
        return TerminalProgress(
            TextColumn("{task.description:<14}", table_column=Column(no_wrap=True, min_width=14)), BarColumn(),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[rate]}", table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)),
            console=console, transient=False, disable=quiet)
    return PlainProgress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                         TextColumn("{task.fields[metrics]}"), console=console)


def say(progress: Progress, text: str, **options: Any) -> None:
    """A line above the bars; in a terminal wrapped between words (soft wrap let the terminal cut a long
    log line mid-word), in a log or a pipe left whole."""
    progress.console.print(text, soft_wrap=not progress.console.is_terminal, **options)


def follow(client: EngineClient, job_id: str | None, from_seq: int, quiet: bool = False) -> int:
    """Show events from ``from_seq`` until job ``job_id`` ends (any job when None); return the exit code."""
    progress = follow_progress(err, quiet)
    tasks: dict[tuple[str, str], Any] = {}
    current = job_id
    try:
        with progress:
            for event in client.events(from_seq=from_seq):
                if current is None and event.TYPE == "job_started":
                    current = event.job_id  # type: ignore[attr-defined]
                if getattr(event, "job_id", None) not in (None, current):
                    continue
                code = _show(event, progress, tasks)
                if code is not None and getattr(event, "job_id", None) == current:
                    return code
    except KeyboardInterrupt:
        err.print(f"\nDetached; the job keeps running. Follow it again with: swapwizard attach {client.ws.root}")
        return EXIT_DONE
    err.print("The engine stopped before the job ended.", style="red")
    err.print(f"hint: see {client.ws.engine_log_path}; start it again with swapwizard engine start.")
    return EXIT_FAILED


def _show(event: Event, progress: Progress, tasks: dict[tuple[str, str], Any]) -> int | None:
    kind = event.TYPE
    job_id = getattr(event, "job_id", "") or ""
    if kind == "job_started":
        tasks[(job_id, "kind")] = event.kind  # type: ignore[attr-defined]
        progress.console.print(f"[bold]{escape(event.kind)}[/] started ({escape(job_id)})", markup=True)  # type: ignore[attr-defined]
    elif kind == "progress":
        key = (job_id, event.stage)  # type: ignore[attr-defined]
        rate = f"{event.rate:.1f} {event.unit}/s" if event.rate else ""  # type: ignore[attr-defined]
        if key not in tasks:
            tasks[key] = progress.add_task(event.stage, total=event.total, rate=rate, metrics="")  # type: ignore[attr-defined]
        progress.update(tasks[key], completed=event.done, total=event.total, rate=rate)  # type: ignore[attr-defined]
    elif kind == "metrics" and tasks.get((job_id, "kind"), "train") not in TRAINING_KINDS:
        pass  # a measuring job's figures (quality): its command prints the result, not a training bar
    elif kind == "metrics":
        text = _format_metrics(event.values)  # type: ignore[attr-defined]
        iteration = event.values.get("iter")  # type: ignore[attr-defined]
        target = event.values.get("target")  # type: ignore[attr-defined]
        key = (job_id, "train")
        if key not in tasks:
            tasks[key] = progress.add_task("train", total=target, rate="", metrics=text)
        progress.update(tasks[key], completed=iteration or 0, total=target, metrics=text,
                        rate=f"{event.values.get('iters_per_s', 0):.2f} it/s")  # type: ignore[attr-defined]
        if isinstance(progress, TerminalProgress):
            progress.metrics_line = text
        line = expression_line(event.values)  # type: ignore[attr-defined]
        figures = tuple(v for k, v in sorted(event.values.items()) if k.startswith("quality_expr_"))  # type: ignore[attr-defined]
        if line is not None and tasks.get((job_id, "expression")) != figures:
            tasks[(job_id, "expression")] = figures  # printed once per new measurement
            say(progress, escape(line), highlight=False)
        until = event.values.get("until_text")  # type: ignore[attr-defined]
        if until and tasks.get((job_id, "until")) != until:  # train --until good: when it will be good
            tasks[(job_id, "until")] = until
            progress.console.print(escape(f"until good: {until}"), highlight=False)
    elif kind == "preview":
        progress.console.print(f"preview: {event.path}")  # type: ignore[attr-defined]
    elif kind == "log":
        style = {"warning": "yellow", "error": "red"}.get(event.level, "dim")  # type: ignore[attr-defined]
        say(progress, f"[{style}]{escape(event.message)}[/]", markup=True, highlight=False)  # type: ignore[attr-defined]
    elif kind == "job_finished":
        result = event.result  # type: ignore[attr-defined]
        summary = ", ".join(f"{k}: {v}" for k, v in result.items() if not isinstance(v, (dict, list)))
        progress.console.print(f"[green]done[/] {escape(summary)}", markup=True)
        return EXIT_DONE
    elif kind == "job_failed":
        progress.console.print(f"[bold red]failed:[/] {escape(event.error)}", markup=True)  # type: ignore[attr-defined]
        if event.hint:  # type: ignore[attr-defined]
            progress.console.print(f"[dim]hint:[/] {escape(event.hint)}", markup=True)  # type: ignore[attr-defined]
        return EXIT_FAILED
    elif kind == "job_cancelled":
        progress.console.print("[yellow]cancelled[/]", markup=True)
        return EXIT_FAILED
    return None


def run_job(ws: Workspace, kind: str, params: dict[str, Any], detach: bool = False) -> NoReturn:
    """Submit a job to the workspace's engine (starting it if needed) and follow it to the end.

    Shows rich progress bars and the latest metrics; Ctrl-C detaches and leaves the job running.
    Exits 0 when the job finished, 1 when it failed or was cancelled, 2 on bad input. With
    ``detach`` it returns as soon as the job is queued.
    """
    if kind in CONSENT_KINDS:
        remind_consent(ws)
    raise typer.Exit(submit_and_follow(ws, kind, params, detach=detach))


def submit_and_follow(ws: Workspace, kind: str, params: dict[str, Any], detach: bool = False) -> int:
    try:
        ensure_engine(ws)
        with EngineClient(ws, timeout=None) as client:
            last_seq = client.status()["last_seq"]
            job_id = client.submit(kind, params)["job_id"]
            if detach:
                out.print(job_id)
                err.print(f"Queued {kind} as {job_id}. Follow it with: swapwizard attach {ws.root}")
                return EXIT_DONE
            return follow(client, job_id, last_seq + 1)
    except UserError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True)
        if exc.hint:
            err.print(f"[dim]hint:[/] {escape(exc.hint)}", markup=True)
        return EXIT_USAGE
