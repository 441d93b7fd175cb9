"""The opening plot: as text (engine.quality.opening_plot, for quality, compare, the wizard and attach)
and in the browser view's page script (run in node against a recording canvas)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from engine.quality.opening_plot import opening_lines
from tui.web.page import PAGE

OPENINGS = {"frames": [30, 10, 20, 40], "mouth_dst": [0.025, 0.01, 0.09, 0.055],
            "mouth_swap": [0.025, 0.025, 0.045, 0.025],
            "eyes_dst": [0.1, 0.1, 0.1, 0.1], "eyes_swap": [0.1, 0.1, 0.1, 0.1]}


def test_the_text_plot_puts_both_openings_on_one_scale_in_frame_order():
    title, dst, swap = opening_lines(OPENINGS)
    assert title == "mouth opening over 4 faces in frame order (0.010 to 0.090 of the face width):"
    assert dst == "destination ▁█▂▅" and swap == "swap        ▂▄▂▂"  # frames 10, 20, 30, 40
    assert opening_lines({"frames": [1], "mouth_dst": [0.1], "mouth_swap": [0.1]}) == []  # one face: no plot
    assert opening_lines(None) == [] and opening_lines({"mouth_dst": [0.1, 0.2]}) == []
    many = {"frames": list(range(100)), "mouth_dst": [i / 100 for i in range(100)], "mouth_swap": [0.5] * 100}
    assert len(opening_lines(many, width=20)[1]) == len("destination ") + 20


HARNESS = """
const drawn = {};
function canvas(id) { const strokes = []; let current = null;
  const ctx = new Proxy({}, {get: (t, k) => k in t ? t[k] : ({
      beginPath: () => { current = []; strokes.push({colour: ctx.strokeStyle, points: current}); },
      moveTo: (x, y) => current.push([x, y]), lineTo: (x, y) => current.push([x, y]),
      measureText: () => ({width: 10}), fillText: (t) => (drawn[id + "_text"] = (drawn[id + "_text"] || []).concat([t]))
    }[k] || (() => {})), set: (t, k, v) => { t[k] = v; return true; }});
  drawn[id] = strokes; return ctx; }
const els = {};
function el(id) { return els[id] || (els[id] = {id, textContent: "", innerHTML: "", clientWidth: 800,
  classList: {toggle() {}}, getContext: () => canvas(id)}); }
globalThis.document = {getElementById: el, addEventListener() {}};
globalThis.location = {search: ""};
globalThis.devicePixelRatio = 1;
globalThis.fetch = async () => ({ok: true, json: async () => STATE});
globalThis.EventSource = class { constructor() {} };
const STATE = __STATE__;
__SCRIPT__
setTimeout(() => console.log(JSON.stringify(drawn)), 50);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_browser_view_draws_the_destination_and_the_swap_lines():
    state = {"workspace": "ws", "model": "default", "connected": True, "steps": {}, "job": None, "loss": [],
             "quality": [], "pictures": [], "openings": OPENINGS}
    script = PAGE.split("<script>")[1].split("</script>")[0]
    source = HARNESS.replace("__STATE__", json.dumps(state)).replace("__SCRIPT__", script)
    out = subprocess.run(["node", "-e", source], capture_output=True, text=True, timeout=60, check=True).stdout
    strokes = json.loads(out.strip().splitlines()[-1])["openings"]
    lines = {s["colour"]: s["points"] for s in strokes if len(s["points"]) == 4}
    dst, swap = lines["#a9dc76"], lines["#ff6dc6"]  # green: the destination, pink: the swap
    assert [x for x, _ in dst] == sorted(x for x, _ in dst)  # in frame order, left to right
    heights = [y for _, y in dst]
    assert heights[1] == min(heights)  # frame 20, the widest opening, is the highest point (y grows down)
    assert max(y for _, y in swap) - min(y for _, y in swap) < (max(heights) - min(heights)) / 3  # a flatter swap
    state["openings"] = None
    source = HARNESS.replace("__STATE__", json.dumps(state)).replace("__SCRIPT__", script)
    out = subprocess.run(["node", "-e", source], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "not measured yet" in json.loads(out.strip().splitlines()[-1])["openings_text"]
