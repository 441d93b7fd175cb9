"""The dashboard page's script, run by node against the state the real server builds from a workspace's
files, with a minimal DOM: it draws the job, quality and pictures, keeps the token on every URL, and a
live metrics event moves the iteration and the loss curve on. (The browser itself is not tested.)"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from engine.atomic import atomic_write_json
from tests.helpers import make_workspace
from tests.tui.test_terminal_images import gradient_faces
from tui.web.page import PAGE
from tui.web.server import Dashboard

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

HARNESS = """
const els = {};
const ctx = new Proxy({}, {get: (t, k) => k in t ? t[k] : (k === "measureText" ? () => ({width: 10}) : () => {}),
                           set: (t, k, v) => { t[k] = v; return true; }});
function el(id) { return els[id] || (els[id] = {id, textContent: "", innerHTML: "", clientWidth: 800,
  classList: {toggle() {}}, getContext: () => ctx}); }
const calls = [], sources = [];
globalThis.document = {getElementById: el, addEventListener() {}};
globalThis.location = {search: "?token=abc"};
globalThis.devicePixelRatio = 1;
globalThis.fetch = async url => { calls.push(url); return {ok: true, json: async () => JSON.parse(JSON.stringify(STATE))}; };
globalThis.EventSource = class { constructor(url) { this.url = url; sources.push(this); } };
const STATE = __STATE__;
__SCRIPT__
setTimeout(() => {
  const before = els.job.innerHTML;
  sources[0].onmessage({data: JSON.stringify({type: "metrics", job_id: "j1",
    values: {iter: 777, loss_src: 0.05, loss_dst: 0.06, target: 1000, iters_per_s: 2.5, eta_s: 90,
             until_text: "good in about 4 min"}})});
  console.log(JSON.stringify({before, after: els.job.innerHTML, quality: els.quality.textContent,
    pictures: els.pictures.innerHTML, range: els.range.textContent, calls, source: sources[0].url}));
}, 50);
"""


def test_the_page_script_draws_the_state_and_follows_live_metrics(tmp_path):
    from engine import protocol as p

    ws = make_workspace(tmp_path / "ws")
    model = ws.model_dir("default")
    gradient_faces(model / "previews", count=1)
    (model / "previews" / "000000_0.jpg").rename(model / "previews" / "latest.png")
    atomic_write_json(model / "loss_history.json", {"iteration": 600, "columns": ["iteration", "loss_src", "loss_dst", "time"],
                                                    "points": [[i, 1.0 / i, 1.2 / i, 0.0] for i in range(10, 601, 10)]})
    atomic_write_json(model / "quality_history.json", {"points": [{"iteration": 500, "source": "train",
                                                                   "ssim_dst": 0.41, "ssim_src": 0.44}]})
    atomic_write_json(model / "until.json", {"iteration": 600, "until_text": "too early to tell"})  # --until good
    dashboard = Dashboard(ws, start_engine=False)
    for event in (p.make_event("job_queued", 1, job_id="j1", kind="train", params={}),
                  p.make_event("job_started", 2, job_id="j1", kind="train", params={}, pid=1),
                  p.make_event("metrics", 3, job_id="j1", values={"iter": 610, "loss_src": 0.1, "loss_dst": 0.12})):
        dashboard.board.apply(event)
    state = dashboard.snapshot()
    assert state["loss"][-1][0] == 610 and state["pictures"][0]["path"] == "model/default/previews/latest.png"

    script = PAGE.split("<script>")[1].split("</script>")[0]
    program = HARNESS.replace("__STATE__", json.dumps(state)).replace("__SCRIPT__", script)
    done = subprocess.run(["node", "-e", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    drawn = json.loads(done.stdout.strip().splitlines()[-1])
    assert "iteration 610" in drawn["before"] and "iteration 777 / 1000" in drawn["after"]
    assert "until good: too early to tell" in drawn["before"] and "until good: good in about 4 min" in drawn["after"]
    assert drawn["quality"].startswith("dst 0.410") and "(at iteration 500)" in drawn["quality"]
    assert drawn["range"] == "iterations 10 – 777 (whole run)"
    assert "/file/model/default/previews/latest.png?v=" in drawn["pictures"] and "token=abc" in drawn["pictures"]
    assert drawn["calls"] == ["/api/state?token=abc"] and drawn["source"] == "/events?token=abc"
