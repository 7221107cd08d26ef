// LPSGM web page: upload -> montage -> job -> hypnogram, signals, statistics, downloads.
// Talks only to this service's /api (see /openapi.json); no external resource is loaded.
"use strict";

const STAGES = ["W", "N1", "N2", "N3", "REM"];
const COLORS = { W: "#f2c14e", N1: "#9ad1d4", N2: "#3d7ea6", N3: "#1b3a5c", REM: "#d1495b" };
const LEVEL = { W: 4, REM: 3, N1: 2, N2: 1, N3: 0 }; // clinical order, W on top
const EPOCHS_PER_HOUR = 120;

const state = { file: null, job: null, recording: null, channels: [], hyp: null, epoch: 0, nEpochs: 0,
                review: null, start: null, pollTimer: null, t0: 0 };
const LOW_CONFIDENCE = 0.5;
const KEY_STAGE = { w: "W", 1: "N1", 2: "N2", 3: "N3", r: "REM" };
// Plain names and one-line meanings of the statistics of NAME.stats.json (docs/clinical.md).
const STAT_TEXT = {
  TIB: ["time in bed", "lights-off to lights-on (the whole recording when unknown)"],
  TST: ["total sleep time", "epochs scored N1, N2, N3 or REM"],
  SE: ["sleep efficiency", "total sleep time / time in bed"],
  SOL: ["sleep onset latency", "lights-off to the first sleep epoch"],
  WASO: ["wake after sleep onset", "wake between sleep onset and the final awakening"],
  SPT: ["sleep period time", "sleep onset to the last sleep epoch"],
  REM_latency: ["REM latency", "sleep onset to the first REM epoch"],
  awakenings: ["awakenings", "runs of wake inside the sleep period"],
  W: ["wake", "minutes of W over the time in bed"], N1: ["N1", "minutes of stage N1"],
  N2: ["N2", "minutes of stage N2"], N3: ["N3", "minutes of stage N3 (slow-wave sleep)"],
  REM: ["REM", "minutes of REM sleep"],
  N1_pct: ["N1 share", "N1 as a share of total sleep time"], N2_pct: ["N2 share", "N2 as a share of total sleep time"],
  N3_pct: ["N3 share", "N3 as a share of total sleep time"], REM_pct: ["REM share", "REM as a share of total sleep time"],
  n_epochs: ["epochs", "30-s epochs in the recording"], epoch_seconds: ["epoch length", "length of one scored epoch"],
  lights_off: ["lights-off", "start of the time in bed, from the recording start"],
  lights_on: ["lights-on", "end of the time in bed, from the recording start"],
  LPS: ["latency to persistent sleep", "lights-off to the first 10 min of uninterrupted sleep"],
  SME: ["sleep maintenance efficiency", "total sleep time / sleep period time"],
  SFI: ["sleep fragmentation index", "transitions from sleep to wake per hour of sleep"],
  N1_latency: ["N1 latency", "sleep onset to the first N1 epoch"],
  N2_latency: ["N2 latency", "sleep onset to the first N2 epoch"],
  N3_latency: ["N3 latency", "sleep onset to the first N3 epoch"],
  REM_latency_lights: ["REM latency from lights-off", "lights-off to the first REM epoch"],
  n_transitions: ["stage changes", "changes of stage between consecutive epochs"],
  cycles: ["NREM-REM cycles", "sleep cycles ending with a REM period (docs/clinical.md)"],
};
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
// Everything a previous upload or job left on the page goes, before a new upload or after a refusal.
function resetPage() {
  if (state.pollTimer) { clearTimeout(state.pollTimer); state.pollTimer = null; }
  state.job = null; state.recording = null; state.hyp = null; state.review = null; state.epoch = 0; state.nEpochs = 0;
  $("results").hidden = true;
  $("montage-section").hidden = true;
  $("open-outputs").hidden = true;
  $("recording-info").textContent = "";
  $("upload-status").textContent = "";
  $("job-status").textContent = "";
  $("job-progress").hidden = true;
  $("job-progress").value = 0;
  $("run").disabled = false;
  $("run").hidden = false;
  $("cancel").hidden = true;
  $("reupload").hidden = true;
  $("reviewed-downloads").innerHTML = "";
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
}

function upload(file, montage) {
  showError("");
  resetPage();
  state.file = file;
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
      resetPage();
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
    $("open-outputs").hidden = false;
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
  state.t0 = Date.now();
  poll();
}

async function poll() {
  state.pollTimer = null;
  const id = state.job;
  let job;
  try { job = await api(`/api/jobs/${id}`); } catch (e) { showError(e.message); return; }
  if (id !== state.job) return; // a new upload replaced this job meanwhile
  const bar = $("job-progress");
  // Reading, filtering and encoding report no fraction: the bar is then indeterminate (animated).
  if (job.state === "running" && !(job.progress > 0)) { bar.removeAttribute("value"); bar.classList.add("busy"); }
  else { bar.value = job.state === "done" ? 1 : job.progress; bar.classList.remove("busy"); }
  const where = job.queue_position ? ` (position ${job.queue_position} in the queue)` : "";
  const pct = job.state === "running" && job.progress > 0 ? ` ${(100 * job.progress).toFixed(0)} %` : "";
  const secs = ` · ${((Date.now() - state.t0) / 1000).toFixed(0)} s`;
  $("job-status").textContent = `${job.state}${job.phase && job.phase !== job.state ? ": " + job.phase : ""}${pct}${where}${secs}`;
  if (job.state === "queued" || job.state === "running") { state.pollTimer = setTimeout(poll, 400); return; }
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
  const [hyp, stats, review] = await Promise.all([api(`/api/jobs/${job.id}/hypnogram`),
    api(`/api/jobs/${job.id}/stats`), api(`/api/jobs/${job.id}/review`)]);
  state.job = job.id;
  state.hyp = hyp;
  state.review = review;
  state.nEpochs = hyp.epoch.length;
  state.start = stats.start_time ? Date.parse(stats.start_time.slice(0, 19) + "Z") : null;
  history.replaceState(null, "", "#job=" + job.id);
  $("results").hidden = false;
  $("job-status").textContent = job.result && job.result.opened ? `opened: ${state.nEpochs} epochs staged earlier`
    : `done in ${job.seconds} s: ${state.nEpochs} epochs`;
  drawHypnogram(hyp);
  drawSpectrogram(job.id);
  fillStats(stats);
  fillDownloads(job.files);
  fillReview();
  $("lines").textContent = ((job.result && job.result.lines) || []).join("\n");
  $("epoch-input").max = state.nEpochs;
  await showEpoch(0);
}

// Time axis: clock time when the recording's start is known, else hours from the start.
function xOf(epoch) {
  if (state.start === null) return epoch / EPOCHS_PER_HOUR;
  return new Date(state.start + epoch * 30000).toISOString().replace("T", " ").slice(0, 19);
}
function epochOf(x) {
  if (state.start === null) return Math.floor(x * EPOCHS_PER_HOUR + 1e-9);
  return Math.floor((Date.parse(String(x).replace(" ", "T") + (String(x).length > 10 ? "Z" : "T00:00:00Z")) - state.start) / 30000 + 1e-6);
}
function clockOf(epoch) {
  const ms = (state.start === null ? 0 : state.start) + epoch * 30000;
  return new Date(ms).toISOString().substr(11, 8);
}

function reviewedStage(i) {
  const r = state.review;
  if (r && r.edits && (String(i) in r.edits)) return r.edits[String(i)];
  return state.hyp.stage[i];
}

function needsCheck(i) {
  const flag = state.hyp.flag ? state.hyp.flag[i] : "ok";
  const conf = state.hyp.confidence ? Number(state.hyp.confidence[i]) : 1;
  return (flag && flag !== "ok" && flag !== "outside_tib") || !(conf >= LOW_CONFIDENCE);
}

function stripShapes() {
  // Strips under the hypnogram: flagged (red), low confidence (orange); above it: set by a scorer (green).
  const shapes = [];
  const add = (i, color, y0, y1) => shapes.push({ type: "rect", xref: "x", yref: "paper", x0: xOf(i), x1: xOf(i + 1),
    y0, y1, fillcolor: color, line: { width: 0 }, layer: "above" });
  for (let i = 0; i < state.nEpochs; i++) {
    const flag = state.hyp.flag ? state.hyp.flag[i] : "ok";
    if (flag && flag !== "ok" && flag !== "outside_tib") add(i, "#d62728", 0.52, 0.56);
    else if (needsCheck(i)) add(i, "#f28e2b", 0.52, 0.56);
    if (state.review && state.review.edits && String(i) in state.review.edits) add(i, "#2ca02c", 0.97, 1.0);
  }
  return shapes;
}

function drawHypnogram(hyp) {
  const n = hyp.stage.length;
  const x = [], y = [];
  const level = (s) => (s in LEVEL ? LEVEL[s] : null); // an unknown epoch ("?") is a gap
  for (let i = 0; i < n; i++) { x.push(xOf(i)); y.push(level(reviewedStage(i))); }
  x.push(xOf(n)); y.push(level(reviewedStage(n - 1)));
  const clock = state.start !== null;
  const traces = [{
    x, y, type: "scatter", mode: "lines", line: { shape: "hv", color: "#222", width: 1.2 },
    name: "hypnogram", xaxis: "x", yaxis: "y2", hovertemplate: clock ? "%{x|%H:%M:%S}<extra></extra>" : "%{x:.2f} h<extra></extra>",
  }];
  const centers = hyp.stage.map((_, i) => (clock ? new Date(state.start + (i + 0.5) * 30000).toISOString().replace("T", " ").slice(0, 23)
    : (i + 0.5) / EPOCHS_PER_HOUR));
  hyp.classes.forEach((c, k) => traces.push({
    x: centers, y: hyp.probabilities.map((p) => (p[k] === null ? 0 : p[k])), type: "bar", name: c,
    width: clock ? 30000 : 1 / EPOCHS_PER_HOUR,
    marker: { color: COLORS[c], line: { width: 0 } }, xaxis: "x", yaxis: "y",
    hovertemplate: `${c} %{y:.2f}<extra></extra>`,
  }));
  const layout = {
    barmode: "stack", bargap: 0, margin: { l: 60, r: 20, t: 10, b: 45 }, showlegend: true,
    legend: { orientation: "h", y: -0.18 }, hovermode: "closest",
    xaxis: clock ? { title: { text: "clock time" }, type: "date", range: [xOf(0), xOf(n)], tickformat: "%H:%M" }
      : { title: { text: "time from recording start (h; start time unknown)" }, range: [0, n / EPOCHS_PER_HOUR] },
    yaxis: { domain: [0, 0.45], range: [0, 1], title: { text: "probability" } },
    yaxis2: { domain: [0.58, 0.96], range: [-0.5, 4.5], tickvals: [4, 3, 2, 1, 0],
              ticktext: ["W", "REM", "N1", "N2", "N3"], title: { text: "stage" } },
    shapes: stripShapes(),
  };
  Plotly.react("hypnogram", traces, layout, { displaylogo: false, responsive: true });
  if (!state.clickBound) {
    state.clickBound = true;
    $("hypnogram").on("plotly_click", (ev) => {
      if (!ev.points.length) return;
      showEpoch(Math.min(state.nEpochs - 1, Math.max(0, epochOf(ev.points[0].x))));
    });
  }
}

async function drawSpectrogram(jobId) {
  let sp;
  try { sp = await api(`/api/jobs/${jobId}/spectrogram`); } catch (e) { sp = { channel: null }; }
  if (!sp.channel) { $("spectrogram").hidden = true; return; }
  $("spectrogram").hidden = false;
  const n = sp.power_db[0].length;
  const xs = [...Array(n).keys()].map((i) => (state.start !== null
    ? new Date(state.start + (i + 0.5) * 30000).toISOString().replace("T", " ").slice(0, 23) : (i + 0.5) / EPOCHS_PER_HOUR));
  Plotly.newPlot("spectrogram", [{ type: "heatmap", x: xs, y: sp.freqs, z: sp.power_db, zmin: sp.vmin, zmax: sp.vmax,
    colorscale: "RdBu", showscale: false, // no colour bar: the time axis lines up with the hypnogram's
    hovertemplate: "%{y:.2f} Hz: %{z:.1f} dB<extra></extra>" }],
  { margin: { l: 60, r: 20, t: 24, b: 20 }, title: { text: `spectrogram ${sp.channel}: Welch 4-s segments per epoch, ${sp.unit}; colours blue ${sp.vmin} dB to red ${sp.vmax} dB`,
    font: { size: 11 }, x: 0, xanchor: "left" },
    xaxis: state.start !== null ? { type: "date", tickformat: "%H:%M", range: [xOf(0), xOf(n)] } : { range: [0, n / EPOCHS_PER_HOUR] },
    yaxis: { title: { text: "Hz" } } }, { displaylogo: false, responsive: true });
}

function markEpoch(epoch) {
  Plotly.relayout("hypnogram", { shapes: [...stripShapes(), { type: "rect", xref: "x", yref: "paper", x0: xOf(epoch),
    x1: xOf(epoch + 1), y0: 0, y1: 1, fillcolor: "rgba(0,0,0,0.15)", line: { width: 1, color: "#000" } }] });
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
  const clock = clockOf(epoch);
  $("viewer-title").textContent = `epoch ${epoch + 1} / ${state.nEpochs} · ${clock} · ` +
    (k >= 0 ? `stage ${stage} · confidence ${(100 * conf).toFixed(0)} %` : "stage unknown (not staged)") +
    (flag && flag !== "ok" ? ` · flag: ${flag}` : "");
  showReviewEpoch();
  const layout = {
    margin: { l: 140, r: 20, t: 10, b: 45 }, showlegend: false,
    xaxis: { title: { text: `time from recording start (s); epoch starts at ${clock}` }, range: [page.t0_s, page.t0_s + 30 * page.count] },
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
    tr.dataset.key = key;
    const [name, meaning] = STAT_TEXT[key] || [key, ""];
    [[name, ""], [fmt(value), "num"], [units[key] || "", ""], [meaning, "meaning"]].forEach(([t, cls]) => {
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

// ------------------------------------------------------------------ review
function showReviewEpoch() {
  if (!state.hyp) return;
  const e = state.epoch;
  const auto = state.hyp.stage[e];
  const now = reviewedStage(e);
  const edited = state.review && state.review.edits && String(e) in state.review.edits;
  $("review-epoch").textContent = `epoch ${e + 1} (${clockOf(e)}): ` +
    (edited ? `${now} (reviewed; automatic ${auto})` : `${auto} (automatic)`);
}

function fillReview() {
  const r = state.review;
  if (!r) return;
  const s = r.summary;
  $("review-summary").textContent = s.n_edits
    ? `${s.n_reviewed} epoch(s) reviewed, ${s.n_changed} changed from the automatic hypnogram; kappa auto vs reviewed ` +
      `${s.kappa_auto_vs_reviewed === null ? "n/a" : s.kappa_auto_vs_reviewed.toFixed(3)}; last edit ${s.last_edit}`
    : "not reviewed yet: every stage is the model's";
  const body = $("trail").querySelector("tbody");
  body.innerHTML = "";
  for (const t of r.trail.slice().reverse()) {
    const tr = document.createElement("tr");
    [t.time, String(t.epoch + 1), `${t.old} → ${t.new}`, t.note || ""].forEach((v) => {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    });
    body.appendChild(tr);
  }
  $("trail-count").textContent = String(r.trail.length);
  showReviewEpoch();
}

async function setStage(stage) {
  if (!state.hyp) return;
  const epoch = state.epoch;
  const note = $("review-note").value;
  try {
    state.review = await api(`/api/jobs/${state.job}/review`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ epoch, stage, note: note || null, by: state.tab }),
    });
  } catch (e) { showError(`review: ${e.message}`); return; }
  $("review-note").value = "";
  drawHypnogram(state.hyp);
  fillReview();
  if (epoch < state.nEpochs - 1) await showEpoch(epoch + 1); else markEpoch(epoch);
}

function nextToCheck() {
  for (let k = 1; k <= state.nEpochs; k++) {
    const i = (state.epoch + k) % state.nEpochs;
    if (needsCheck(i)) return showEpoch(i);
  }
  $("review-summary").textContent = "no flagged or low-confidence epoch in this night";
}

async function downloadReviewed() {
  let files;
  try { files = await api(`/api/jobs/${state.job}/reviewed`); } catch (e) { showError(`reviewed outputs: ${e.message}`); return; }
  const ul = $("reviewed-downloads");
  ul.innerHTML = "";
  for (const f of files) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = f.url; a.download = f.name.split("/").pop(); a.className = "download reviewed"; a.dataset.name = f.name;
    a.textContent = `${f.name} (${(f.size_bytes / 1024).toFixed(1)} kB)`;
    li.appendChild(a); ul.appendChild(li);
  }
}

function onKey(ev) {
  const tag = (ev.target && ev.target.tagName) || "";
  if (["INPUT", "SELECT", "TEXTAREA"].includes(tag) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (!state.hyp || $("results").hidden) return;
  const key = ev.key.toLowerCase();
  if (ev.key === "ArrowLeft") { ev.preventDefault(); showEpoch(state.epoch - 1); }
  else if (ev.key === "ArrowRight") { ev.preventDefault(); showEpoch(state.epoch + 1); }
  else if (ev.key === "Home") { ev.preventDefault(); showEpoch(0); }
  else if (ev.key === "End") { ev.preventDefault(); showEpoch(state.nEpochs - 1); }
  else if (key in KEY_STAGE) { ev.preventDefault(); setStage(KEY_STAGE[key]); }
  else if (key === "f") { ev.preventDefault(); nextToCheck(); }
}

async function openOutputs(files) {
  showError("");
  try {
    for (const f of files) {
      await api(`/api/jobs/${state.job}/outputs?filename=${encodeURIComponent(f.name)}`,
        { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: f });
    }
    $("job-status").textContent = "opening the outputs…";
    const job = await api(`/api/jobs/${state.job}/open`, { method: "POST" });
    const full = await api(`/api/jobs/${job.id}`);
    await showResults(full);
  } catch (e) { showError(`${files.map((f) => f.name).join(", ")}: ${e.message}`); }
}

// A reload keeps the night: the job id is in the address (#job=ID).
async function restoreFromHash() {
  const m = /job=([0-9a-f]{32})/.exec(location.hash);
  if (!m) return;
  try {
    const job = await api(`/api/jobs/${m[1]}`);
    if (job.state !== "done") return;
    state.job = job.id;
    state.recording = job.recording;
    await showResults(job);
  } catch (e) { showError(`this night is no longer on the server (${e.message}): upload it again; its review is kept`); }
}

// ------------------------------------------------------------------ wiring
window.addEventListener("DOMContentLoaded", () => {
  state.tab = "tab-" + Math.random().toString(36).slice(2, 8);
  loadInfo();
  setupDrop();
  restoreFromHash();
  document.addEventListener("keydown", onKey);
  document.querySelectorAll(".stage-buttons button").forEach((b) => b.addEventListener("click", () => setStage(b.dataset.stage)));
  $("next-flagged").addEventListener("click", nextToCheck);
  $("download-reviewed").addEventListener("click", downloadReviewed);
  $("outputs-files").addEventListener("change", (e) => { if (e.target.files.length) openOutputs([...e.target.files]); });
  $("run").addEventListener("click", run);
  $("cancel").addEventListener("click", cancel);
  $("reupload").addEventListener("click", () => state.file && upload(state.file, editedMontage()));
  $("prev").addEventListener("click", () => showEpoch(state.epoch - 1));
  $("next").addEventListener("click", () => showEpoch(state.epoch + 1));
  $("epoch-input").addEventListener("change", (e) => showEpoch(Number(e.target.value) - 1));
  $("scale").addEventListener("change", () => showEpoch(state.epoch));
});
