"""The workspace's event log: every event the engine emits, one JSON line each, in seq order.

A client that connects later, or after the engine restarted, replays it from any ``seq``. A line cut
short by a crash is skipped on replay and never breaks the sequence.

The log stays under a fixed size however long the engine runs (``[engine] events_max_mb``): when it
grows past three quarters of that, it is compacted into a new file that atomically replaces it (a
crash at any moment leaves the old log or the new one, never a part). The work (reading and thinning
tens of MB: seconds) runs on a thread while the engine goes on appending; the events written
meanwhile are copied after the compacted ones when the new file takes the old one's place. Should
the log reach the bound before the thread is done, appending waits for it. Compaction keeps seq numbers (the sequence gets
gaps, which replay and clients take as they come) and keeps, per job:

- its start (``job_started``, or ``job_queued`` for a job that never started) and how it ended (every
  job's outcome, with its result);
- its metrics thinned the way the loss history is: the latest ``METRICS_RECENT`` as they came, older
  ones merged in neighbouring pairs (numbers averaged, the later event's seq and iteration kept) until
  ``METRICS_PER_JOB`` remain, so the whole loss curve survives at a coarser grain;
- the last ``progress`` of each stage, its last previews, and its last log lines.

If that is still over half the bound (thousands of jobs), the caps halve; as a last resort the oldest
finished jobs are summarised in one ``log`` event (how many finished, failed, were cancelled).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.atomic import default_mode, fsync_dir
from engine.protocol import END_EVENTS, Event, make_event

log = logging.getLogger("engine.events")

#: Remember a file offset every this many events, so a replay from a late seq seeks instead of scanning.
INDEX_EVERY = 256
#: Where a replay goes on: which file (its (device, inode) and compaction count) and the next line's offset.
Resume = tuple[tuple[tuple[int, int] | None, int], int]
#: The bound when none is given (the ``[engine] events_max_mb`` default).
DEFAULT_MAX_BYTES = 64 << 20
#: Metrics events a job keeps after compaction, and how many of its latest are never merged.
METRICS_PER_JOB = 4000
METRICS_RECENT = 256
#: Previews and log lines a job keeps (a finished job keeps one preview).
PREVIEWS_PER_JOB = 4
LOGS_PER_JOB = 200
#: Engine-wide events kept: ``engine_started`` and logs without a job.
ENGINE_EVENTS = 500
#: The smallest caps the halving goes down to before whole jobs are summarised.
MIN_METRICS = 64
MIN_LOGS = 8
#: How the ``log`` event that stands for the jobs compaction left out begins.
SUMMARY = "The event log was compacted:"
_SUMMARY_JOBS = re.compile(r"(\d+) older jobs")
_SUMMARY_OUTCOME = re.compile(r"(\d+) (finished|failed|cancelled)\b")


class EventLog:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max(int(max_bytes), 64 << 10)
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
        size = offset + len(line)
        if self._worker is not None and (not self._worker.is_alive() or size >= self.max_bytes):
            self._finish()  # done, or the bound is reached: wait for it
        elif self._worker is None and size > self._compact_at and self._start() and size >= self.max_bytes:
            self._finish()  # at the bound already: compact before the next event
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
                data = handle.read(cut)
            lines = [line for line in data.splitlines(keepends=True) if line.endswith(b"\n")]
            del data
            kept = compact_lines(lines, self.max_bytes // 2)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            index: list[tuple[int, int]] = [(0, 0)]
            offset = 0
            with os.fdopen(fd, "wb") as out:
                for line in kept:
                    seq = seq_of(line) or 0
                    if seq // INDEX_EVERY > index[-1][0] // INDEX_EVERY:
                        index.append((seq, offset))
                    out.write(line)
                    offset += len(line)
            self._done = {"tmp": tmp, "cut": cut, "index": index, "size": offset, "before": len(lines),
                          "after": len(kept)}
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


def compact_lines(lines: list[bytes], target_bytes: int) -> list[bytes]:
    """The lines of a compacted log (see the module's doc), at most about ``target_bytes`` if it can."""
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("seq"), int):
            events.append(data)
    events.sort(key=lambda e: e["seq"])
    metrics_cap, logs_cap, engine_cap, drop_jobs = METRICS_PER_JOB, LOGS_PER_JOB, ENGINE_EVENTS, 0
    while True:
        kept = _compact(events, metrics_cap, logs_cap, engine_cap, drop_jobs)
        out = [_encode(event) for event in kept]
        size = sum(len(line) for line in out)
        if size <= target_bytes:
            return out
        if metrics_cap > MIN_METRICS or logs_cap > MIN_LOGS or engine_cap > MIN_LOGS:
            metrics_cap, logs_cap = max(MIN_METRICS, metrics_cap // 2), max(MIN_LOGS, logs_cap // 2)
            engine_cap = max(MIN_LOGS, engine_cap // 2)
            continue
        finished = len(_ended_jobs(events)) - 1  # the newest outcome always stays
        if drop_jobs >= finished:
            return out  # only running jobs and the engine's own events are left: keep them
        drop_jobs = min(finished, max(1, drop_jobs * 2, finished // 8))


def _encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8") + b"\n"


def _ended_jobs(events: list[dict[str, Any]]) -> list[str]:
    """Ids of the jobs that ended, in the order they ended."""
    return [e.get("job_id") or "" for e in events if e.get("type") in END_EVENTS]


def _compact(events: list[dict[str, Any]], metrics_cap: int, logs_cap: int, engine_cap: int,
             drop_jobs: int) -> list[dict[str, Any]]:
    ended = _ended_jobs(events)
    ended_set = set(ended)
    dropped = set(ended[:drop_jobs])
    started = {e.get("job_id") for e in events if e.get("type") == "job_started"}
    keep: dict[int, dict[str, Any]] = {}  # seq -> event as kept
    metrics: dict[str, list[dict[str, Any]]] = {}
    last_progress: dict[tuple[str, str], dict[str, Any]] = {}
    previews: dict[str, list[dict[str, Any]]] = {}
    logs: dict[str, list[dict[str, Any]]] = {}
    engine_events: list[dict[str, Any]] = []
    outcomes: dict[str, int] = {}
    first_dropped: int | None = None
    summarised = 0
    for event in events:
        kind, job_id = event.get("type"), event.get("job_id") or ""
        if kind == "log" and not job_id and str(event.get("message", "")).startswith(SUMMARY):
            said = str(event["message"])  # an earlier compaction's summary folds into this one
            summarised += int(_SUMMARY_JOBS.search(said).group(1)) if _SUMMARY_JOBS.search(said) else 0
            for count, name in _SUMMARY_OUTCOME.findall(said):
                outcomes[f"job_{name}"] = outcomes.get(f"job_{name}", 0) + int(count)
            first_dropped = event["seq"] if first_dropped is None else min(first_dropped, event["seq"])
            continue
        if job_id and job_id in dropped:
            if kind in END_EVENTS:
                outcomes[kind] = outcomes.get(kind, 0) + 1
            first_dropped = event["seq"] if first_dropped is None else first_dropped
            continue
        if not job_id:
            engine_events.append(event)
        elif kind == "job_queued" and job_id in ended_set and job_id in started:
            continue  # its job_started says the same
        elif kind == "metrics":
            metrics.setdefault(job_id, []).append(event)
        elif kind == "progress":
            last_progress[(job_id, str(event.get("stage")))] = event
        elif kind == "preview":
            previews.setdefault(job_id, []).append(event)
        elif kind == "log":
            logs.setdefault(job_id, []).append(event)
        else:
            keep[event["seq"]] = event
    for event in engine_events[-engine_cap:]:
        keep[event["seq"]] = event
    for event in last_progress.values():
        keep[event["seq"]] = event
    for job_id, items in previews.items():
        for event in items[-(1 if job_id in ended_set else PREVIEWS_PER_JOB):]:
            keep[event["seq"]] = event
    for items in logs.values():
        for event in items[-logs_cap:]:
            keep[event["seq"]] = event
    for items in metrics.values():
        for event in thin_metrics(items, metrics_cap, min(METRICS_RECENT, metrics_cap // 2)):
            keep[event["seq"]] = event
    if outcomes and first_dropped is not None:  # the seq of a dropped event is free
        said = ", ".join(f"{count} {kind.removeprefix('job_')}" for kind, count in sorted(outcomes.items()))
        keep[first_dropped] = {"type": "log", "seq": first_dropped, "time": events[0].get("time", 0.0),
                               "job_id": None, "level": "info",
                               "message": f"{SUMMARY} {len(dropped) + summarised} older jobs are summarised "
                                          f"here ({said})."}
    if events:
        keep.setdefault(events[-1]["seq"], events[-1])  # the last seq stays, so a restart continues after it
    return [keep[seq] for seq in sorted(keep)]


def thin_metrics(items: list[dict[str, Any]], cap: int, recent: int) -> list[dict[str, Any]]:
    """At most ``cap`` metrics events: the latest ``recent`` as they are, the older ones merged into
    ``cap - recent`` stretches of equal length in seq (float values averaged, weighted by the seqs each
    event stands for; the stretch's last event gives the seq, time and other values). Compacting again
    re-cuts the same way, so the curve keeps an even grain from its first point to its last."""
    if len(items) <= cap:
        return list(items)
    recent = max(0, min(recent, cap - 1))
    old, tail = items[: len(items) - recent], items[len(items) - recent:]
    slots = cap - recent
    lo, hi = old[0]["seq"], old[-1]["seq"]
    groups: list[list[tuple[int, dict[str, Any]]]] = []
    previous, last_bucket = lo - 1, -1
    for event in old:
        bucket = min(slots - 1, (event["seq"] - lo) * slots // (hi - lo + 1))
        weight = max(1, event["seq"] - previous)
        previous = event["seq"]
        if bucket != last_bucket:
            groups.append([])
            last_bucket = bucket
        groups[-1].append((weight, event))
    return [_merge_metrics(group) for group in groups] + tail


def _merge_metrics(group: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    last = group[-1][1]
    if len(group) == 1:
        return last
    values = dict(last.get("values") or {})
    for key, value in values.items():
        if not isinstance(value, float):
            continue
        pairs = [(w, (e.get("values") or {}).get(key)) for w, e in group]
        pairs = [(w, x) for w, x in pairs if isinstance(x, float)]
        total = sum(w for w, _ in pairs)
        values[key] = round(sum(w * x for w, x in pairs) / total, 6)
    return {**last, "values": values}


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
