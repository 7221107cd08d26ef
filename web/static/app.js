// LPSGM web page: upload -> montage -> job -> hypnogram, signals, statistics, downloads.
// Talks only to this service's /api (see /openapi.json); no external resource is loaded.
"use strict";

const STAGES = ["W", "N1", "N2", "N3", "REM"];
const COLORS = { W: "#f2c14e", N1: "#9ad1d4", N2: "#3d7ea6", N3: "#1b3a5c", REM: "#d1495b" };
const LEVEL = { W: 4, REM: 3, N1: 2, N2: 1, N3: 0 }; // clinical order, W on top
const EPOCHS_PER_HOUR = 120;

const state = { file: null, job: null, recording: null, channels: [], hyp: null, epoch: 0, nEpochs: 0 };
const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const res = await fetch(path, options);
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
  if (!res.ok) {
    const err = new Error((body && body.error) || `HTTP ${res.status}`);
    err.body = body;
    throw err;
  }
  return body;
}

// ------------------------------------------------------------------ service info
async function loadInfo() {
  try {
    const info = await api("/api/info");
    state.channels = info.channels;
    $("weights").textContent = "weights: " + info.weights_description;
    $("demo-banner").hidden = !info.demo_weights;
  } catch (e) {
    showError("Cannot reach the service: " + e.message);
  }
}

// ------------------------------------------------------------------ upload
function upload(file, montage) {
  showError("");
  state.file = file;
  $("results").hidden = true;
  $("montage-section").hidden = true;
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  $("upload-status").textContent = `uploading ${file.name} (${(file.size / 1e6).toFixed(1)} MB)…`;
  let url = "/api/jobs?filename=" + encodeURIComponent(file.name);
  if (montage) url += "&channels=" + encodeURIComponent(JSON.stringify(montage));
  const xhr = new XMLHttpRequest();
  xhr.open("POST", url);
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) bar.value = ev.loaded / ev.total; };
  xhr.onerror = () => {
    $("upload-status").textContent = "";
    showError(`${file.name}: the upload was interrupted (connection lost or refused by the server)`);
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = { error: xhr.responseText }; }
    if (xhr.status !== 201) {
      $("upload-status").textContent = "";
      bar.hidden = true;
      showError(`${file.name}: ${body.error || "HTTP " + xhr.status}`);
      if (body.labels && body.labels.length) showMontage(body.labels, {}, true);
      return;
    }
    bar.value = 1;
    $("upload-status").textContent = `uploaded ${file.name}`;
    state.job = body.id;
    state.recording = body.recording;
    const r = body.recording;
    $("recording-info").textContent = `${r.variant}, ${(r.duration_s / 3600).toFixed(2)} h (${r.n_epochs} epochs), ` +
      `start ${r.start_time || "unknown"}, ${r.labels.length} signals` +
      (r.layout ? `; ${r.layout}` : "") +
      r.warnings.map((w) => `\nwarning: ${w}`).join("") +
      Object.entries(r.dropped_signals || {}).map(([k, v]) => `\nsignal ${k} not usable: ${v}`).join("");
    showMontage(r.labels, r.montage, false);
  };
  xhr.send(file);
}

function setupDrop() {
  const drop = $("drop");
  ["dragenter", "dragover"].forEach((ev) => drop.addEventListener(ev, (e) => {
    e.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((ev) => drop.addEventListener(ev, (e) => {
    e.preventDefault(); drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]); });
  $("file").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
}

// ------------------------------------------------------------------ montage table
function option(value, text, selected) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text; o.selected = selected;
  return o;
}

function showMontage(labels, montage, refused) {
  const body = $("montage-table").querySelector("tbody");
  body.innerHTML = "";
  for (const ch of state.channels) {
    const src = montage[ch.channel];
    const pos = src == null ? "" : (typeof src === "string" ? src : src[0]);
    const neg = src == null || typeof src === "string" ? "" : src[1];
    const tr = document.createElement("tr");
    tr.dataset.channel = ch.channel;
    const selPos = document.createElement("select");
    selPos.className = "pos";
    selPos.setAttribute("aria-label", `${ch.channel} label`);
    selPos.appendChild(option("", "— not used —", pos === ""));
    labels.forEach((l) => selPos.appendChild(option(l, l, l === pos)));
    const selNeg = document.createElement("select");
    selNeg.className = "neg";
    selNeg.setAttribute("aria-label", `${ch.channel} reference`);
    selNeg.appendChild(option("", "(none)", neg === ""));
    labels.forEach((l) => selNeg.appendChild(option(l, l, l === neg)));
    [ch.channel, ch.kind].forEach((t) => { const td = document.createElement("td"); td.textContent = t; tr.appendChild(td); });
    [selPos, selNeg].forEach((s) => { const td = document.createElement("td"); td.appendChild(s); tr.appendChild(td); });
    body.appendChild(tr);
  }
  $("montage-section").hidden = false;
  $("run").hidden = refused;
  $("reupload").hidden = !refused;
}

function editedMontage() {
  const m = {};
  for (const tr of $("montage-table").querySelectorAll("tbody tr")) {
    const pos = tr.querySelector("select.pos").value;
    const neg = tr.querySelector("select.neg").value;
    m[tr.dataset.channel] = pos === "" ? null : (neg === "" ? pos : [pos, neg]);
  }
  return m;
}

// ------------------------------------------------------------------ job
async function run() {
  showError("");
  $("results").hidden = true;
  try {
    await api(`/api/jobs/${state.job}/start`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ montage: editedMontage() }),
    });
  } catch (e) {
    showError(`${state.file ? state.file.name : "job"}: ${e.message}`);
    return;
  }
  $("run").disabled = true;
  $("cancel").hidden = false;
  $("job-progress").hidden = false;
  poll();
}

async function poll() {
  let job;
  try { job = await api(`/api/jobs/${state.job}`); } catch (e) { showError(e.message); return; }
  const bar = $("job-progress");
  bar.value = job.state === "done" ? 1 : job.progress;
  const where = job.queue_position ? ` (position ${job.queue_position} in the queue)` : "";
  $("job-status").textContent = `${job.state}${job.phase && job.phase !== job.state ? ": " + job.phase : ""}${where}`;
  if (job.state === "queued" || job.state === "running") { setTimeout(poll, 400); return; }
  $("run").disabled = false;
  $("cancel").hidden = true;
  if (job.state === "done") { await showResults(job); return; }
  bar.hidden = true;
  if (job.state === "failed") showError(`${job.file}: ${job.reason}`);
  if (job.state === "cancelled") $("job-status").textContent = "cancelled: the job and its files were deleted";
  $("run").disabled = true; // the upload was deleted with the job
}

async function cancel() {
  try { await api(`/api/jobs/${state.job}/cancel`, { method: "POST" }); } catch (e) { showError(e.message); }
}

// ------------------------------------------------------------------ results
async function showResults(job) {
  const [hyp, stats] = await Promise.all([api(`/api/jobs/${job.id}/hypnogram`), api(`/api/jobs/${job.id}/stats`)]);
  state.hyp = hyp;
  state.nEpochs = hyp.epoch.length;
  $("results").hidden = false;
  $("job-status").textContent = `done in ${job.seconds} s: ${state.nEpochs} epochs`;
  drawHypnogram(hyp);
  fillStats(stats);
  fillDownloads(job.files);
  $("lines").textContent = (job.result.lines || []).join("\n");
  $("epoch-input").max = state.nEpochs;
  await showEpoch(0);
}

function drawHypnogram(hyp) {
  const n = hyp.stage.length;
  const hours = (i) => i / EPOCHS_PER_HOUR;
  const x = [], y = [];
  const level = (s) => (s in LEVEL ? LEVEL[s] : null); // an unknown epoch ("?") is a gap
  hyp.stage.forEach((s, i) => { x.push(hours(i)); y.push(level(s)); });
  x.push(hours(n)); y.push(level(hyp.stage[n - 1]));
  const traces = [{
    x, y, type: "scatter", mode: "lines", line: { shape: "hv", color: "#222", width: 1.2 },
    name: "hypnogram", xaxis: "x", yaxis: "y2", hovertemplate: "%{x:.2f} h<extra></extra>",
  }];
  const centers = hyp.stage.map((_, i) => hours(i + 0.5));
  hyp.classes.forEach((c, k) => traces.push({
    x: centers, y: hyp.probabilities.map((p) => (p[k] === null ? 0 : p[k])), type: "bar", name: c, width: 1 / EPOCHS_PER_HOUR,
    marker: { color: COLORS[c], line: { width: 0 } }, xaxis: "x", yaxis: "y",
    hovertemplate: `${c} %{y:.2f}<extra></extra>`,
  }));
  const layout = {
    barmode: "stack", bargap: 0, margin: { l: 60, r: 20, t: 10, b: 45 }, showlegend: true,
    legend: { orientation: "h", y: -0.18 }, hovermode: "closest",
    xaxis: { title: "time from recording start (h)", range: [0, hours(n)] },
    yaxis: { domain: [0, 0.45], range: [0, 1], title: "probability" },
    yaxis2: { domain: [0.52, 1], range: [-0.5, 4.5], tickvals: [4, 3, 2, 1, 0],
              ticktext: ["W", "REM", "N1", "N2", "N3"], title: "stage" },
    shapes: [],
  };
  Plotly.newPlot("hypnogram", traces, layout, { displaylogo: false, responsive: true });
  $("hypnogram").on("plotly_click", (ev) => {
    if (!ev.points.length) return;
    const epoch = Math.min(n - 1, Math.max(0, Math.floor(ev.points[0].x * EPOCHS_PER_HOUR + 1e-9)));
    showEpoch(epoch);
  });
}

function markEpoch(epoch) {
  const x0 = epoch / EPOCHS_PER_HOUR, x1 = (epoch + 1) / EPOCHS_PER_HOUR;
  Plotly.relayout("hypnogram", { shapes: [{ type: "rect", xref: "x", yref: "paper", x0, x1, y0: 0, y1: 1,
    fillcolor: "rgba(0,0,0,0.15)", line: { width: 1, color: "#000" } }] });
}

async function showEpoch(epoch) {
  epoch = Math.min(state.nEpochs - 1, Math.max(0, epoch));
  state.epoch = epoch;
  $("epoch-input").value = epoch + 1;
  let page;
  try { page = await api(`/api/jobs/${state.job}/signals?epoch=${epoch}`); } catch (e) { showError(e.message); return; }
  const scale = Number($("scale").value);
  const traces = page.data.map((row, c) => ({
    x: row.map((_, i) => page.t0_s + i / page.rate_hz), y: row.map((v) => v - c * scale),
    type: "scatter", mode: "lines", line: { width: 0.8, color: "#1d2430" }, name: page.channels[c],
    hovertemplate: `${page.channels[c]} %{customdata:.1f} µV<extra></extra>`, customdata: row,
  }));
  const stage = state.hyp.stage[epoch];
  const k = STAGES.indexOf(stage);
  const conf = k >= 0 ? state.hyp.probabilities[epoch][k] : null;
  const flag = state.hyp.flag ? state.hyp.flag[epoch] : "";
  const clock = new Date(epoch * 30 * 1000).toISOString().substr(11, 8);
  $("viewer-title").textContent = `epoch ${epoch + 1} / ${state.nEpochs} · ${clock} · ` +
    (k >= 0 ? `stage ${stage} · confidence ${(100 * conf).toFixed(0)} %` : "stage unknown (not staged)") +
    (flag && flag !== "ok" ? ` · flag: ${flag}` : "");
  const layout = {
    margin: { l: 140, r: 20, t: 10, b: 45 }, showlegend: false,
    xaxis: { title: "time from recording start (s)", range: [page.t0_s, page.t0_s + 30 * page.count] },
    yaxis: { tickvals: page.channels.map((_, c) => -c * scale),
             ticktext: page.channels.map((ch, c) => `${ch} (${page.sources[c]})`),
             range: [-(page.channels.length - 0.5) * scale, 0.5 * scale], zeroline: false, fixedrange: true },
    annotations: [{ xref: "paper", yref: "paper", x: 1, y: 1.0, xanchor: "right", showarrow: false,
                    text: `${scale} µV between channel baselines (raw derivations, 100 Hz)`, font: { size: 11 } }],
  };
  Plotly.react("viewer", traces, layout, { displaylogo: false, responsive: true });
  markEpoch(epoch);
}

function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(1);
  return String(v);
}

function fillStats(doc) {
  const body = $("stats-table").querySelector("tbody");
  body.innerHTML = "";
  const stats = doc.statistics || {}, units = doc.units || {};
  for (const [key, value] of Object.entries(stats)) {
    if (value !== null && typeof value === "object") continue;
    const tr = document.createElement("tr");
    [[key, ""], [fmt(value), "num"], [units[key] || "", ""]].forEach(([t, cls]) => {
      const td = document.createElement("td"); td.textContent = t; if (cls) td.className = cls; tr.appendChild(td);
    });
    body.appendChild(tr);
  }
}

function fillDownloads(files) {
  const ul = $("downloads");
  ul.innerHTML = "";
  for (const f of files) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = f.url; a.download = f.name; a.className = "download"; a.dataset.name = f.name;
    a.textContent = `${f.name} (${(f.size_bytes / 1024).toFixed(1)} kB)`;
    li.appendChild(a);
    ul.appendChild(li);
  }
}

// ------------------------------------------------------------------ wiring
window.addEventListener("DOMContentLoaded", () => {
  loadInfo();
  setupDrop();
  $("run").addEventListener("click", run);
  $("cancel").addEventListener("click", cancel);
  $("reupload").addEventListener("click", () => state.file && upload(state.file, editedMontage()));
  $("prev").addEventListener("click", () => showEpoch(state.epoch - 1));
  $("next").addEventListener("click", () => showEpoch(state.epoch + 1));
  $("epoch-input").addEventListener("change", (e) => showEpoch(Number(e.target.value) - 1));
  $("scale").addEventListener("change", () => showEpoch(state.epoch));
});
