"""A diagnostic job that only counts, with progress events: for tests and for checking an engine."""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    count: int = 10
    #: Seconds to sleep per step (0 busy-loops instead, to load a CPU core).
    delay: float = 0.05
    #: Raise an error at this step (to test failure handling); -1 never.
    fail_at: int = -1


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    for i in range(params.count):
        report.check_cancelled()
        if i == params.fail_at:
            raise RuntimeError(f"diagnostic failure at step {i}")
        if params.delay > 0:
            time.sleep(params.delay)
        else:
            deadline = time.perf_counter() + 0.01
            while time.perf_counter() < deadline:
                pass
        report.progress("count", i + 1, params.count, unit="steps")
    report.log(f"counted to {params.count}")
    return {"counted": params.count}


JOB = JobKind(kind="diagnostic_count", params=Params, run=run, stoppable=True, label="Counting (a diagnostic)",
              consent=False)
