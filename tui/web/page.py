"""The dashboard's one page: plain HTML, CSS and JavaScript, nothing fetched from elsewhere.

It loads ``/api/state`` (steps, the job, the loss and quality history, the pictures), then follows
``/events`` (server-sent events): progress and metrics update in place, and a job starting or ending,
or a new preview, loads the state again. The loss chart is drawn on a canvas: the x axis follows the
data (the whole run or the last N iterations: the buttons, or the key ``l``), a log y axis, the raw
points dim and a smoothed line (exponential moving average) bright, the held-out SSIM beside it. The
mouth-opening plot draws the destination's opening and the swap's over the held-out faces (the training's
latest measurement, else the last ``quality`` run's: ``engine.quality.expression``'s ``expr_openings``).
The model list (``models``, most recently trained first) switches the page to another model
(``/api/state?model=NAME``).
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>swapwizard</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #111418; color: #dde3ea; }
header { padding: 10px 16px; background: #1b2028; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0; } h2 { font-size: 15px; margin: 0 0 6px; }
main { padding: 12px 16px; display: grid; gap: 16px; grid-template-columns: minmax(320px, 1fr) minmax(320px, 1fr); }
section { background: #1b2028; border-radius: 6px; padding: 10px 12px; }
.wide { grid-column: 1 / -1; }
.steps span { margin-right: 12px; } .done { color: #7bd88f; } .running { color: #ffd866; } .failed { color: #ff6188; }
.todo { color: #8a94a3; } .muted { color: #8a94a3; } .bad { color: #ff6188; }
progress { width: 100%; height: 14px; }
canvas { width: 100%; height: 260px; background: #0d1014; border-radius: 4px; }
button { background: #2a3140; color: #dde3ea; border: 1px solid #3a4356; border-radius: 4px; padding: 2px 8px; cursor: pointer; }
button.on { background: #3d4a63; }
.pictures { display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); }
figure { margin: 0; } figure img { width: 100%; image-rendering: auto; background: #0d1014; border-radius: 4px; }
figcaption { font-size: 12px; color: #8a94a3; } a { color: #78dce8; }
#quality { font-family: ui-monospace, monospace; white-space: pre; }
</style></head>
<body>
<header><h1>swapwizard · <span id="ws"></span></h1>
<label class="muted">model <select id="model"></select></label><span id="conn" class="muted">connecting…</span>
<span class="steps" id="steps"></span></header>
<main>
<section><h2>Job</h2><div id="job" class="muted">no job yet</div></section>
<section><h2>Held-out quality (SSIM, higher is better)</h2><div id="quality" class="muted">not measured yet</div></section>
<section class="wide"><h2>Mouth opening, held-out faces <span class="muted">(does the swap's mouth open as far as,
 and when, the destination's?)</span></h2><canvas id="openings" width="1200" height="160"></canvas>
 <div class="muted"><span style="color:#a9dc76">■ destination</span> <span style="color:#ff6dc6">■ swap</span>
  · faces in frame order · share of the face width</div></section>
<section class="wide"><h2>Loss <span class="muted" id="range"></span>
 <button id="whole" class="on">whole run</button> <button id="last10k">last 10 000</button>
 <button id="last1k">last 1 000</button></h2>
 <canvas id="chart" width="1200" height="260"></canvas>
 <div class="muted"><span style="color:#78dce8">■ src</span> <span style="color:#ff6dc6">■ dst</span>
  · dots: raw points, line: smoothed · log scale</div></section>
<section class="wide"><h2>Pictures <span class="muted">(full resolution: open one to see it alone)</span></h2>
 <div class="pictures" id="pictures"></div></section>
</main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const q = (path, extra) => { const p = new URLSearchParams(extra || {}); if (token) p.set("token", token);
  const s = p.toString(); return path + (s ? "?" + s : ""); };
let state = null, windowSize = null, iteration = null, chosen = "";
const $ = id => document.getElementById(id);

async function refresh() {
  const r = await fetch(q("/api/state", chosen ? {model: chosen} : {}), {cache: "no-store"});
  if (!r.ok) { $("conn").textContent = "refused: " + r.status; return; }
  state = await r.json(); draw();
}
function fmtDur(s) { if (s == null || !isFinite(s)) return "?"; s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(x).padStart(2, "0"); }
function esc(t) { return String(t).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }

function draw() {
  $("ws").textContent = state.workspace + " · model " + state.model;
  $("model").innerHTML = (state.models || []).map(n => `<option${n === state.model ? " selected" : ""}>${esc(n)}</option>`).join("");
  $("conn").textContent = state.connected ? "live" : "engine not connected (retrying)";
  $("steps").innerHTML = Object.entries(state.steps || {}).map(([k, v]) => `<span class="${esc(v)}">${esc(k)}: ${esc(v)}</span>`).join("");
  drawJob(); drawChart(); drawQuality(); drawOpenings(); drawPictures();
}
function drawOpenings() {
  const c = $("openings"), g = c.getContext("2d"); c.width = c.clientWidth * devicePixelRatio; c.height = 160 * devicePixelRatio;
  g.scale(devicePixelRatio, devicePixelRatio); const W = c.clientWidth, H = 160, L = 48, B = 16;
  g.clearRect(0, 0, W, H); g.font = "11px system-ui";
  const m = (state.job && state.job.metrics) || {}, o = m.quality_expr_openings || state.openings;
  if (!o || !o.mouth_dst || o.mouth_dst.length < 2) { g.fillStyle = "#8a94a3"; g.fillText("not measured yet", 12, 20); return; }
  const idx = o.mouth_dst.map((_, i) => i).sort((a, b) => (o.frames || [])[a] - (o.frames || [])[b]);
  const all = o.mouth_dst.concat(o.mouth_swap); let lo = Math.min(...all), hi = Math.max(...all); if (hi - lo < 1e-6) hi = lo + 0.01;
  const X = k => L + (idx.length > 1 ? k / (idx.length - 1) : 0.5) * (W - L - 8), Y = v => 6 + (hi - v) / (hi - lo) * (H - B - 12);
  g.strokeStyle = "#2a3140"; g.fillStyle = "#8a94a3";
  for (const v of [lo, (lo + hi) / 2, hi]) { g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(W - 8, Y(v)); g.stroke(); g.fillText(v.toFixed(3), 4, Y(v) + 4); }
  for (const [key, col] of [["mouth_dst", "#a9dc76"], ["mouth_swap", "#ff6dc6"]]) {
    g.strokeStyle = col; g.lineWidth = 2; g.beginPath();
    idx.forEach((i, k) => k ? g.lineTo(X(k), Y(o[key][i])) : g.moveTo(X(k), Y(o[key][i]))); g.stroke(); }
}
function drawJob() {
  const job = state.job;
  if (!job) { $("job").textContent = "no job yet"; return; }
  let html = `<b>${esc(job.kind)}</b> · <span class="${job.status === "failed" ? "bad" : ""}">${esc(job.status)}</span>`;
  const m = job.metrics || {};
  if (m.iter != null) { iteration = m.iter;
    html += ` · <b id="iteration">iteration ${m.iter}${m.target ? " / " + m.target : ""}</b>`;
    if (m.loss_src != null) html += ` · loss src ${m.loss_src.toFixed(4)} dst ${(m.loss_dst || 0).toFixed(4)}`;
    if (m.iters_per_s != null) html += ` · ${m.iters_per_s.toFixed(2)} it/s · ETA ${fmtDur(m.eta_s)}`; }
  const saved = state.until || {};
  const until = (job.status !== "running" && saved.reason) || m.until_text || saved.until_text;
  if (until) html += `<div id="until">until good: ${esc(until)}</div>`;
  for (const s of job.stages || []) {
    html += `<div>${esc(s.stage)}: ${s.done}${s.total ? " / " + s.total : ""} ${esc(s.unit || "")}` +
      (s.total ? `<progress max="${s.total}" value="${s.done}"></progress>` : "") + `</div>`; }
  if (job.error) html += `<div class="bad">${esc(job.error)}</div><div class="muted">${esc(job.hint || "")}</div>`;
  $("job").innerHTML = html;
}
function smooth(points, w) { let last = 0, n = 0;
  return points.map(([x, y]) => { n++; last = last * w + (1 - w) * y; return [x, last / (1 - Math.pow(w, n))]; }); }
function drawChart() {
  const c = $("chart"), g = c.getContext("2d"); c.width = c.clientWidth * devicePixelRatio; c.height = 260 * devicePixelRatio;
  g.scale(devicePixelRatio, devicePixelRatio); const W = c.clientWidth, H = 260, L = 56, B = 22;
  g.clearRect(0, 0, W, H);
  const pts = (state.loss || []).filter(p => p[0] != null);
  if (!pts.length) { g.fillStyle = "#8a94a3"; g.fillText("no loss values yet", 12, 20); $("range").textContent = ""; return; }
  let x1 = pts[pts.length - 1][0], x0 = pts[0][0];
  if (windowSize && x1 - windowSize > x0) x0 = x1 - windowSize;
  $("range").textContent = `iterations ${x0} – ${x1}` + (windowSize ? ` (last ${windowSize})` : " (whole run)");
  const series = [[1, "#78dce8"], [2, "#ff6dc6"]].map(([i, col]) => {
    const raw = pts.filter(p => p[i] > 0).map(p => [p[0], p[i]]);
    return {col, raw: raw.filter(p => p[0] >= x0), sm: smooth(raw, 0.9).filter(p => p[0] >= x0)}; });
  const ys = series.flatMap(s => s.raw.map(p => p[1]));
  let lo = Math.log10(Math.min(...ys)), hi = Math.log10(Math.max(...ys)); if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
  const X = x => L + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - L - 8), Y = y => 6 + (hi - Math.log10(y)) / (hi - lo) * (H - B - 12);
  g.strokeStyle = "#2a3140"; g.fillStyle = "#8a94a3"; g.font = "11px system-ui";
  for (let k = 0; k <= 4; k++) { const v = Math.pow(10, hi - (hi - lo) * k / 4), y = Y(v);
    g.beginPath(); g.moveTo(L, y); g.lineTo(W - 8, y); g.stroke(); g.fillText(v.toPrecision(3), 4, y + 4); }
  g.fillText("it " + x0, L, H - 6); const t = "it " + x1; g.fillText(t, W - 8 - g.measureText(t).width, H - 6);
  for (const s of series) {
    g.fillStyle = s.col + "66"; for (const [x, y] of s.raw) g.fillRect(X(x) - 1, Y(y) - 1, 2, 2);
    g.strokeStyle = s.col; g.lineWidth = 2; g.beginPath();
    s.sm.forEach(([x, y], i) => i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))); g.stroke(); }
}
function drawQuality() {
  const qs = state.quality || []; if (!qs.length) { $("quality").textContent = "not measured yet"; return; }
  const bars = "▁▂▃▄▅▆▇█", line = i => { const v = qs.map(p => p[i]).filter(v => v != null); if (!v.length) return "";
    const lo = Math.min(...v), hi = Math.max(...v);
    return v.slice(-40).map(x => bars[hi - lo < 1e-9 ? 0 : Math.min(7, Math.floor((x - lo) / (hi - lo) * 8))]).join(""); };
  const last = qs[qs.length - 1];
  $("quality").textContent = `dst ${last[1] != null ? last[1].toFixed(3) : "?"}  ${line(1)}\\n` +
    `src ${last[2] != null ? last[2].toFixed(3) : "?"}  ${line(2)}\\n(at iteration ${last[0]})`;
}
function drawPictures() {
  $("pictures").innerHTML = (state.pictures || []).map(p => { const url = q("/file/" + p.path.split("/").map(encodeURIComponent).join("/"), {v: p.version});
    return `<figure><a href="${esc(url)}" target="_blank"><img src="${esc(url)}" alt="${esc(p.title)}"></a>` +
      `<figcaption>${esc(p.title)} · ${esc(p.path)}</figcaption></figure>`; }).join("") || '<span class="muted">no pictures yet</span>';
}
function setWindow(n, id) { windowSize = n; for (const b of ["whole", "last10k", "last1k"]) $(b).classList.toggle("on", b === id); if (state) drawChart(); }
$("whole").onclick = () => setWindow(null, "whole"); $("last10k").onclick = () => setWindow(10000, "last10k");
$("last1k").onclick = () => setWindow(1000, "last1k");
$("model").onchange = e => { chosen = e.target.value; refresh(); };
document.addEventListener("keydown", e => { if (e.key === "l") { const order = [[null, "whole"], [10000, "last10k"], [1000, "last1k"]];
  const i = order.findIndex(o => o[0] === windowSize); const [n, id] = order[(i + 1) % 3]; setWindow(n, id); } });

let pending = null;
function later() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 300); }
function follow() {
  const source = new EventSource(q("/events"));
  source.onmessage = e => { const ev = JSON.parse(e.data); if (!state) return;
    if (ev.type === "metrics" && ev.values) { const m = ev.values;
      if (state.job && state.job.job_id === ev.job_id) state.job.metrics = m; else return later();
      if (m.loss_src != null && m.iter != null && (!state.loss.length || m.iter > state.loss[state.loss.length - 1][0]))
        state.loss.push([m.iter, m.loss_src, m.loss_dst]);
      if (m.quality_ssim_dst != null) state.quality.push([m.iter, m.quality_ssim_dst, m.quality_ssim_src]);
      drawJob(); drawChart(); drawQuality(); drawOpenings(); }
    else if (ev.type === "progress") { if (state.job && state.job.job_id === ev.job_id) {
        const st = state.job.stages.find(s => s.stage === ev.stage); const v = {stage: ev.stage, done: ev.done, total: ev.total, unit: ev.unit, rate: ev.rate, eta_s: ev.eta_s};
        if (st) Object.assign(st, v); else state.job.stages.push(v); drawJob(); } else later(); }
    else if (ev.type !== "log") later(); };
  source.onerror = () => { $("conn").textContent = "reconnecting…"; };
  source.onopen = () => refresh();
}
refresh().then(follow);
</script></body></html>
"""
