"""The engine's log, bounded: rotated by size, with a message repeated over and over written a few times.

The launcher points a detached engine's stdout and stderr at ``.swapwizard/logs/engine.log`` (so a
failure at start-up lands there). Once the engine holds its workspace's lock it takes over that file:
Python logging goes to a size-rotated handler on it (``LOG_MAX_BYTES`` each, ``LOG_BACKUPS`` older
copies: at most about 15 MB in all), and the process's stdout and stderr (its own, and those of its
job processes, which inherit them: a job's traceback, a library's print) go through a pipe into the
same handler. The same message from the same place is written ``REPEAT_BURST`` times per
``REPEAT_WINDOW_S``; the rest are counted, and the next one written says how many were left out. A
client that sends a bad request a thousand times a second costs the log a few lines a minute.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import time

from engine.workspace import Workspace

LOG_MAX_BYTES = 5 << 20
LOG_BACKUPS = 2
REPEAT_BURST = 5
REPEAT_WINDOW_S = 60.0
FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class RepeatFilter(logging.Filter):
    """Lets ``REPEAT_BURST`` records of one kind (logger, level, message template) per window through."""

    def __init__(self, burst: int = REPEAT_BURST, window_s: float = REPEAT_WINDOW_S) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._seen: dict[tuple, list] = {}  # key -> [window start, count, left out]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:200], record.exc_info[0] if record.exc_info else None)
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] > self.window_s:
                if len(self._seen) > 10_000:
                    self._seen.clear()
                left_out = entry[2] if entry else 0
                self._seen[key] = [now, 1, 0]
                if left_out:
                    record.msg = f"{record.msg} [{left_out} more like this were left out of the log]"
                return True
            entry[1] += 1
            if entry[1] <= self.burst:
                return True
            entry[2] += 1
            return False


def setup(ws: Workspace) -> None:
    """Send the engine's logging (and, when detached, its stdout/stderr) to the bounded engine log."""
    logging.raiseExceptions = False  # a log write failing (full disk) must not print, which would log again
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    detached = _is_engine_log(ws, 2)
    if detached:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            ws.engine_log_path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    else:  # run in the foreground (a supervisor, a terminal): it owns the output
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RepeatFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if detached:
        _capture_output(logging.getLogger("engine.output"))


def _is_engine_log(ws: Workspace, fd: int) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(ws.engine_log_path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _capture_output(logger: logging.Logger) -> None:
    """Replace fds 1 and 2 by a pipe whose lines go to ``logger`` (job processes inherit them)."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                text = raw.decode("utf-8", errors="replace").rstrip()
                if text:
                    logger.info(text)

    threading.Thread(target=pump, name="engine-output", daemon=True).start()
