"""SIGTERM asks training to save and stop at its next sync point instead of dying mid-step."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[Callable[[], bool]]:
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set  # signals reach only the main thread; cancel still works
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: flag.set())
    try:
        yield flag.is_set
    finally:
        signal.signal(signal.SIGTERM, previous)
