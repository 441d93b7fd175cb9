"""Compacting the event log (engine.events) in little memory, and keeping each stored event small.

``compact_file(source, cut, out, target, max_line)`` reads the first ``cut`` bytes of a log and writes
the compacted log to ``out``, at most ``target`` bytes (engine.events says what is kept). It holds one
small record per event (seq, type, job, stage, where its line is), never the events themselves: the
lines it keeps are copied from the file as they are, and only the metrics it merges are decoded, a
stretch at a time. (Decoding the whole log at once took the engine from 25 to 204 MB at the default
64 MB bound.) Sizes are known before anything is written, so the result never passes ``target``: as a
last resort the oldest events go too, the last one always stays.

``shrink(event, limit)`` is an event's line cut to at most ``limit`` bytes (its longest texts cut, each
saying how much was left out): the log stores no line over its ``max_line``, so one job's big
parameters or result cannot hold the log over its bound.

Standard library only (the base layer, beside engine.events).
"""

from __future__ import annotations

import json
import re
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from engine.protocol import END_EVENTS

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
#: Remember a file offset every this many events, so a replay from a late seq seeks instead of scanning.
INDEX_EVERY = 256
_SUMMARY_JOBS = re.compile(r"(\d+) older jobs")
_SUMMARY_OUTCOME = re.compile(r"(\d+) (finished|failed|cancelled)\b")


class Entry(NamedTuple):
    """One event of the log as compaction sees it: what decides whether it stays, and where its line is."""

    seq: int
    type: str
    job_id: str
    stage: str  # a progress event's stage ("" for others)
    summary: str  # an earlier compaction's summary message ("" for others)
    time: float
    at: int
    size: int


class Series:
    """One job's metrics events, the bulk of a log: three arrays (8 bytes an event each, not an object)."""

    __slots__ = ("job_id", "seqs", "ats", "sizes")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.seqs, self.ats, self.sizes = array("q"), array("q"), array("q")

    def __len__(self) -> int:
        return len(self.seqs)

    def entry(self, i: int) -> Entry:
        return Entry(self.seqs[i], "metrics", self.job_id, "", "", 0.0, self.ats[i], self.sizes[i])

    def sort(self) -> None:
        if any(a >= b for a, b in zip(self.seqs, self.seqs[1:])):
            order = sorted(range(len(self)), key=self.seqs.__getitem__)
            for name in ("seqs", "ats", "sizes"):
                old = getattr(self, name)
                setattr(self, name, array("q", (old[i] for i in order)))


class Stretch(NamedTuple):
    """Metrics events ``start`` to ``end`` (exclusive) of a series, merged into one when written."""

    series: Series
    start: int
    end: int


@dataclass
class Scanned:
    """A log as compaction sees it: every event but a job's metrics as an entry (seq order), the metrics
    per job, how many events in all, the first one's time and the one with the highest seq."""

    entries: list[Entry] = field(default_factory=list)
    metrics: dict[str, Series] = field(default_factory=dict)
    count: int = 0
    first_time: float = 0.0
    last: Entry | None = None


#: What stays: an entry as it is, a stretch of metrics merged into one, or a new event (the summary).
Kept = Entry | Stretch | dict[str, Any]


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8") + b"\n"


def scan(source: IO[bytes], cut: int) -> Scanned:
    """Every whole, valid line of the first ``cut`` bytes of ``source`` (see ``Scanned``)."""
    entries: list[Entry] = []
    metrics: dict[str, Series] = {}
    source.seek(0)
    offset = 0
    while offset < cut:
        line = source.readline(cut - offset)
        if not line:
            break
        at, offset = offset, offset + len(line)
        if not line.endswith(b"\n"):
            continue  # torn by a crash
        entry = _quick(line, at) or _decoded(line, at)
        if entry is None:
            continue
        if entry.type == "metrics" and entry.job_id:
            series = metrics.get(entry.job_id) or metrics.setdefault(entry.job_id, Series(entry.job_id))
            series.seqs.append(entry.seq)
            series.ats.append(at)
            series.sizes.append(entry.size)
        else:
            entries.append(entry)
    entries.sort(key=lambda e: e.seq)
    for series in metrics.values():
        series.sort()
    heads = [entries[0]] if entries else []
    tails = [entries[-1]] if entries else []
    for series in metrics.values():
        heads.append(series.entry(0))
        tails.append(series.entry(len(series) - 1))
    first = min(heads, key=lambda e: e.seq, default=None)
    if first is not None and first.type == "metrics":  # its time was not read: the nearest entry's will do
        first = entries[0] if entries else first
    return Scanned(entries, metrics, len(entries) + sum(len(s) for s in metrics.values()),
                   first.time if first is not None else 0.0, max(tails, key=lambda e: e.seq, default=None))


#: The head and tail engine.protocol writes every event with: the seq, time and job first, the type
#: last. Metrics, previews and a job's log lines need nothing else from their line, so the many of
#: them are read without decoding the whole line.
_HEAD = re.compile(rb'\{"seq":(\d+),"time":(-?[0-9.]+(?:[eE][-+]?\d+)?),"job_id":(?:null|"([A-Za-z0-9_.-]*)")[,}]')
_TAIL = re.compile(rb',"type":"(metrics|preview|log)"\}\n\Z')


def _quick(line: bytes, at: int) -> Entry | None:
    """The entry of a metrics, preview or job log line as the engine writes them; else None."""
    tail = _TAIL.search(line, max(0, len(line) - 32))
    head = _HEAD.match(line) if tail is not None else None
    if head is None or (tail.group(1) == b"log" and not head.group(3)):
        return None  # anything else, and an engine log (it may be a summary), is decoded
    return Entry(int(head.group(1)), sys.intern(tail.group(1).decode()), sys.intern((head.group(3) or b"").decode()),
                 "", "", float(head.group(2)), at, len(line))


def _decoded(line: bytes, at: int) -> Entry | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("seq"), int) or isinstance(data["seq"], bool):
        return None
    kind, job_id = str(data.get("type")), str(data.get("job_id") or "")
    message = data.get("message")
    summary = message if kind == "log" and not job_id and isinstance(message, str) and message.startswith(SUMMARY) \
        else ""
    when = data.get("time")
    return Entry(data["seq"], sys.intern(kind), sys.intern(job_id), str(data.get("stage")) if kind == "progress" else "",
                 summary, when if isinstance(when, (int, float)) and not isinstance(when, bool) else 0.0, at, len(line))


def select(log: Scanned, target: int, max_line: int) -> list[Kept]:
    """What a compacted log keeps, at most about ``target`` bytes if the caps and summaries get there."""
    metrics_cap, logs_cap, engine_cap, drop_jobs = METRICS_PER_JOB, LOGS_PER_JOB, ENGINE_EVENTS, 0
    finished = len(_ended_jobs(log.entries)) - 1  # the newest outcome always stays
    while True:
        kept = _select(log, metrics_cap, logs_cap, engine_cap, drop_jobs)
        if sum(_estimate(item, max_line) for item in kept) <= target:
            return kept
        if metrics_cap > MIN_METRICS or logs_cap > MIN_LOGS or engine_cap > MIN_LOGS:
            metrics_cap, logs_cap = max(MIN_METRICS, metrics_cap // 2), max(MIN_LOGS, logs_cap // 2)
            engine_cap = max(MIN_LOGS, engine_cap // 2)
            continue
        if drop_jobs >= finished:
            return kept  # only running jobs and the engine's own events are left: ``fit`` decides
        drop_jobs = min(finished, max(1, drop_jobs * 2, finished // 8))


def compact_file(source: IO[bytes], cut: int, out: IO[bytes], target: int, max_line: int) -> dict[str, Any]:
    """Write the compacted first ``cut`` bytes of ``source`` to ``out`` (a new file; at most ``target``
    bytes); returns its seek index, size and event counts before and after."""
    log = scan(source, cut)
    kept = select(log, target, max_line)
    sizes = _write(source, kept, out, max_line)
    first, total = 0, sum(sizes)
    while total > target and first < len(sizes) - 1:  # the last resort: the oldest go, the last stays
        total -= sizes[first]
        first += 1
    if first:  # rare (the estimates of merged metrics were short): write it again without them
        out.seek(0)
        out.truncate()
        kept = kept[first:]
        sizes = _write(source, kept, out, max_line)
    index: list[tuple[int, int]] = [(0, 0)]
    offset = 0
    for item, size in zip(kept, sizes):
        seq = _seq(item)
        if seq // INDEX_EVERY > index[-1][0] // INDEX_EVERY:
            index.append((seq, offset))
        offset += size
    return {"index": index, "size": offset, "before": log.count, "after": len(kept)}


def _write(source: IO[bytes], kept: list[Kept], out: IO[bytes], max_line: int) -> list[int]:
    sizes = []
    for line in _materialise(source, kept, max_line):
        out.write(line)
        sizes.append(len(line))
    return sizes


def _materialise(source: IO[bytes], kept: list[Kept], max_line: int) -> Iterator[bytes]:
    for item in kept:
        if isinstance(item, Entry):
            source.seek(item.at)
            line = source.read(item.size)
            yield line if len(line) <= max_line else shrink(json.loads(line), max_line)
        elif isinstance(item, Stretch):
            yield shrink(_merge_metrics(list(_weighted(source, item))), max_line)
        else:
            yield shrink(item, max_line)


def _weighted(source: IO[bytes], stretch: Stretch) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each event of a stretch with its weight: the seqs it stands for (from the event before it)."""
    seqs, ats, sizes = stretch.series.seqs, stretch.series.ats, stretch.series.sizes
    for i in range(stretch.start, stretch.end):
        source.seek(ats[i])
        yield max(1, seqs[i] - seqs[i - 1]) if i else 1, json.loads(source.read(sizes[i]))


def _seq(item: Kept) -> int:
    if isinstance(item, Entry):
        return item.seq
    if isinstance(item, Stretch):
        return item.series.seqs[item.end - 1]
    return int(item["seq"])


def _estimate(item: Kept, max_line: int) -> int:
    """A kept item's bytes: exact for an entry (or its shrunk size), the last one's for a merged stretch."""
    if isinstance(item, Entry):
        return min(item.size, max_line)
    if isinstance(item, Stretch):
        return min(item.series.sizes[item.end - 1] + 16, max_line)
    return len(encode(item))


def _ended_jobs(entries: list[Entry]) -> list[str]:
    """Ids of the jobs that ended, in the order they ended."""
    return [e.job_id for e in entries if e.type in END_EVENTS]


def _select(log: Scanned, metrics_cap: int, logs_cap: int, engine_cap: int, drop_jobs: int) -> list[Kept]:
    entries = log.entries
    ended = _ended_jobs(entries)
    ended_set = set(ended)
    dropped = set(ended[:drop_jobs])
    started = {e.job_id for e in entries if e.type == "job_started"}
    keep: dict[int, Kept] = {}  # seq -> as kept
    last_progress: dict[tuple[str, str], Entry] = {}
    previews: dict[str, list[Entry]] = {}
    logs: dict[str, list[Entry]] = {}
    engine_events: list[Entry] = []
    outcomes: dict[str, int] = {}
    first_dropped: int | None = None
    summarised = 0
    for entry in entries:
        kind, job_id = entry.type, entry.job_id
        if entry.summary:  # an earlier compaction's summary folds into this one
            found = _SUMMARY_JOBS.search(entry.summary)
            summarised += int(found.group(1)) if found else 0
            for count, name in _SUMMARY_OUTCOME.findall(entry.summary):
                outcomes[f"job_{name}"] = outcomes.get(f"job_{name}", 0) + int(count)
            first_dropped = entry.seq if first_dropped is None else min(first_dropped, entry.seq)
            continue
        if job_id and job_id in dropped:
            if kind in END_EVENTS:
                outcomes[kind] = outcomes.get(kind, 0) + 1
            first_dropped = entry.seq if first_dropped is None else first_dropped
            continue
        if not job_id:
            engine_events.append(entry)
        elif kind == "job_queued" and job_id in ended_set and job_id in started:
            continue  # its job_started says the same
        elif kind == "progress":
            last_progress[(job_id, entry.stage)] = entry
        elif kind == "preview":
            previews.setdefault(job_id, []).append(entry)
        elif kind == "log":
            logs.setdefault(job_id, []).append(entry)
        else:
            keep[entry.seq] = entry
    for entry in engine_events[-engine_cap:]:
        keep[entry.seq] = entry
    for entry in last_progress.values():
        keep[entry.seq] = entry
    for job_id, items in previews.items():
        for entry in items[-(1 if job_id in ended_set else PREVIEWS_PER_JOB):]:
            keep[entry.seq] = entry
    for items in logs.values():
        for entry in items[-logs_cap:]:
            keep[entry.seq] = entry
    for job_id, series in log.metrics.items():
        if job_id in dropped:
            first_dropped = series.seqs[0] if first_dropped is None else min(first_dropped, series.seqs[0])
            continue
        for item in thin_metrics(series, metrics_cap, min(METRICS_RECENT, metrics_cap // 2)):
            keep[_seq(item)] = item
    if outcomes and first_dropped is not None:  # the seq of a dropped event is free
        said = ", ".join(f"{count} {kind.removeprefix('job_')}" for kind, count in sorted(outcomes.items()))
        keep[first_dropped] = {"type": "log", "seq": first_dropped, "time": log.first_time, "job_id": None,
                               "level": "info", "message": f"{SUMMARY} {len(dropped) + summarised} older jobs "
                                                           f"are summarised here ({said})."}
    if log.last is not None:
        keep.setdefault(log.last.seq, log.last)  # the last seq stays, so a restart continues after it
    return [keep[seq] for seq in sorted(keep)]


def thin_metrics(series: Series, cap: int, recent: int) -> list[Entry | Stretch]:
    """At most ``cap`` metrics events: the latest ``recent`` as they are, the older ones merged into
    ``cap - recent`` stretches of equal length in seq (float values averaged, weighted by the seqs each
    event stands for; the stretch's last event gives the seq, time and other values). Compacting again
    re-cuts the same way, so the curve keeps an even grain from its first point to its last."""
    count = len(series)
    if count <= cap:
        return [series.entry(i) for i in range(count)]
    recent = max(0, min(recent, cap - 1))
    old = count - recent
    slots = cap - recent
    seqs = series.seqs
    lo, hi = seqs[0], seqs[old - 1]
    kept: list[Entry | Stretch] = []
    start, bucket = 0, 0
    for i in range(1, old + 1):
        here = min(slots - 1, (seqs[i] - lo) * slots // (hi - lo + 1)) if i < old else -1
        if here != bucket:  # seqs rise, so a stretch is a run of one bucket
            kept.append(series.entry(start) if i - start == 1 else Stretch(series, start, i))
            start, bucket = i, here
    return kept + [series.entry(i) for i in range(old, count)]


def _merge_metrics(group: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    last = group[-1][1]
    values = dict(last.get("values") or {})
    for key, value in values.items():
        if not isinstance(value, float):
            continue
        pairs = [(w, (e.get("values") or {}).get(key)) for w, e in group]
        pairs = [(w, x) for w, x in pairs if isinstance(x, float)]
        total = sum(w for w, _ in pairs)
        values[key] = round(sum(w * x for w, x in pairs) / total, 6)
    return {**last, "values": values}


def shrink(event: dict[str, Any], limit: int) -> bytes:
    """``event`` encoded in at most ``limit`` bytes: its longest texts cut (each saying by how much), or,
    when no text is left to cut, only what identifies it (type, seq, time, job)."""
    line = encode(event)
    for _ in range(64):
        if len(line) <= limit:
            return line
        found = _longest_text(event)
        if found is None:
            break
        holder, key, text = found
        keep = max(0, len(text) - (len(line) - limit) - 64)
        holder[key] = f"{text[:keep]} [... {len(text) - keep:,} characters cut: the event log keeps lines short]"
        line = encode(event)
    slim = {key: event[key] for key in ("type", "seq", "time", "job_id") if key in event}
    return encode({**slim, "cut": True})


def _longest_text(data: Any) -> tuple[Any, Any, str] | None:
    """The container, key and value of the longest string in ``data`` worth cutting (over 128 characters)."""
    best: tuple[Any, Any, str] | None = None
    stack = [data]
    while stack:
        value = stack.pop()
        pairs = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in pairs:
            if isinstance(child, str):
                if len(child) > 128 and (best is None or len(child) > len(best[2])) and key not in ("type", "job_id"):
                    best = (value, key, child)
            elif isinstance(child, (dict, list)):
                stack.append(child)
    return best
