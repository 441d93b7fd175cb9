"""Extract one side of a workspace: aligned crops, face records, tracks and their thumbnails.

``extract_side(ws, side, settings, report)`` is what the ``extract`` job runs per side:

1. probe the side's video or image folder (a clear error for a corrupt, empty or faceless input);
2. if the side was extracted already with the same settings and source, do nothing (``force``
   redoes it; ``track`` only re-chooses the target person, which takes no time);
3. if an earlier run of the same settings was interrupted, resume it from its last checkpoint;
4. run the pipeline (``engine.faces.pipeline``), then link up the result: split tracks where the
   identity changes and link them into people (``engine.faces.identity``), choose the target person
   (the most important one; or by ``--person N``, ``--track N`` or ``--reference PHOTO|FRAME``), write
   a thumbnail per track and per person, write ``alignments.jsonl`` atomically, drop the work folder.

Work files live in ``data_<side>/.extract/`` (``settings.json``, ``partial.jsonl``,
``checkpoint.json``); an alignments file exists only once a side is complete. A new extraction writes
its crops, thumbnails and records in ``.extract/new/``: the side's earlier faces stay usable (also when
the new extraction is cancelled or killed) until the new one is complete and replaces them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import settings as declared
from engine.atomic import atomic_write_json, fsync_dir, read_json
from engine.errors import UserError
from engine.faces.records import DamagedRecords, FaceRecord, read_alignments, read_partial, write_alignments
from engine.faces.workers import SEGMENTS, extract_segments, workers_for
from engine.media.probe import MediaInfo, probe
from engine.report import Reporter
from engine.workspace import Workspace

#: The [extract] settings (declared, with ranges and help, in engine/settings.py), checked when made.
ExtractSettings = declared.values_class("ExtractSettings", "extract", module=__name__)

#: Where a (re-)extraction writes its crops, thumbnails and records (in the side's ``.extract/``) until it
#: is complete; the side's current faces stay usable until then (``_swap_in``).
NEW = "new"
#: What an extraction writes beside its records (moved in together), and what was made from the old crops
#: (removed with them).
_RESULTS = ("aligned", "tracks", "people", "frames")
_STALE = ("aligned_trash", "sort.json", "identity.safetensors", "alignment_check.json")


@dataclass
class TargetChoice:
    """How the target person of a side is chosen; all None: the most important person."""

    track: int | None = None
    person: int | None = None
    #: A photo of the person (path), or a frame number of this side's footage showing them.
    reference: str | None = None
    #: Filled in by the choice: what was used and how close it was, for the result and the log.
    notes: dict[str, Any] = field(default_factory=dict)
    #: The reference photo's embedding (``engine.faces.identity.Reference``), read before extracting
    #: so that a photo without a face fails at once rather than after the whole clip.
    photo: Any = None

    def read_photo(self) -> None:
        if self.reference is not None and self.photo is None and not str(self.reference).strip().isdigit():
            from engine.faces.identity import reference_from_photo

            self.photo = reference_from_photo(str(self.reference).strip())

    def given(self) -> bool:
        return any(v is not None for v in (self.track, self.person, self.reference))


def _fingerprint(source: Path, info: MediaInfo) -> dict[str, Any]:
    stat = source.stat()
    return {"name": source.name, "bytes": stat.st_size if source.is_file() else len(info.images),
            "mtime": int(stat.st_mtime), "frames": info.frame_count}


def extract_side(ws: Workspace, side: str, settings: ExtractSettings, report: Reporter,
                 force: bool = False, track: int | None = None, person: int | None = None,
                 reference: str | None = None) -> dict[str, Any]:
    settings.check()
    choice = TargetChoice(track, person, reference)
    choice.read_photo()
    source = ws.source(side)
    if source is None:
        raise UserError(f"The workspace has no {side} footage.",
                        f"Add it with: swapwizard sources {ws.root} --{side} PATH (a video or a folder of images).")
    info = probe(source)
    side_dir = ws.side_dir(side)
    work_dir = side_dir / ".extract"
    new_dir = work_dir / NEW
    if (new_dir / "alignments.jsonl").is_file():  # an extraction finished but was stopped while moving in
        _swap_in(side_dir)
    # How many workers extract it does not change the result: not part of what the side was made with.
    wanted = {"settings": {k: v for k, v in asdict(settings).items() if k != "workers"},
              "source": _fingerprint(source, info)}
    stage = f"extract_{side}"

    if not force and ws.alignments_path(side).is_file():
        header, records = read_alignments(ws.alignments_path(side))
        if header.get("from_faceset"):
            if choice.given():
                return _retarget(ws, side, header, records, choice)
            report.log(f"{side}: faces come from the face set {header['from_faceset']}; not extracting "
                       "(use --force to extract from the footage instead).")
            return {"side": side, "skipped": True, "faces": len(records), "target_track": header.get("target_track"),
                    "target_person": header.get("target_person")}
        if header.get("complete") and header.get("settings") == wanted["settings"] and \
                header.get("source", {}).get("fingerprint") == wanted["source"]:
            if choice.given():
                return _retarget(ws, side, header, records, choice)
            report.log(f"{side}: already extracted with these settings; skipped (use --force to redo).")
            return {"side": side, "skipped": True, "faces": len(records), "target_track": header.get("target_track"),
                    "target_person": header.get("target_person")}
        cleaned = sum(1 for r in records if not (side_dir / r.file).is_file())
        if cleaned or (side_dir / "aligned_trash").exists():
            # Settings or footage changed since; redoing would throw away the user's clean-up.
            raise UserError(f"{side} was extracted with other settings or footage, and its face set has been "
                            f"cleaned since ({cleaned} crops deleted or sorted out).",
                            f"Add --force to extract {side} again (the cleaned set is replaced), or put the "
                            "old settings back in workspace.toml.")

    resume = read_json(work_dir / "checkpoint.json")
    segmented = (work_dir / SEGMENTS).is_file()  # a run split among workers (engine.faces.workers)
    if force or read_json(work_dir / "settings.json") != wanted or not (isinstance(resume, dict) or segmented) \
            or not new_dir.is_dir():  # (an extraction begun before NEW existed wrote its crops beside the old)
        # The side's current faces stay as they are until the new extraction is complete (_swap_in).
        shutil.rmtree(work_dir, ignore_errors=True)
        new_dir.mkdir(parents=True)
        atomic_write_json(work_dir / "settings.json", wanted)
        resume = None
        segmented = workers_for(settings.workers, info.kind, info.frame_count) > 1
    elif not segmented:
        report.log(f"{side}: resuming at frame {resume['next_frame']} of {info.frame_count}.")

    # Heavy imports only now: mediapipe takes a second to load.
    from engine.faces.detect import FaceFinder
    from engine.faces.pipeline import WriteOptions, run_pipeline
    from engine.faces.track import Tracker, TrackOptions

    finder = FaceFinder(settings.min_confidence, settings.min_presence)
    hands = None
    if settings.hands:
        from engine.faces.hands import HandWatcher

        hands = HandWatcher(settings.hands_every, images=info.kind == "images")
    tracker = Tracker(finder, TrackOptions(**asdict(settings), max_gap=max(5, round((info.fps or 25) * 1.0)),
                                           images=info.kind == "images"))
    counts: dict[str, int] = {}
    start, partial_bytes = 0, 0
    if resume:
        tracker.restore(resume["tracker"])
        counts = dict(resume["counts"])
        start, partial_bytes = resume["next_frame"], resume["partial_bytes"]
    try:
        if segmented:
            timing = extract_segments(source, new_dir, work_dir, settings, tracker.options.max_gap, info.frame_count,
                                      workers_for(settings.workers, info.kind, info.frame_count), counts, report,
                                      stage, seek=info.seekable)
        else:
            timing = run_pipeline(source, new_dir, work_dir, tracker,
                                  WriteOptions(settings.face_type, settings.size, settings.crop_format,
                                               settings.jpeg_quality, settings.write_frames),
                                  start, info.frame_count, 25.0, counts, report, stage, partial_bytes, hands,
                                  seek=info.seekable)
    finally:
        finder.close()
        if hands is not None:
            hands.close()
    try:
        records = read_partial(work_dir / "partial.jsonl")
    except DamagedRecords:
        (work_dir / "checkpoint.json").unlink(missing_ok=True)  # the next run extracts it again
        raise
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
        "jitter": timing.get("jitter") or tracker.jitter.result(), "hands": timing["hands"],
        "unfit_faces": timing.get("unfit", 0), "complete": True,
    }
    try:
        result = _finish(ws, side, header, records, choice, images=info.kind == "images", side_dir=new_dir)
    finally:
        if (new_dir / "alignments.jsonl").is_file():  # written (a reference that matched nobody still writes it)
            _swap_in(side_dir)
    result.update({"fps": timing["fps"], "cpu_ms_per_frame": timing["cpu_ms_per_frame"],
                   "workers": timing.get("workers", 1),
                   "resumed_from": start, "jitter": header["jitter"],
                   "frames_with": counts, "skipped_files": timing["skipped"], "hands": timing["hands"],
                   "faces_with_hands": sum(1 for r in records if r.occluders),
                   "unfit_faces": header["unfit_faces"]})
    if header["unfit_faces"]:
        what = "pictures" if info.kind == "images" else "detections"
        report.warning(f"{side}: {header['unfit_faces']} faces were left out because their landmarks could only be "
                       f"fitted upside down, a quarter turn off or mirrored (in {what} of dark, blurred or "
                       "turned faces); the others are the right way up.")
    target = next(p for p in result["people"] if p["id"] == result["target_person"])
    report.preview(f"data_{side}/{target['thumb']}", side=side, track=result["target_track"], person=target["id"])
    report.log(f"{side}: {len(records)} faces in {frames_seen} frames, {len(result['tracks'])} track(s), "
               f"{len(result['people'])} person(s); target person {result['target_person']} "
               f"(tracks {', '.join(map(str, result['target_tracks']))}){_choice_words(choice)}.")
    return result


def _swap_in(side_dir: Path) -> None:
    """Replace the side's faces with the finished extraction in ``.extract/NEW``: the old records go first
    (from then on nothing names the old crops), then the old folders and what was made from the old crops,
    the new folders move in, and the new records last. Killed half-way, the next extraction of the side
    finishes it (the new extraction is complete); until it starts, the side has no records, never records
    naming the other extraction's crops."""
    work_dir = side_dir / ".extract"
    new_dir = work_dir / NEW
    plan = read_json(new_dir / "swap.json")
    if not isinstance(plan, dict):
        plan = {"move": [name for name in _RESULTS if (new_dir / name).exists()]}
        atomic_write_json(new_dir / "swap.json", plan)
    (side_dir / "alignments.jsonl").unlink(missing_ok=True)
    for name in _RESULTS + _STALE:
        moving = name in plan["move"]
        if moving and not (new_dir / name).exists():
            continue  # moved in before the stop
        if (side_dir / name).is_dir():
            shutil.rmtree(side_dir / name)
        elif (side_dir / name).exists():
            (side_dir / name).unlink()
        if moving:
            os.replace(new_dir / name, side_dir / name)
    os.replace(new_dir / "alignments.jsonl", side_dir / "alignments.jsonl")
    fsync_dir(side_dir)
    shutil.rmtree(work_dir, ignore_errors=True)


def summarise_tracks(records: list[FaceRecord]) -> list[dict[str, Any]]:
    """Per track: faces, first/last frame, median face size, score, person; most important (largest
    and most present: faces x median size) first."""
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
                       "thumb": f"tracks/track_{track_id}.jpg", "person": faces[0].person})
    tracks.sort(key=lambda t: -t["score"])
    return tracks


def _thumbnail(side_dir: Path, faces: list[FaceRecord], path: Path) -> None:
    """A 128-pixel JPEG of the sharpest of ``faces`` (whose crop still exists)."""
    import cv2

    for best in sorted(faces, key=lambda r: -r.blur):
        crop = cv2.imread(str(side_dir / best.file))
        if crop is None:
            continue
        thumb = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data.tobytes())
        return


def _link(ws: Workspace, side: str, header: dict[str, Any], records: list[FaceRecord],
          images: bool, side_dir: Path | None = None) -> dict[str, Any]:
    """Split tracks at identity changes, link them into people, write the thumbnails; returns the
    header with ``tracks``, ``people`` and ``identity`` (what linking cost) set."""
    from engine.faces import identity

    side_dir = side_dir or ws.side_dir(side)
    linked = identity.link_people(records, side_dir, images=images, limit=identity.threshold(ws))
    tracks = summarise_tracks(records)
    for info in tracks:
        _thumbnail(side_dir, [r for r in records if r.track == info["id"]], side_dir / info["thumb"])
    people = linked["people"]
    for person in people:
        person["thumb"] = f"people/person_{person['id']}.jpg"
        _thumbnail(side_dir, [r for r in records if r.person == person["id"]], side_dir / person["thumb"])
    return {**header, "tracks": tracks, "people": people,
            "identity": {"model": "dlib_face_recognition_resnet_model_v1", "splits": linked["splits"],
                         "embedded": linked["embedded"], "ms_per_face": linked["ms_per_face"],
                         "threshold": identity.threshold(ws)}}


def _target_fields(header: dict[str, Any], person: int) -> dict[str, Any]:
    """``target_person``, its tracks (``target_tracks``) and its most important track (``target_track``)."""
    chosen = next(p for p in header["people"] if p["id"] == person)
    ordered = [t["id"] for t in header.get("tracks", []) if t["id"] in set(chosen["tracks"])]
    return {"target_person": person, "target_tracks": ordered, "target_track": ordered[0]}


def _choose_person(ws: Workspace, side: str, header: dict[str, Any], records: list[FaceRecord],
                   choice: TargetChoice, side_dir: Path | None = None) -> int:
    people = header["people"]
    if choice.reference is not None:
        from engine.faces import identity

        text = str(choice.reference).strip()
        if text.isdigit():
            ref = identity.reference_from_frame(records, side_dir or ws.side_dir(side), int(text))
        else:
            choice.read_photo()
            ref = choice.photo
        person, dist = identity.match_reference(people, ref, identity.threshold(ws))
        choice.notes = {"reference": ref.described, "distance": round(dist, 3),
                        "faces_in_reference": ref.faces_in_photo}
        return person
    if choice.person is not None:
        if choice.person not in {p["id"] for p in people}:
            listed = ", ".join(f"{p['id']} ({p['faces']} faces)" for p in people[:10])
            raise UserError(f"There is no person {choice.person} on the {side} side.",
                            f"People found: {listed} (thumbnails in data_{side}/people/).")
        return choice.person
    if choice.track is not None:
        owner = next((r.person for r in records if r.track == choice.track), None)
        if owner is None:
            listed = ", ".join(f"{t['id']} ({t['faces']} faces)" for t in header.get("tracks", [])[:10])
            raise UserError(f"There is no track {choice.track}.", f"Tracks found: {listed}.")
        return owner
    return people[0]["id"]


def _choice_words(choice: TargetChoice) -> str:
    notes = choice.notes
    if not notes:
        return ""
    several = notes.get("faces_in_reference", 1)
    from engine.faces.identity import likeness

    return (f", chosen by the reference {notes['reference']} at distance {notes['distance']} "
            f"({likeness(notes['distance'])})"
            + (f" ({several} faces in it; the largest was used)" if several > 1 else ""))


def _finish(ws: Workspace, side: str, header: dict[str, Any], records: list[FaceRecord],
            choice: TargetChoice, images: bool = False, side_dir: Path | None = None) -> dict[str, Any]:
    """Link people, choose the target, write the records: into ``side_dir`` (the side's folder by default)."""
    side_dir = side_dir or ws.side_dir(side)
    header = _link(ws, side, header, records, images, side_dir)
    try:
        person = _choose_person(ws, side, header, records, choice, side_dir)
    except UserError as exc:
        # The extraction itself is done and kept: the most important person is the target meanwhile.
        write_alignments(side_dir / "alignments.jsonl", {**header, **_target_fields(header, header["people"][0]["id"])},
                         records)
        raise UserError(exc.message, f"{exc.hint} The faces are extracted; until you choose, the target is "
                                     f"person {header['people'][0]['id']}.") from None
    header = {**header, **_target_fields(header, person)}
    write_alignments(side_dir / "alignments.jsonl", header, records)
    return _result(side, header, records, choice)


def _result(side: str, header: dict[str, Any], records: list[FaceRecord], choice: TargetChoice) -> dict[str, Any]:
    targets = set(header["target_tracks"])
    return {"side": side, "skipped": False, "faces": len(records), "tracks": header["tracks"],
            "people": [{k: v for k, v in p.items() if k != "embedding"} for p in header["people"]],
            "target_person": header["target_person"], "target_tracks": header["target_tracks"],
            "target_track": header["target_track"], "identity": header.get("identity"),
            "target_faces": sum(1 for r in records if r.track in targets), **choice.notes}


def _retarget(ws: Workspace, side: str, header: dict[str, Any], records: list[FaceRecord],
              choice: TargetChoice) -> dict[str, Any]:
    """Choose the target again without extracting (records from before people existed are linked first)."""
    if not header.get("people") or any(r.person is None for r in records):
        header = _link(ws, side, header, records, header.get("source", {}).get("kind") == "images")
    header = {**header, **_target_fields(header, _choose_person(ws, side, header, records, choice))}
    write_alignments(ws.alignments_path(side), header, records)
    return {**_result(side, header, records, choice), "retargeted": True}
