"""What the benchmarks share: a stopwatch, the median of repeated runs, and printing the figures."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any


class Stopwatch:
    """``with Stopwatch() as watch: ...``, then ``watch.seconds`` (wall clock) and ``watch.cpu_seconds``
    (this process's CPU time, every thread)."""

    seconds = 0.0
    cpu_seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu


def median_time(action: Callable[[], Any], repeat: int) -> float:
    """The median wall-clock seconds of ``repeat`` calls of ``action``."""
    times = []
    for _ in range(repeat):
        with Stopwatch() as watch:
            action()
        times.append(watch.seconds)
    return statistics.median(times)


def show(figures: dict[str, Any], as_json: bool, line: str = "{key:<30} {value}") -> None:
    """Print the figures as one JSON object, or one ``line`` (a format of ``key`` and ``value``) each."""
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        print(line.format(key=key, value=value))
