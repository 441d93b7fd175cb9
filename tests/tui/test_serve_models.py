"""The browser view shows a model that exists (issue 26): when the configured model has never trained
but others have, the page shows the most recently trained one, lists them all, and switches on request;
another model's training does not draw into the chosen model's chart."""

from __future__ import annotations

import os

from engine import protocol as p
from engine.atomic import atomic_write_json
from tests.helpers import make_workspace
from tui.web.server import Dashboard


def _trained(ws, name: str, last_loss: float, when: float) -> None:
    folder = ws.model_dir(name)
    atomic_write_json(folder / "loss_history.json", {"points": [[10, last_loss, last_loss, 0.0]]})
    os.utime(folder / "loss_history.json", (when, when))


def test_the_page_shows_the_most_recent_model_when_the_configured_one_does_not_exist(tmp_path) -> None:
    ws = make_workspace(tmp_path / "ws")
    _trained(ws, "older", 0.5, 1_000_000)
    _trained(ws, "newer", 0.2, 2_000_000)
    (ws.model_dir("empty")).mkdir(parents=True)  # a folder that never trained is not offered
    dashboard = Dashboard(ws, start_engine=False)

    state = dashboard.snapshot()  # "default" (the configured model) does not exist
    assert state["model"] == "newer" and state["models"] == ["newer", "older"]
    assert state["loss"] == [[10, 0.2, 0.2]]
    chosen = dashboard.snapshot("older")
    assert chosen["model"] == "older" and chosen["loss"] == [[10, 0.5, 0.5]]
    assert dashboard.snapshot("../etc")["model"] == "newer"  # not a model of the list: ignored

    # A training of "fresh" (no files yet) is what the page follows; its figures stay off "older"'s chart.
    for event in (p.make_event("job_queued", 1, job_id="j1", kind="train", params={"model": "fresh"}),
                  p.make_event("job_started", 2, job_id="j1", kind="train", params={"model": "fresh"}, pid=1),
                  p.make_event("metrics", 3, job_id="j1", values={"iter": 4, "loss_src": 0.9, "loss_dst": 0.9})):
        dashboard.board.apply(event)
    assert dashboard.snapshot()["model"] == "fresh" and dashboard.snapshot()["loss"] == [[4, 0.9, 0.9]]
    assert dashboard.snapshot("older")["loss"] == [[10, 0.5, 0.5]]
