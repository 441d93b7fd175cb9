"""The workspace's event log: every event the engine emits, one JSON line each, in seq order.

A client that connects later, or after the engine restarted, replays it from any ``seq``. A line cut
short by a crash is skipped on replay and never breaks the sequence.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.protocol import Event, make_event

log = logging.getLogger("engine.events")

#: Remember a file offset every this many events, so a replay from a late seq seeks instead of scanning.
INDEX_EVERY = 256


class EventLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_seq = 0
        self._index: list[tuple[int, int]] = [(0, 0)]
        self._recover()
        self._file = open(self.path, "ab")
        self.write_errors = 0

    def _recover(self) -> None:
        """Find the last seq and build the seek index; end a torn last line so appends start clean."""
        if not self.path.is_file():  # missing, or not a regular file (never scan a device)
            return
        offset = 0
        torn = False
        with open(self.path, "rb") as handle:
            for line in handle:
                seq = seq_of(line)
                if seq is not None and seq > self.last_seq:
                    if seq // INDEX_EVERY > self._index[-1][0] // INDEX_EVERY:
                        self._index.append((seq, offset))
                    self.last_seq = seq
                offset += len(line)
                torn = not line.endswith(b"\n")
        if torn:
            with open(self.path, "ab") as handle:
                handle.write(b"\n")

    def append(self, type_name: str, **fields: Any) -> tuple[Event, bytes]:
        """Create the next event, write it to the log, and return it with its encoded line."""
        self.last_seq += 1
        event = make_event(type_name, self.last_seq, **fields)
        line = event.encode()
        try:
            offset = self._file.tell()
            self._file.write(line)
            self._file.flush()
            if self.last_seq % INDEX_EVERY == 0:
                self._index.append((self.last_seq, offset))
        except OSError as exc:  # a full or read-only disk must not stop the engine
            self.write_errors += 1
            if self.write_errors == 1 or self.write_errors % 1000 == 0:
                log.error("cannot write the event log (%s); events still go to connected clients", exc)
            self._reopen()
        return event, line

    def _reopen(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        try:
            self._file = open(self.path, "ab")
        except OSError:
            self._file = open(os.devnull, "ab")

    def replay(self, from_seq: int, to_seq: int) -> Iterator[bytes]:
        """Lines with ``from_seq <= seq <= to_seq`` in order (blocking I/O: run it in a thread)."""
        if from_seq > to_seq or not self.path.is_file():
            return
        start = 0
        for seq, offset in self._index:
            if seq < from_seq:
                start = offset
            else:
                break
        try:
            handle = open(self.path, "rb")
        except OSError:
            return
        with handle:
            handle.seek(start)
            for line in handle:
                seq = seq_of(line)
                if seq is None or seq < from_seq:
                    continue
                if seq > to_seq:
                    break
                yield line if line.endswith(b"\n") else line + b"\n"

    def replay_batch(self, from_seq: int, to_seq: int, limit: int) -> tuple[list[bytes], int]:
        """Up to ``limit`` lines of ``replay(from_seq, to_seq)`` and the seq to continue from (blocking)."""
        lines: list[bytes] = []
        next_seq = to_seq + 1
        for line in self.replay(from_seq, to_seq):
            lines.append(line)
            if len(lines) >= limit:
                next_seq = (seq_of(line) or to_seq) + 1
                break
        return lines, next_seq

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass


def seq_of(line: bytes) -> int | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    seq = data.get("seq") if isinstance(data, dict) else None
    return seq if isinstance(seq, int) else None


def read_events(path: Path, from_seq: int = 0) -> Iterator[dict[str, Any]]:
    """Events of a log as dicts, skipping torn lines (for tools and tests that read the file)."""
    if not path.is_file():
        return
    try:
        handle = open(path, "rb")
    except OSError:
        return
    with handle:
        for line in handle:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("seq"), int) and data["seq"] >= from_seq:
                yield data
