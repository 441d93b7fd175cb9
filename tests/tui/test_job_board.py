"""The job board folds recorded event sequences into the state the screens draw."""

from __future__ import annotations

from engine import protocol as p
from tui.job_board import JobBoard


def recorded_training(job_id: str = "job-1", iters: int = 5, start: int = 1) -> list[p.Event]:
    seq = iter(range(start, start + 100))
    events: list[p.Event] = [p.make_event("job_queued", next(seq), job_id=job_id, kind="train", params={"preset": "tiny"}),
                             p.make_event("job_started", next(seq), job_id=job_id, kind="train", params={"preset": "tiny"}, pid=9)]
    for i in range(1, iters + 1):
        events.append(p.make_event("metrics", next(seq), job_id=job_id,
                                   values={"iter": i, "loss_src": 1.0 / i, "loss_dst": 2.0 / i, "target": iters}))
    events.append(p.make_event("preview", next(seq), job_id=job_id, path="model/default/previews/p.png",
                               small="model/default/previews/p_small.png"))
    return events


def test_training_history_is_kept_whole_in_order():
    board = JobBoard()
    for event in recorded_training(iters=50):
        board.apply(event)
    job = board.latest("train")
    assert job is not None and job.status == "running" and job.first_seq == 1
    assert [m["iter"] for m in job.metrics] == list(range(1, 51))
    assert job.preview is not None and job.preview.small.endswith("p_small.png")
    assert board.running() is job and board.active("train") is job and board.active("extract") is None


def test_replaying_the_same_events_again_changes_nothing():
    events = recorded_training(iters=10)
    board = JobBoard()
    for event in events:
        board.apply(event)
    for event in events[3:]:  # a reconnect that overlaps what was already seen
        board.apply(event)
    assert len(board.latest("train").metrics) == 10
    assert board.last_seq == events[-1].seq


def test_end_events_set_status_result_and_error():
    board = JobBoard()
    board.apply(p.make_event("job_started", 1, job_id="a", kind="extract", params={}))
    board.apply(p.make_event("progress", 2, job_id="a", stage="src", done=3, total=10, unit="frames", rate=2.0, eta_s=3.5))
    board.apply(p.make_event("job_failed", 3, job_id="a", error="No faces found in data_src.mp4.", hint="Use a clip with a visible face."))
    job = board.jobs["a"]
    assert job.status == "failed" and job.hint.startswith("Use a clip") and job.stage("src").done == 3
    board.apply(p.make_event("job_started", 4, job_id="b", kind="merge", params={}))
    board.apply(p.make_event("job_finished", 5, job_id="b", result={"path": "output/result.mp4"}))
    assert board.jobs["b"].result == {"path": "output/result.mp4"} and not board.jobs["b"].active
    assert board.latest() is board.jobs["b"]


def test_an_engine_restart_closes_jobs_the_old_engine_left_running():
    board = JobBoard()
    for event in recorded_training(iters=3):
        board.apply(event)
    board.apply(p.make_event("engine_started", 100, pid=42, version="0.1"))
    job = board.latest("train")
    assert job.status == "failed" and board.engine_pid == 42 and board.active() is None
