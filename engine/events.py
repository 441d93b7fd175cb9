"""The workspace's event log: every event the engine emits, one JSON line each, in seq order.

A client that connects later, or after the engine restarted, replays it from any ``seq``. A line cut
short by a crash is skipped on replay and never breaks the sequence.

The log never passes a fixed size however long the engine runs (``[engine] events_max_mb``): when it
grows past three quarters of that, it is compacted into a new file that atomically replaces it (a
crash at any moment leaves the old log or the new one, never a part). The work (reading and thinning
tens of MB: seconds, in little memory: engine.compaction) runs on a thread while the engine goes on
appending; the events written meanwhile are copied after the compacted ones when the new file takes
the old one's place. An event that would take the log past its bound waits for that (or for a
compaction done there and then), and no stored line is over a sixteenth of the bound (a bigger event
is stored with its longest texts cut; clients following live get it whole). Compaction keeps seq
numbers (the sequence gets gaps, which replay and clients take as they come) and keeps, per job:

- its start (``job_started``, or ``job_queued`` for a job that never started) and how it ended (every
  job's outcome, with its result);
- its metrics thinned the way the loss history is: the latest ``METRICS_RECENT`` as they came, older
  ones merged in neighbouring pairs (numbers averaged, the later event's seq and iteration kept) until
  ``METRICS_PER_JOB`` remain, so the whole loss curve survives at a coarser grain;
- the last ``progress`` of each stage, its last previews, and its last log lines.

If that is still over half the bound (thousands of jobs), the caps halve; then the oldest finished
jobs are summarised in one ``log`` event (how many finished, failed, were cancelled); as a last
resort the oldest events go, so the compacted log is at most half the bound.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.atomic import default_mode, fsync_dir
from engine.compaction import INDEX_EVERY, compact_file, shrink
from engine.protocol import Event, make_event

log = logging.getLogger("engine.events")

#: Where a replay goes on: which file (its (device, inode) and compaction count) and the next line's offset.
Resume = tuple[tuple[tuple[int, int] | None, int], int]
#: The bound when none is given (the ``[engine] events_max_mb`` default).
DEFAULT_MAX_BYTES = 64 << 20
#: The longest line the log stores, as a share of its bound (longer events are stored cut: compaction).
MAX_LINE_SHARE = 16


class EventLog:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max(int(max_bytes), 64 << 10)
        self.max_line = self.max_bytes // MAX_LINE_SHARE
        self.last_seq = 0
        self._index: list[tuple[int, int]] = [(0, 0)]
        self._recover()
        self._indexed = (_inode(self.path), self._index)
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a compaction killed midway
            stale.unlink(missing_ok=True)
        self._file = open(self.path, "ab")
        self.write_errors = 0
        self.compactions = 0
        self._start_at = self.max_bytes * 3 // 4
        self._compact_at = self._start_at
        self._worker: threading.Thread | None = None
        self._done: dict[str, Any] = {}

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
        """Create the next event, write it to the log, and return it with its encoded line (whole: the
        log stores a line over ``max_line`` cut, clients get it as it is)."""
        self.last_seq += 1
        event = make_event(type_name, self.last_seq, **fields)
        line = event.encode()
        stored = line if len(line) <= self.max_line else shrink(json.loads(line), self.max_line)
        try:
            offset = self._file.tell()
            if offset + len(stored) > max(self.max_bytes, self._compact_at):
                offset = self._make_room(len(stored))
            self._file.write(stored)
            self._file.flush()
            if self.last_seq % INDEX_EVERY == 0:
                self._index.append((self.last_seq, offset))
        except OSError as exc:  # a full or read-only disk must not stop the engine
            self.write_errors += 1
            if self.write_errors == 1 or self.write_errors % 1000 == 0:
                log.error("cannot write the event log (%s); events still go to connected clients", exc)
            self._reopen()
            return event, line
        size = offset + len(stored)
        if self._worker is not None and not self._worker.is_alive():
            self._finish()
        elif self._worker is None and size > self._compact_at:
            self._start()
        return event, line

    def _make_room(self, need: int) -> int:
        """The next line would pass the bound: wait for the compaction under way, or compact now; the
        offset to write at. (Compacted to half the bound, plus what came meanwhile: under 3/4 of it.)"""
        if self._worker is not None:
            self._finish()
        if self._file.tell() + need > self.max_bytes and self._start():
            self._finish()
        return self._file.tell()

    def _reopen(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        try:
            self._file = open(self.path, "ab")
        except OSError:
            self._file = open(os.devnull, "ab")

    def compact(self) -> bool:
        """Compact now and wait for it (see the module's doc); False if the log was left as it is."""
        if self._worker is None and not self._start():
            return False
        return self._finish()

    def _start(self) -> bool:
        """Start compacting what the log holds now on a thread; appends go on meanwhile."""
        if self.path.is_symlink() or not self.path.is_file():
            return False  # never replace what the path points to
        try:
            self._file.flush()
            cut = self._file.tell()
        except OSError:
            return False
        self._done = {}
        self._worker = threading.Thread(target=self._compact_to_temp, args=(cut,), name="events-compaction",
                                        daemon=True)
        self._worker.start()
        return True

    def _compact_to_temp(self, cut: int) -> None:
        """The thread: the compacted first ``cut`` bytes of the log, in a temp file beside it."""
        tmp = None
        try:
            with open(self.path, "rb") as handle:
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
                with os.fdopen(fd, "w+b") as out:
                    done = compact_file(handle, cut, out, self.max_bytes // 2, self.max_line)
            self._done = {"tmp": tmp, "cut": cut, **done}
        except BaseException as exc:  # noqa: BLE001 - said in the log; the old file stays, whole
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            self._done = {"error": exc, "cut": cut}

    def _finish(self) -> bool:
        """On the appending thread: put the compacted file (and what was appended meanwhile) in place."""
        assert self._worker is not None
        self._worker.join()
        self._worker = None
        done, self._done = self._done, {}
        tmp = done.get("tmp")
        try:
            if "error" in done:
                raise done["error"]
            self._file.flush()
            index, offset = done["index"], done["size"]
            with open(self.path, "rb") as handle, open(tmp, "ab") as out:
                handle.seek(done["cut"])
                for line in handle:  # the events appended while the thread worked (whole lines: ours)
                    seq = seq_of(line) or 0
                    if seq // INDEX_EVERY > index[-1][0] // INDEX_EVERY:
                        index.append((seq, offset))
                    out.write(line)
                    offset += len(line)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, default_mode())
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
        except (OSError, ValueError) as exc:  # no room for the new file: the old one stays, whole
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            with contextlib.suppress(OSError):
                self._compact_at = 2 * self.path.stat().st_size
            log.error("cannot compact the event log (%s); it keeps growing until there is room", exc)
            return False
        self._reopen()
        self._index = index
        self._indexed = (_inode(self.path), index)
        self.compactions += 1
        # Next time: at three quarters of the bound, or halfway from here to it if compaction could not
        # bring the log that far down (so that it never runs after every event).
        self._compact_at = max(self._start_at, (offset + self.max_bytes) // 2)
        log.info("compacted the event log: %d events -> %d, %d bytes", done["before"], done["after"], offset)
        return True

    def replay(self, from_seq: int, to_seq: int) -> Iterator[bytes]:
        """Lines with ``from_seq <= seq <= to_seq`` in order (blocking I/O: run it in a thread)."""
        for line, _ in self._lines(from_seq, to_seq):
            yield line

    def _lines(self, from_seq: int, to_seq: int, resume: Resume | None = None) -> Iterator[tuple[bytes, Resume]]:
        """``replay``'s lines, each with where the next one starts; ``resume`` (from an earlier line)
        seeks straight there while the file is the same one (not compacted since)."""
        if from_seq > to_seq or not self.path.is_file():
            return
        try:
            handle = open(self.path, "rb")
        except OSError:
            return
        # Which file this is: its inode, and how many compactions came before (an inode can be reused).
        opened = (_fd_inode(handle.fileno()), self.compactions)
        inode, index = self._indexed  # the index of the file opened, or none (compacted meanwhile)
        start = 0
        if resume is not None and resume[0] == opened:
            start = resume[1]
        elif inode == opened[0]:
            for seq, offset in index:
                if seq < from_seq:
                    start = offset
                else:
                    break
        with handle:
            handle.seek(start)
            offset = start
            for line in handle:
                offset += len(line)
                seq = seq_of(line)
                if seq is None or seq < from_seq:
                    continue
                if seq > to_seq:
                    break
                yield (line if line.endswith(b"\n") else line + b"\n"), (opened, offset)

    def replay_batch(self, from_seq: int, to_seq: int, max_bytes: int,
                     resume: Resume | None = None) -> tuple[list[bytes], int, Resume | None]:
        """Lines of ``replay(from_seq, to_seq)`` until they hold ``max_bytes`` (at least one line), the seq
        to continue from and where in the file (blocking). Batched by bytes, not lines: the log's events
        range from 100 bytes to a megabyte, and a replay must hold little whatever they are."""
        lines: list[bytes] = []
        size = 0
        next_seq, where = to_seq + 1, None
        for line, after in self._lines(from_seq, to_seq, resume):
            lines.append(line)
            size += len(line)
            if size >= max_bytes:
                next_seq, where = (seq_of(line) or to_seq) + 1, after
                break
        return lines, next_seq, where

    def close(self) -> None:
        if self._worker is not None:
            self._finish()
        try:
            self._file.close()
        except OSError:
            pass


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _fd_inode(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


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
