"""Extract one side of a workspace: aligned crops, face records, tracks and their thumbnails.

``extract_side(ws, side, settings, report)`` is what the ``extract`` job runs per side:

1. probe the side's video or image folder (a clear error for a corrupt, empty or faceless input);
2. if the side was extracted already with the same settings and source, do nothing (``force``
   redoes it; ``track`` only re-chooses the target person, which takes no time);
3. if an earlier run of the same settings was interrupted, resume it from its last checkpoint;
4. run the pipeline (``engine.faces.pipeline``), then link up the result: choose the target track,
   write a thumbnail per track, write ``alignments.jsonl`` atomically, drop the work folder.

Work files live in ``data_<side>/.extract/`` (``settings.json``, ``partial.jsonl``,
``checkpoint.json``); an alignments file exists only once a side is complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine import settings as declared
from engine.atomic import atomic_write_json, read_json
from engine.errors import UserError
from engine.faces.records import FaceRecord, read_alignments, write_alignments
from engine.media.probe import MediaInfo, probe
from engine.report import Reporter
from engine.workspace import Workspace

#: The [extract] settings (declared, with ranges and help, in engine/settings.py), checked when made.
ExtractSettings = declared.values_class("ExtractSettings", "extract", module=__name__)


def _fingerprint(source: Path, info: MediaInfo) -> dict[str, Any]:
    stat = source.stat()
    return {"name": source.name, "bytes": stat.st_size if source.is_file() else len(info.images),
            "mtime": int(stat.st_mtime), "frames": info.frame_count}


def extract_side(ws: Workspace, side: str, settings: ExtractSettings, report: Reporter,
                 force: bool = False, track: int | None = None) -> dict[str, Any]:
    settings.check()
    source = ws.source(side)
    if source is None:
        raise UserError(f"The workspace has no {side} footage.",
                        f"Add it with: swapwizard sources {ws.root} --{side} PATH (a video or a folder of images).")
    info = probe(source)
    side_dir = ws.side_dir(side)
    work_dir = side_dir / ".extract"
    wanted = {"settings": asdict(settings), "source": _fingerprint(source, info)}
    stage = f"extract_{side}"

    if not force and ws.alignments_path(side).is_file():
        header, records = read_alignments(ws.alignments_path(side))
        if header.get("from_faceset"):
            if track is not None:
                return _retarget(ws, side, header, records, track)
            report.log(f"{side}: faces come from the face set {header['from_faceset']}; not extracting "
                       "(use --force to extract from the footage instead).")
            return {"side": side, "skipped": True, "faces": len(records), "target_track": header.get("target_track")}
        if header.get("complete") and header.get("settings") == wanted["settings"] and \
                header.get("source", {}).get("fingerprint") == wanted["source"]:
            if track is not None and track != header.get("target_track"):
                return _retarget(ws, side, header, records, track)
            report.log(f"{side}: already extracted with these settings; skipped (use --force to redo).")
            return {"side": side, "skipped": True, "faces": len(records), "target_track": header.get("target_track")}
        cleaned = sum(1 for r in records if not (side_dir / r.file).is_file())
        if cleaned or (side_dir / "aligned_trash").exists():
            # Settings or footage changed since; redoing would throw away the user's clean-up.
            raise UserError(f"{side} was extracted with other settings or footage, and its face set has been "
                            f"cleaned since ({cleaned} crops deleted or sorted out).",
                            f"Add --force to extract {side} again (the cleaned set is replaced), or put the "
                            "old settings back in workspace.toml.")

    resume = read_json(work_dir / "checkpoint.json")
    if force or read_json(work_dir / "settings.json") != wanted or not isinstance(resume, dict):
        _clear(side_dir)
        work_dir.mkdir(parents=True)
        atomic_write_json(work_dir / "settings.json", wanted)
        resume = None
    else:
        report.log(f"{side}: resuming at frame {resume['next_frame']} of {info.frame_count}.")

    # Heavy imports only now: mediapipe takes a second to load.
    from engine.faces.detect import FaceFinder
    from engine.faces.pipeline import WriteOptions, run_pipeline
    from engine.faces.track import Tracker, TrackOptions

    finder = FaceFinder(settings.min_confidence, settings.min_presence)
    tracker = Tracker(finder, TrackOptions(**asdict(settings), max_gap=max(5, round((info.fps or 25) * 1.0)),
                                           images=info.kind == "images"))
    counts: dict[str, int] = {}
    start, partial_bytes = 0, 0
    if resume:
        tracker.restore(resume["tracker"])
        counts = dict(resume["counts"])
        start, partial_bytes = resume["next_frame"], resume["partial_bytes"]
    try:
        timing = run_pipeline(source, side_dir, work_dir, tracker,
                              WriteOptions(settings.face_type, settings.size, settings.crop_format,
                                           settings.jpeg_quality, settings.write_frames),
                              start, info.frame_count, 25.0, counts, report, stage, partial_bytes)
    finally:
        finder.close()
    records = _read_partial(work_dir / "partial.jsonl")
    if not records:
        shutil.rmtree(work_dir, ignore_errors=True)
        what = "images" if info.kind == "images" else "video"
        raise UserError(f"No face was found in the {side} {what} ({info.frame_count} frames).",
                        "Check that the footage shows a face clearly; faces smaller than about 20 pixels "
                        "or in deep shadow are not found.")
    frames_seen = sum(counts.values())
    header = {
        "side": side,
        "source": {"name": source.name, "kind": info.kind, "width": info.width, "height": info.height,
                   "fps": info.fps, "frame_count": frames_seen, "video_start": info.video_start,
                   "variable_fps": info.variable_fps, "fingerprint": wanted["source"]},
        "face_type": settings.face_type, "size": settings.size, "crop_format": settings.crop_format,
        "settings": wanted["settings"], "frames_with": counts,
        "smoothing": {"enabled": settings.smooth, "min_cutoff": settings.min_cutoff, "beta": settings.beta},
        "jitter": tracker.jitter.result(), "complete": True,
    }
    result = _finish(ws, side, header, records, track)
    shutil.rmtree(work_dir, ignore_errors=True)
    result.update({"fps": timing["fps"], "cpu_ms_per_frame": timing["cpu_ms_per_frame"],
                   "resumed_from": start, "jitter": header["jitter"],
                   "frames_with": counts, "skipped_files": timing["skipped"]})
    target = next(t for t in result["tracks"] if t["id"] == result["target_track"])
    report.preview(f"data_{side}/{target['thumb']}", side=side, track=target["id"])
    report.log(f"{side}: {len(records)} faces in {frames_seen} frames, {len(result['tracks'])} track(s); "
               f"target track {result['target_track']}.")
    return result


def _clear(side_dir: Path) -> None:
    """Remove what an earlier extraction of this side wrote (our own files only)."""
    shutil.rmtree(side_dir / ".extract", ignore_errors=True)
    for folder in ("aligned", "aligned_trash", "tracks", "frames"):
        shutil.rmtree(side_dir / folder, ignore_errors=True)
    for name in ("alignments.jsonl", "sort.json"):
        if (side_dir / name).exists():
            (side_dir / name).unlink()


def _read_partial(path: Path) -> list[FaceRecord]:
    records = []
    if not path.is_file():
        return records
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                records.append(FaceRecord.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                break  # a torn last line after a crash; everything before it is whole
    return records


def summarise_tracks(records: list[FaceRecord]) -> list[dict[str, Any]]:
    """Per track: faces, first/last frame, median face size, score; most important (largest and
    most present: faces x median size) first."""
    import numpy as np

    by_track: dict[int, list[FaceRecord]] = {}
    for record in records:
        by_track.setdefault(record.track, []).append(record)
    tracks = []
    for track_id, faces in by_track.items():
        sizes = [max(r.box[2] - r.box[0], r.box[3] - r.box[1]) for r in faces]
        size = float(np.median(sizes))
        tracks.append({"id": track_id, "faces": len(faces), "first": faces[0].frame, "last": faces[-1].frame,
                       "size": round(size, 1), "score": round(len(faces) * size, 1),
                       "thumb": f"tracks/track_{track_id}.jpg"})
    tracks.sort(key=lambda t: -t["score"])
    return tracks


def _finish(ws: Workspace, side: str, header: dict[str, Any], records: list[FaceRecord],
            track: int | None) -> dict[str, Any]:
    import cv2

    tracks = summarise_tracks(records)
    side_dir = ws.side_dir(side)
    (side_dir / "tracks").mkdir(exist_ok=True)
    for info in tracks:
        faces = [r for r in records if r.track == info["id"]]
        best = max(faces, key=lambda r: r.blur)
        crop = cv2.imread(str(side_dir / best.file))
        if crop is not None:
            thumb = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                (side_dir / info["thumb"]).write_bytes(data.tobytes())
    header = {**header, "tracks": tracks, "target_track": _choose(tracks, track)}
    write_alignments(ws.alignments_path(side), header, records)
    return {"side": side, "skipped": False, "faces": len(records), "tracks": tracks,
            "target_track": header["target_track"],
            "target_faces": sum(1 for r in records if r.track == header["target_track"])}


def _choose(tracks: list[dict[str, Any]], track: int | None) -> int:
    if track is None:
        return tracks[0]["id"]
    if track not in {t["id"] for t in tracks}:
        listed = ", ".join(f"{t['id']} ({t['faces']} faces)" for t in tracks[:10])
        raise UserError(f"There is no track {track}.", f"Tracks found: {listed}.")
    return track


def _retarget(ws: Workspace, side: str, header: dict[str, Any], records: list[FaceRecord],
              track: int) -> dict[str, Any]:
    header = {**header, "target_track": _choose(header.get("tracks", []), track)}
    write_alignments(ws.alignments_path(side), header, records)
    return {"side": side, "skipped": False, "retargeted": True, "faces": len(records), "target_track": track,
            "target_faces": sum(1 for r in records if r.track == track)}
