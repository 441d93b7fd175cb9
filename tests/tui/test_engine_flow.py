"""The wizard against a real engine process: it starts the engine, streams jobs, replays on reopen."""

from __future__ import annotations

import time

import pytest

from engine import protocol as p
from engine.client import EngineClient
from engine.launcher import engine_pid, start_engine
from tests.helpers import stop_engine
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.messages import EngineConnected, JobMetrics, JobProgressed, message_for
from tui.widgets.activity import ActivityLine


@pytest.fixture
def consented(workspace):
    workspace.record_consent()
    yield workspace
    stop_engine(workspace)


@pytest.mark.timeout(120)
def test_the_wizard_starts_the_engine_and_streams_a_job(consented, recent):
    ws = consented
    assert engine_pid(ws) is None
    app = make_app(ws.root, recent=recent)
    messages: list = []
    seen: dict = {}

    async def script(pilot):
        await wait_for(pilot, lambda: app.client is not None, 60, "the engine connection")
        assert engine_pid(ws) is not None, "the wizard started the engine"
        job_id = await app.submit_job("diagnostic_count", {"count": 30, "delay": 0.03})
        assert job_id
        await wait_for(pilot, lambda: app.board.jobs.get(job_id) and app.board.jobs[job_id].status == "finished",
                       60, "the job's end")
        seen["job"] = app.board.jobs[job_id]

    drive(app, script, messages=messages)
    job = seen["job"]
    assert job.kind == "diagnostic_count" and job.result == {"counted": 30}
    assert job.stage("count").done == 30 and job.stage("count").total == 30
    assert any(isinstance(m, EngineConnected) for m in messages)
    assert any(isinstance(m, JobProgressed) for m in messages)
    assert ws.root in recent.load()


@pytest.mark.timeout(120)
def test_reopening_replays_the_running_jobs_history(consented, recent):
    ws = consented
    start_engine(ws)
    with EngineClient(ws) as client:
        job_id = client.submit("diagnostic_count", {"count": 400, "delay": 0.05})["job_id"]
        queued_seq = client.status()["running"]["queued_seq"]
        client.subscribe(queued_seq)
        progress = 0
        while progress < 20:  # let some history build up before the wizard opens
            event = client.next_event(timeout=30)
            if isinstance(event, p.Progress):
                progress = event.done
    app = make_app(ws.root, recent=recent)
    seen: dict = {}

    async def script(pilot):
        await wait_for(pilot, lambda: job_id in app.board.jobs and app.board.jobs[job_id].stage("count"), 60,
                       "the replayed job")
        job = app.board.jobs[job_id]
        seen["first_seq"], seen["done"], seen["status"] = job.first_seq, job.stage("count").done, job.status
        await pilot.pause(0.3)
        seen["activity"] = str(app.screen.query_one(ActivityLine).render())
        await app.engine_request("cancel", job_id=job_id)
        await wait_for(pilot, lambda: app.board.jobs[job_id].status == "cancelled", 60, "the cancel")

    drive(app, script)
    assert seen["first_seq"] == queued_seq, "history replayed from the job's first event"
    assert seen["done"] >= 20 and seen["status"] == "running"
    assert "diagnostic_count" in seen["activity"] and "count" in seen["activity"]


@pytest.mark.timeout(60)
def test_a_flood_of_metrics_is_folded_not_queued(workspace, recent):
    """Thousands of metrics events posted at once cost a handful of redraws, and the last one wins."""
    workspace.record_consent()
    app = make_app(workspace.root, recent=recent, connect=False)
    messages: list = []
    count = 3000

    async def script(pilot):
        await pilot.pause()
        started = time.monotonic()
        for i in range(1, count + 1):
            event = p.make_event("metrics", i, job_id="job-9", values={"iter": i, "loss_src": 1.0, "loss_dst": 1.0})
            app.board.apply(event)
            app.post_message(message_for(event))
        await pilot.pause(0.5)
        assert time.monotonic() - started < 10

    drive(app, script, messages=messages)
    handled = [m for m in messages if isinstance(m, JobMetrics)]  # the hook sees what was dispatched
    assert handled, "the newest update was drawn"
    assert len(handled) < count / 10, f"{len(handled)} of {count} updates were handled one by one"
    assert handled[-1].event.values["iter"] == count


def notices(app) -> list[str]:
    return [notification.message for notification in app._notifications]


@pytest.mark.timeout(120)
def test_a_step_a_dead_engine_left_running_shows_as_failed_with_an_offer(consented, recent):
    ws = consented
    ws.set_step("train", "running", params={"preset": "tiny"})  # what a killed engine leaves behind
    app = make_app(ws.root, recent=recent)

    async def script(pilot):
        await wait_for(pilot, lambda: app.client is not None, 60, "the engine")
        await wait_for(pilot, lambda: app.step_statuses()["train"] == "failed", 10, "the failed step")
        await wait_for(pilot, lambda: any("did not finish" in text for text in notices(app)), 10, "the notice")

    drive(app, script)
    assert any("train" in text and "press r" in text for text in notices(app))


@pytest.mark.timeout(120)
def test_an_engine_error_is_a_notice_with_its_hint(consented, recent):
    app = make_app(consented.root, recent=recent)

    async def script(pilot):
        await wait_for(pilot, lambda: app.client is not None, 60, "the engine")
        await pilot.press("4", "r")  # the check before anything is extracted
        await wait_for(pilot, lambda: any("Nothing is extracted yet" in text for text in notices(app)), 60,
                       "the error notice")

    drive(app, script)
    text = next(text for text in notices(app) if "Nothing is extracted yet" in text)
    assert "swapwizard extract" in text, "the hint comes with the error"
    assert "Traceback" not in text


@pytest.mark.timeout(180)
def test_x_stops_the_screens_running_job_and_says_when_nothing_runs(consented, recent):
    """The step screens' one Stop action (x): on Train with nothing running it says so; on Extract it
    cancels the running extraction in the engine."""
    app = make_app(consented.root, recent=recent)
    seen: dict = {}

    async def script(pilot):
        await wait_for(pilot, lambda: app.client is not None, 60, "the engine")
        app.go_to("train")
        await pilot.pause()
        await pilot.press("x")
        await wait_for(pilot, lambda: "No training is running." in notices(app), 10, "the notice")
        app.go_to("extract")
        await pilot.pause()
        job_id = await app.submit_job("extract", {"side": "both"})
        await wait_for(pilot, lambda: job_id in app.board.jobs and app.board.jobs[job_id].status == "running", 60,
                       "the extraction")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.board.jobs[job_id].status == "cancelled", 120, "the cancel")
        seen["status"] = app.board.jobs[job_id].status

    drive(app, script)
    assert seen["status"] == "cancelled"
    assert not any("Stopping" in text for text in notices(app)), "the extraction stops without the train words"
