"""Data collection checks: is the footage good enough to train on, and does the source cover the
destination's poses? The advice every face-swap guide gives, turned into numbers.

``check_workspace(ws)`` reads both sides' records (the target track; source faces whose crop the user
deleted do not count) and returns a JSON-able report:

* per side: frames, frames with 0 / 1 / several faces, faces of the target person, face size,
  blur, brightness (median and spread), yaw and pitch histograms, and warnings;
* per side, identity (``engine.faces.identity``): how many people the side shows, and the face
  set's purity: how many of the target person's faces are in fact someone else (further than the
  identity threshold from the target person), with the command that moves them out;
* per side, alignment (``engine.faces.alignment_check``): the faces whose alignment is doubtful
  (upside down or mirrored, landmarks the detector disagrees with, a jump against the track's
  neighbours, a face off the crop's centre), with a thumbnail sheet of them,
  ``WS/check/alignment_<side>.png``, and the command that puts them first;
* across sides: the destination poses the source does not cover ("dst has 120 faces turned right
  more than 30 degrees; src has 3") and one ``coverage`` score: the share of destination faces that
  have at least ``MIN_NEIGHBOURS`` source faces within ``POSE_RADIUS`` degrees of yaw and pitch.
  Left and right are as seen in the image (yaw < 0: the face turns towards the image's left).

``write_report`` stores it as ``WS/check/report.json`` with a contact sheet of sampled aligned faces,
``WS/check/contact_sheet.png``, for the wizard and the CLI to show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes, atomic_write_json
from engine.faces import alignment_check, identity
from engine.faces.records import FaceRecord, read_alignments, target_track_ids
from engine.workspace import SIDES, Workspace

#: Faces embedded at most per side for the purity figure (about 80 ms each, cached); beyond that an
#: even sample is measured and the count of other people's faces is scaled up ("about").
PURITY_SAMPLE = 400
YAW_BINS = list(range(-90, 91, 15))
PITCH_BINS = list(range(-60, 61, 15))
POSE_RADIUS = 10.0
MIN_NEIGHBOURS = 3
#: Doubtful alignments listed in the report and drawn on a side's sheet at most (surest first).
SHEET_FACES = 48
#: Pose groups compared across sides: name, test on (yaw, pitch) arrays.
GROUPS = (
    ("turned left more than 30 degrees", lambda y, p: y < -30),
    ("turned right more than 30 degrees", lambda y, p: y > 30),
    ("looking up more than 20 degrees", lambda y, p: p > 20),
    ("looking down more than 20 degrees", lambda y, p: p < -20),
)


def report_dir(ws: Workspace) -> Path:
    return ws.root / "check"


def _stats(values: np.ndarray) -> dict[str, float] | None:
    if values.size == 0:
        return None
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return {"p10": round(float(p10), 1), "median": round(float(median), 1), "p90": round(float(p90), 1)}


def identity_report(ws: Workspace, side: str, header: dict[str, Any], faces: list[FaceRecord],
                    progress: Any = None) -> dict[str, Any]:
    """People on the side and the purity of its face set (see the module docstring)."""
    people = header.get("people") or []
    target = next((p for p in people if p.get("id") == header.get("target_person")), None)
    out: dict[str, Any] = {"people": len(people) or None, "target_person": header.get("target_person")}
    if not faces:
        return out
    limit = identity.threshold(ws)
    chosen = faces if len(faces) <= PURITY_SAMPLE else \
        [faces[i] for i in np.linspace(0, len(faces) - 1, PURITY_SAMPLE).round().astype(int)]
    vectors = identity.face_set_embeddings(ws.side_dir(side), chosen, progress=progress)
    centre = np.asarray(target["embedding"], np.float64) if target and target.get("embedding") else None
    found = identity.purity(vectors, centre, limit)
    scale = len(faces) / len(chosen)
    out.update({"faces_measured": len(chosen), "estimated": len(chosen) < len(faces),
                "face_set_people": found["people"], "other_person_faces": round(found["other_faces"] * scale),
                "median_distance": found.get("median_distance"), "threshold": limit,
                "other_person_files": [chosen[i].file for i in found["other_rows"]][:20]})
    return out


def alignment_report(side: str, side_dir: Path, faces: list[FaceRecord], images: bool,
                     progress: Any = None) -> dict[str, Any]:
    """The side's doubtful alignments (engine.faces.alignment_check): how many, by reason, the surest."""
    step = (lambda done, total: progress(done, total, stage="alignment")) if progress else None
    found = alignment_check.doubtful_faces(side_dir, faces, images, step)
    reasons: dict[str, int] = {}
    for face in found:
        for reason in face["reasons"]:
            reasons[reason] = reasons.get(reason, 0) + 1
    return {"faces_checked": len(faces), "doubtful": len(found), "reasons": reasons,
            "faces": found[:SHEET_FACES], "sheet": f"check/alignment_{side}.png" if found else None}


def side_report(ws: Workspace, side: str, progress: Any = None) -> tuple[dict[str, Any], list[FaceRecord]]:
    path = ws.alignments_path(side)
    if not path.is_file():
        return {"extracted": False, "warnings": [f"{side} is not extracted yet (swapwizard extract WS --side {side})."]}, []
    header, records = read_alignments(path)
    target = header.get("target_track")
    targets = target_track_ids(header)
    side_dir = ws.side_dir(side)
    faces = [r for r in records if r.track in targets and (side_dir / r.file).is_file()]
    deleted = sum(1 for r in records if r.track in targets) - len(faces)
    sizes = np.array([max(r.box[2] - r.box[0], r.box[3] - r.box[1]) for r in faces])
    blur = np.array([r.blur for r in faces])
    light = np.array([r.brightness for r in faces])
    yaw = np.array([r.yaw for r in faces])
    pitch = np.array([r.pitch for r in faces])
    frames = int(header.get("source", {}).get("frame_count", 0))
    out: dict[str, Any] = {
        "extracted": True, "frames": frames, "frames_with": header.get("frames_with", {}),
        "tracks": len(header.get("tracks", [])), "target_track": target, "faces": len(faces),
        "deleted_by_user": deleted, "face_size": _stats(sizes), "blur": _stats(blur), "brightness": _stats(light),
        "yaw_histogram": {"edges": YAW_BINS, "counts": np.histogram(np.clip(yaw, -90, 90), YAW_BINS)[0].tolist()},
        "pitch_histogram": {"edges": PITCH_BINS,
                            "counts": np.histogram(np.clip(pitch, -60, 60), PITCH_BINS)[0].tolist()},
        "jitter": header.get("jitter"),
        "target_tracks": sorted(targets),
        # Faces with something in front of them: hands found at extraction (engine.faces.hands); the
        # check job adds what the segmenter's masks say (engine.segment.store.occluded_count).
        "occluders": {"faces_with_hands": sum(1 for r in faces if r.occluders)},
    }
    out["identity"] = identity_report(ws, side, header, faces, progress)
    out["alignment"] = alignment_report(side, side_dir, faces, header.get("source", {}).get("kind") == "images",
                                        progress)
    warnings = []
    if not faces:
        warnings.append(f"{side} has no faces of the target person left.")
    else:
        if side == "src" and len(faces) < 300:
            warnings.append(f"src has only {len(faces)} faces; a few thousand varied ones train a better model.")
        small = int((sizes < 128).sum())
        if small > len(faces) * 0.25:
            warnings.append(f"{side}: {small} faces are smaller than 128 pixels; crops of them will be soft.")
        blurry = int((blur < 0.4 * np.median(blur)).sum())
        if blurry:
            warnings.append(f"{side}: {blurry} faces are much blurrier than the rest "
                            f"(swapwizard sort WS --side {side} --by blur to review them).")
        dark, bright = int((light < 50).sum()), int((light > 210).sum())
        if dark > len(faces) * 0.1:
            warnings.append(f"{side}: {dark} faces are very dark.")
        if bright > len(faces) * 0.1:
            warnings.append(f"{side}: {bright} faces are very bright or washed out.")
    ident = out["identity"]
    other = ident.get("other_person_faces") or 0
    if other:
        warnings.append(f"data_{side} holds {'about ' if ident.get('estimated') else ''}{other} faces of another "
                        f"person: run `swapwizard sort WS --side {side} --by identity`.")
    doubtful = out["alignment"]["doubtful"]
    if doubtful:
        reasons = ", ".join(f"{n} {reason}" for reason, n in out["alignment"]["reasons"].items())
        warnings.append(f"{side}: {doubtful} faces look misaligned ({reasons}); thumbnails in "
                        f"check/alignment_{side}.png; `swapwizard sort WS --side {side} --by alignment` puts them "
                        "first, to review or drop.")
    people = header.get("people") or []
    several = int(header.get("frames_with", {}).get("2+", 0))
    if len(people) > 1:
        warnings.append(f"{side} shows {len(people)} people; the target is person {header.get('target_person')} "
                        f"(thumbnails in data_{side}/people/; choose another with --person N or --reference PHOTO).")
    elif several and len(header.get("tracks", [])) > 1 and not people:
        warnings.append(f"{side}: {several} frames show several faces; the target is track {target} "
                        f"(thumbnails in data_{side}/tracks/; choose another with --track N).")
    out["warnings"] = warnings
    return out, faces


def coverage(src: list[FaceRecord], dst: list[FaceRecord]) -> dict[str, Any]:
    """Share of dst faces with enough src faces of a similar pose, and the uncovered pose groups."""
    if not dst:
        return {"score": None, "warnings": []}
    sy, sp = np.array([r.yaw for r in src]), np.array([r.pitch for r in src])
    dy, dp = np.array([r.yaw for r in dst]), np.array([r.pitch for r in dst])
    covered = 0
    for start in range(0, len(dy), 512):  # chunks keep the distance matrix small
        near = (np.abs(dy[start:start + 512, None] - sy[None]) <= POSE_RADIUS) & \
               (np.abs(dp[start:start + 512, None] - sp[None]) <= POSE_RADIUS)
        covered += int((near.sum(1) >= MIN_NEIGHBOURS).sum())
    warnings, groups = [], {}
    for name, test in GROUPS:
        n_dst, n_src = int(test(dy, dp).sum()), int(test(sy, sp).sum()) if len(sy) else 0
        groups[name] = {"dst": n_dst, "src": n_src}
        if n_dst >= max(5, 0.05 * len(dy)) and (n_src < 10 or n_src / max(len(sy), 1) < 0.5 * n_dst / len(dy)):
            warnings.append(f"dst has {n_dst} faces {name}; src has {n_src}.")
    return {"score": round(covered / len(dy), 3), "covered_faces": covered, "dst_faces": len(dy),
            "radius_degrees": POSE_RADIUS, "min_neighbours": MIN_NEIGHBOURS, "groups": groups, "warnings": warnings}


def check_workspace(ws: Workspace, progress: Any = None) -> tuple[dict[str, Any], dict[str, list[FaceRecord]]]:
    """``progress(side, done, total, stage)`` is called while faces are embedded for the purity figure
    (stage "identity") and while their alignment is checked ("alignment")."""
    sides, faces = {}, {}
    for side in SIDES:
        step = (lambda done, total, stage="identity", side=side: progress(side, done, total, stage)) \
            if progress else None
        sides[side], faces[side] = side_report(ws, side, step)
    cover = coverage(faces["src"], faces["dst"]) if faces["src"] and faces["dst"] else {"score": None, "warnings": []}
    warnings = [w for side in SIDES for w in sides[side]["warnings"]] + cover["warnings"]
    return {"version": 1, "sides": sides, "coverage": cover, "warnings": warnings}, faces


def contact_sheet(ws: Workspace, faces: dict[str, list[FaceRecord]], per_side: int = 24, thumb: int = 96) -> bytes:
    """A PNG: one block per side of up to ``per_side`` aligned faces sampled evenly, with labels."""
    import cv2

    columns = 8
    blocks = []
    for side in SIDES:
        chosen = faces[side]
        if len(chosen) > per_side:
            chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, per_side).round().astype(int)]
        rows = max(1, -(-len(chosen) // columns))
        block = np.full((24 + rows * thumb, columns * thumb, 3), 32, dtype=np.uint8)
        cv2.putText(block, f"{side}: {len(faces[side])} faces", (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (230, 230, 230), 1, cv2.LINE_AA)
        for i, record in enumerate(chosen):
            crop = cv2.imread(str(ws.side_dir(side) / record.file))
            if crop is None:
                continue
            small = cv2.resize(crop, (thumb, thumb), interpolation=cv2.INTER_AREA)
            cv2.putText(small, f"{record.yaw:+.0f}/{record.pitch:+.0f}", (3, thumb - 5), cv2.FONT_HERSHEY_SIMPLEX,
                        0.33, (0, 255, 255), 1, cv2.LINE_AA)
            y, x = 24 + (i // columns) * thumb, (i % columns) * thumb
            block[y:y + thumb, x:x + thumb] = small
        blocks.append(block)
    ok, data = cv2.imencode(".png", np.vstack(blocks))
    if not ok:
        raise OSError("could not encode the contact sheet")
    return data.tobytes()


def doubtful_sheet(side_dir: Path, side: str, doubtful: list[dict[str, Any]], thumb: int = 128) -> bytes:
    """A PNG of the doubtful faces, surest first, each labelled with its frame and first reason."""
    import cv2

    columns = 6
    rows = max(1, -(-len(doubtful) // columns))
    sheet = np.full((24 + rows * thumb, columns * thumb, 3), 32, dtype=np.uint8)
    cv2.putText(sheet, f"{side}: {len(doubtful)} doubtful alignments, surest first", (6, 17),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    for i, face in enumerate(doubtful):
        crop = cv2.imread(str(side_dir / face["file"]))
        if crop is None:
            continue
        small = cv2.resize(crop, (thumb, thumb), interpolation=cv2.INTER_AREA)
        for line, text in enumerate((f"frame {face['frame']}", face["reasons"][0][:22])):
            cv2.putText(small, text, (3, thumb - 18 + 12 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 255, 255), 1,
                        cv2.LINE_AA)
        y, x = 24 + (i // columns) * thumb, (i % columns) * thumb
        sheet[y:y + thumb, x:x + thumb] = small
    ok, data = cv2.imencode(".png", sheet)
    if not ok:
        raise OSError("could not encode the alignment sheet")
    return data.tobytes()


def write_report(ws: Workspace, progress: Any = None) -> dict[str, Any]:
    report, faces = check_workspace(ws, progress)
    folder = report_dir(ws)
    folder.mkdir(exist_ok=True)
    atomic_write_bytes(folder / "contact_sheet.png", contact_sheet(ws, faces))
    for side in SIDES:
        doubtful = (report["sides"][side].get("alignment") or {}).get("faces") or []
        if doubtful:
            atomic_write_bytes(folder / f"alignment_{side}.png", doubtful_sheet(ws.side_dir(side), side, doubtful))
        else:
            (folder / f"alignment_{side}.png").unlink(missing_ok=True)
    report["contact_sheet"] = "check/contact_sheet.png"
    atomic_write_json(folder / "report.json", report)
    return report
