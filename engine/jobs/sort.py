"""Job ``sort``: order a side's aligned faces and move rejects to ``data_<side>/aligned_trash/``.

``by``: blur, yaw, pitch, size, hist (near-duplicates), best (sharpest faces covering the poses;
needs ``keep``), identity (faces of people other than the target go to the trash), alignment (doubtful
alignments first; nothing moves). ``restore`` moves every trashed face back. See engine.faces.sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    side: Literal["src", "dst"] = "src"
    by: Literal["blur", "yaw", "pitch", "size", "hist", "best", "identity", "alignment"] = "blur"
    keep: int | None = None
    #: hist: histogram correlation at or above which a face counts as a near-duplicate.
    similarity: float = 0.98
    restore: bool = False


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.faces.sort import restore, sort_faces

    if params.restore:
        result = restore(ws, params.side)
        report.log(f"{params.side}: {result['restored']} faces moved back to aligned/.")
        return result
    result = sort_faces(ws, params.side, params.by, params.keep, params.similarity,
                        lambda done, total: report.progress(params.by if params.by == "alignment" else "identity",
                                                            done, total, unit="faces"))
    if params.by == "alignment":
        report.log(f"{params.side}: {result['doubtful']} of {result['faces']} faces look misaligned; they come first "
                   f"in data_{params.side}/sort.json.")
        return result
    report.log(f"{params.side}: sorted {result['faces']} faces by {params.by}; "
               f"{result['moved_to_trash']} moved to {result['trash'] or 'trash (none)'}.")
    return result


JOB = JobKind(kind="sort", params=Params, run=run, stoppable=True, screens=("extract",), label="Sorting faces")
