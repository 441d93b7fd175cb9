"""Face-set purity: a source face set polluted with another person's faces is flagged by check and
cleaned by ``sort --by identity`` (into the trash, never deleted); the destination people are counted."""

from __future__ import annotations

import pytest

from engine.faces.check import check_workspace
from engine.faces.sort import restore, sort_faces
from engine.jobs import get_kind
from engine.report import NullReporter
from engine.workspace import Workspace
from tests.helpers import SAMPLES


def run_job(ws: Workspace, kind: str, params: dict) -> dict:
    job = get_kind(kind)
    return job.module.run(ws, job.parse_params(params), NullReporter())


@pytest.mark.timeout(300)
def test_a_polluted_source_is_flagged_and_sort_by_identity_moves_the_intruder_out(media, tmp_path) -> None:
    ws = Workspace.create(tmp_path / "ws", media["polluted"], media["joined"])
    run_job(ws, "extract", {"side": "both"})
    report, _ = check_workspace(ws)
    src = report["sides"]["src"]["identity"]
    assert src["faces_measured"] == 38 and not src["estimated"]
    assert src["other_person_faces"] == 8 and src["face_set_people"] == 2
    assert all(name.split("/")[-1].startswith("0000") for name in src["other_person_files"])
    warning = "data_src holds 8 faces of another person: run `swapwizard sort WS --side src --by identity`."
    assert warning in report["warnings"]
    # The destination (A, B, A) is split into people at extraction: the target's face set is pure,
    # and check says the side shows two people.
    dst = report["sides"]["dst"]["identity"]
    assert dst["people"] == 2 and dst["other_person_faces"] == 0
    assert any(w.startswith("dst shows 2 people; the target is person") for w in report["warnings"])

    result = sort_faces(ws, "src", "identity")
    assert result["moved_to_trash"] == 8 and result["kept"] == 30 and result["other_person"] == 8
    trashed = sorted(p.name for p in (ws.side_dir("src") / "aligned_trash" / "identity").iterdir())
    assert len(trashed) == 8
    # The polluted folder's images are named a_*.jpg then b_*.jpg: frames 30-37 are B's.
    assert trashed == [f"{frame:06d}_0.jpg" for frame in range(30, 38)]
    report, _ = check_workspace(ws)
    assert report["sides"]["src"]["identity"]["other_person_faces"] == 0
    assert not any("faces of another person" in w for w in report["warnings"])
    assert restore(ws, "src")["restored"] == 8  # never deleted


@pytest.mark.timeout(120)
def test_a_clean_face_set_has_no_identity_warning(tmp_path) -> None:
    ws = Workspace.create(tmp_path / "ws", SAMPLES / "src.mp4", SAMPLES / "dst.mp4")
    run_job(ws, "extract", {"side": "src"})
    report, _ = check_workspace(ws)
    src = report["sides"]["src"]["identity"]
    assert src["people"] == 1 and src["other_person_faces"] == 0 and src["face_set_people"] == 1
    assert not any("another person" in w or "people" in w for w in report["warnings"])
    result = sort_faces(ws, "src", "identity")
    assert result["moved_to_trash"] == 0 and result["median_distance"] < 0.4
