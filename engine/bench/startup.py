"""Training start-up and the loop's time lost to measuring quality (``bench train --startup``).

    swapwizard bench train --startup [--workspace WS] [--preset tiny] [--threads N] [--json]
    python -m engine.bench train --startup --json

1. Through a real engine, as a user starts training: a scratch workspace with both shipped sample
   clips extracted (or ``--workspace``), a train job submitted with ``--preset`` and no other option
   (quality measured at the workspace's ``[quality] every_iters``). From the submit, the times of:
   ``faces_loaded`` (the last "load ... faces" progress), ``first_iteration`` (the first metrics
   event past iteration 0: the first sync point), ``first_preview`` (the first preview event), then
   ``cancel_s``: a cancel sent ``--train-s`` seconds after the first preview, until the job ended
   (its final save and preview included).
2. In the job's own process, a ``TrainingRun`` of ``--iters`` iterations whose watcher (the train
   job's ``TrainingQuality``) measures every ``--every`` iterations; each call the loop makes to the
   watcher is timed. ``blocked_s_per_measurement`` is the loop's time inside a call that measured
   (the mean), and ``lost_at_default`` the fraction of training time that costs at the default interval
   (500 iterations at the measured iteration rate). A measurement running beside the loop also
   takes CPU from it: ``it_per_s_measuring`` against ``it_per_s_quiet`` (the same run without a
   watcher, same iterations) shows that, on a machine whose load average is printed too.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import settings

DEFAULT_EVERY = settings.defaults("quality")["every_iters"]


def _timeline(ws, preset: str, threads: int, train_s: float, timeout: float = 600.0) -> dict[str, Any]:
    """Submit a train job to the workspace's engine and time its start and its cancel."""
    from engine.client import EngineClient
    from engine.launcher import start_engine

    start_engine(ws)
    times: dict[str, Any] = {}
    began = time.monotonic()

    def cancel(job: str) -> None:  # on its own connection: the event reader never times out mid-line
        times["cancel_sent"] = time.monotonic() - began
        with EngineClient(ws, timeout=60) as other:
            other.cancel(job)

    timer = None
    with EngineClient(ws, timeout=timeout) as client:
        last = client.status()["last_seq"]
        client.subscribe(last + 1)
        began = time.monotonic()
        job = client.submit("train", {"preset": preset, "model": "startup", "iters": 100_000,
                                      **({"threads": threads} if threads else {})})["job_id"]
        deadline = began + timeout
        while time.monotonic() < deadline:
            event = client.next_event(timeout=max(0.1, deadline - time.monotonic()))
            if getattr(event, "job_id", None) != job:
                continue
            now = round(time.monotonic() - began, 2)
            values = getattr(event, "values", {}) or {}
            if event.TYPE == "progress" and str(getattr(event, "stage", "")).startswith("load "):
                times["faces_loaded"] = now
            elif event.TYPE == "metrics" and (values.get("iter") or 0) > 0 and "first_iteration" not in times:
                times["first_iteration"], times["first_iteration_iter"] = now, values["iter"]
            elif event.TYPE == "preview" and "first_preview" not in times:
                times["first_preview"] = now
            if event.TYPE in ("job_finished", "job_failed", "job_cancelled"):
                times["ended"] = now
                times["end"] = event.TYPE
                break
            if timer is None and "first_preview" in times and "first_iteration" in times:
                timer = threading.Timer(train_s, cancel, (job,))
                timer.start()
    if timer is not None:
        timer.join()
    if "cancel_sent" in times and "ended" in times:
        times["cancel_s"] = round(times["ended"] - times["cancel_sent"], 2)
        times["cancel_sent"] = round(times["cancel_sent"], 2)
    return times


class _Timed:
    """The train job's watcher, each call the loop makes to it timed."""

    def __init__(self, inner: Any, every: int) -> None:
        self.inner = inner
        inner.every = every
        self.calls: list[tuple[str, int, float]] = []

    @property
    def latest(self) -> dict[str, Any]:
        return self.inner.latest

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _timed(self, name: str, network: Any, iteration: int) -> None:
        started = time.perf_counter()
        getattr(self.inner, name)(network, iteration)
        self.calls.append((name, iteration, time.perf_counter() - started))

    def step(self, network: Any, iteration: int) -> None:
        self._timed("step", network, iteration)

    def saved(self, network: Any, iteration: int) -> None:
        self._timed("saved", network, iteration)


def _in_loop(ws, preset: str, threads: int, iters: int, every: int) -> dict[str, Any]:
    """Time the loop's calls to the quality watcher, and the iteration rate with and without it."""
    from engine.quality.training import TrainingQuality
    from engine.report import NullReporter
    from engine.train.loop import TrainingRun
    from engine.train.resolve import resolve

    timed: list[_Timed] = []

    def watch(*args: Any) -> _Timed:
        timed.append(_Timed(TrainingQuality(*args), every))
        return timed[-1]

    rates = {}
    for name, factory in (("quiet", None), ("measuring", watch)):
        config = resolve(ws, {"preset": preset, "model": f"loop-{name}", "iters": iters,
                              **({"threads": threads} if threads else {})})
        run = TrainingRun(ws, config, NullReporter(), watch=factory)
        run.setup()
        started = time.perf_counter()
        run.train_to_target()
        rates[name] = iters / (time.perf_counter() - started)
    calls = timed[0].calls
    measuring = [c for c in calls if c[1] > 0 and (c[0] == "saved" or c[1] % every == 0)]
    blocked = sum(c[2] for c in measuring) / max(1, len(measuring))
    total_blocked = sum(c[2] for c in calls)
    seconds_per_interval = DEFAULT_EVERY / rates["measuring"]
    return {"iters": iters, "every": every, "measurements": len(measuring),
            "blocked_s_per_measurement": round(blocked, 3), "blocked_s_total": round(total_blocked, 3),
            "lost_at_default": round(blocked / seconds_per_interval, 4),
            "it_per_s_quiet": round(rates["quiet"], 2), "it_per_s_measuring": round(rates["measuring"], 2)}


def measure(workspace: str | None, preset: str, threads: int, iters: int, every: int, train_s: float,
            make_workspace: Callable[[str | None, Path, int], Any]) -> dict[str, Any]:
    """``make_workspace(path, tmp, size)``: the benchmark's workspace (``engine.bench.train``'s)."""
    tmp = Path(tempfile.mkdtemp(prefix="swapwizard-bench-startup-"))
    try:
        ws = make_workspace(workspace, tmp, 256)
        try:
            timeline = _timeline(ws, preset, threads, train_s)
        finally:
            from engine.client import EngineClient

            try:
                with EngineClient(ws, timeout=10) as client:
                    client.shutdown()
            except Exception:  # noqa: BLE001 - already gone
                pass
        print(f"start-up: {json.dumps(timeline)}", file=sys.stderr, flush=True)  # kept if the rest is stopped
        loop = _in_loop(ws, preset, threads, iters, every)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"preset": preset, **timeline, "loop": loop, "load_average": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count()}


def report(result: dict[str, Any]) -> None:
    def at(key: str) -> str:
        return f"{result[key]:.1f} s" if key in result else "never"

    loop = result["loop"]
    print(f"train start-up, preset {result['preset']} (load average {result['load_average']} on "
          f"{result['cpus']} CPUs)")
    print(f"  submit -> faces loaded {at('faces_loaded')} -> first iteration {at('first_iteration')} "
          f"(metrics at iteration {result.get('first_iteration_iter')}) -> first preview {at('first_preview')}")
    print(f"  cancel returned after {result.get('cancel_s', 'never')} s ({result.get('end')})")
    print(f"  measuring every {loop['every']} of {loop['iters']} iterations: the loop waited "
          f"{loop['blocked_s_per_measurement']} s per measurement = {loop['lost_at_default'] * 100:.2f} % of "
          f"training at the default interval ({DEFAULT_EVERY}); {loop['it_per_s_measuring']} it/s measuring, "
          f"{loop['it_per_s_quiet']} it/s without")
