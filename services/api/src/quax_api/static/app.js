// quax-stream dashboard: plain ES module, no build step. uPlot is the global `uPlot`
// (loaded from /static/vendor/uPlot.iife.min.js before this module runs).
//
// Data flow: REST fills the page (run, file list, latest file, waterfall); one WebSocket
// per page, subscribed to the selected run, brings "file" and "run" updates. Messages
// only store the newest documents and mark panels dirty; one requestAnimationFrame
// callback redraws what changed with setData on plots that are created once.

/* global uPlot */

const API = "/api/v1";
const WF_LAST = 60; // files in the waterfall
const WF_DECIMATE = 4; // bins averaged per waterfall column
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 15000;
const HELLO_TIMEOUT_MS = 1500; // fill the page over REST if the socket is not up by then
const RUNS_POLL_MS = 15000;
const RATE_WINDOW = 8; // run updates used for the input-rate estimate
const RATIO_OK = [0.9, 1.1];
const LATENCY_WARN_S = 15;
const STALE_WARN_S = 30;

const COLORS = {
  axis: "#aab4c0",
  grid: "rgba(255,255,255,0.07)",
  runMean: "#58a6ff",
  runBand: "rgba(88,166,255,0.28)",
  runBandEdge: "rgba(88,166,255,0.45)",
  baseline: "#ffa657",
  fileMean: "#7ee787",
  fileBand: "rgba(126,231,135,0.16)",
  fileBandEdge: "rgba(126,231,135,0.35)",
  excess: "#8b98a9",
  matched: "#f2cc60",
  threshold: "#ff7b72",
  candidate: "#ff6bcb",
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// State

const state = {
  gen: 0, // bumped on every run switch; stale responses and messages are ignored
  runs: [],
  runId: null,
  follow: true, // no #run= in the address: follow the newest run
  run: null, // latest quax.run-spectrum/1 document
  runMissing: false,
  file: null, // latest quax.file-spectrum/1 document
  fileMissing: false,
  lastFileLatency: null,
  lastFileNumber: null,
  rateHistory: [], // {slices, t} of recent run updates
  bootstrapRate: null, // from the file list, until two run updates are seen
  droppedBefore: 0, // dropped updates of earlier connections (this run)
  droppedConn: 0, // as reported on the current connection
  filesSeen: 0,
  zoom: null, // {min, max} in MHz, or null for the whole band
  candidatesKey: "",
  log: { run: false, file: false },
};

const conn = {
  ws: null,
  backoff: BACKOFF_MIN_MS,
  retryAt: 0,
  retryTimer: 0,
  helloTimer: 0,
  status: "connecting",
  everConnected: false,
};

const dirty = { run: false, file: false, wf: false, figures: false, size: false };
let rafId = 0;

function schedule(what) {
  if (what) dirty[what] = true;
  if (!rafId) rafId = requestAnimationFrame(frame);
}

function frame() {
  rafId = 0;
  if (dirty.size) {
    dirty.size = false;
    resizeAll();
  }
  if (dirty.run) {
    dirty.run = false;
    renderRun();
  }
  if (dirty.file) {
    dirty.file = false;
    renderFile();
  }
  if (dirty.figures) {
    dirty.figures = false;
    renderFigures();
  }
  if (dirty.wf) {
    dirty.wf = false;
    drawWaterfall();
  }
}

// ---------------------------------------------------------------------------------------
// Formatting

const intFormat = new Intl.NumberFormat("en-US");
const fmtInt = (n) => (Number.isFinite(n) ? intFormat.format(n) : "–");
const fin = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
const SUP = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
const sup = (n) => String(n).replace(/[-0-9]/g, (c) => SUP[c]);

function fmtDuration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

function fmtUtc(t) {
  if (!Number.isFinite(t)) return "–";
  return `${new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19)} UTC`;
}

const plural = (n, word) => (n === 1 ? word : `${word}s`);
const fmtGHz = (hz, digits = 6) => (Number.isFinite(hz) ? (hz / 1e9).toFixed(digits) : "–");
const fmtPsd = (u, v) => (v == null ? "–" : v.toExponential(3));
const fmtSigma = (u, v) => (v == null ? "–" : v.toFixed(2));

function setText(id, text) {
  const el = $(id);
  if (el && el.textContent !== text) el.textContent = text;
}

function setFlag(id, cls, on) {
  const el = $(id);
  if (el) el.classList.toggle(cls, Boolean(on));
}

// ---------------------------------------------------------------------------------------
// Axes and arrays

let axisCache = { key: "", x: [], fLo: NaN, nFft: 0, fs: NaN, binHz: NaN };

/** The frequency offset from f_LO in MHz for a document's axis (computed once per axis). */
function axisOf(doc) {
  const a = doc.axis;
  const f = a.frequency_hz || [];
  const key = `${a.n_fft}|${a.fs_hz}|${a.f_lo_hz}|${f[0]}|${f.length}`;
  if (axisCache.key !== key) {
    const fLo = a.f_lo_hz;
    const x = new Array(f.length);
    for (let i = 0; i < f.length; i++) x[i] = (f[i] - fLo) / 1e6;
    axisCache = { key, x, fLo, nFft: a.n_fft, fs: a.fs_hz, binHz: a.bin_width_hz ?? a.fs_hz / a.n_fft };
  }
  return axisCache;
}

/** Mean of groups of `d` adjacent bins, NaN where a group has a missing value (as the API). */
function decimate(values, d) {
  const n = values.length - (values.length % d);
  const out = new Float64Array(n / d);
  for (let j = 0, i = 0; i < n; j++) {
    let sum = 0;
    for (let k = 0; k < d; k++, i++) {
      const v = values[i];
      sum += typeof v === "number" ? v : NaN;
    }
    out[j] = sum / d;
  }
  return out;
}

function median(values) {
  const finite = Float64Array.from(values).filter(Number.isFinite).sort();
  if (!finite.length) return NaN;
  const m = finite.length >> 1;
  return finite.length % 2 ? finite[m] : 0.5 * (finite[m - 1] + finite[m]);
}

// ---------------------------------------------------------------------------------------
// Plots (uPlot)

const plots = { run: null, file: null, excess: null };
const PLOT_IDS = { run: "run-spectrum", file: "latest-file", excess: "excess" };
let syncingZoom = false;

function plotHeight() {
  return window.innerWidth < 700 ? 230 : 290;
}

function containerWidth(el) {
  const w = el.clientWidth;
  return w > 50 ? w : 600;
}

/** PSD values are drawn in units of 10^e V²/Hz, e from the current y range. */
function psdExponent(u) {
  const s = u.scales.y;
  const m = Math.max(Math.abs(s.min ?? 0), Math.abs(s.max ?? 0));
  return m > 0 && Number.isFinite(m) ? Math.floor(Math.log10(m)) : 0;
}

function psdAxis() {
  return {
    label: (u) => {
      const e = psdExponent(u);
      return e === 0 ? "PSD (V²/Hz)" : `PSD (10${sup(e)} V²/Hz)`;
    },
    values: (u, splits, axisIdx, space, incr) => {
      const k = 10 ** psdExponent(u);
      const linear = u.scales.y.distr !== 3;
      const dec = linear && incr > 0 ? Math.max(0, Math.ceil(-Math.log10(incr / k) - 1e-9)) : null;
      return splits.map((v) => {
        if (v == null) return "";
        if (dec != null) return (v / k).toFixed(Math.min(dec, 6));
        // log axis: label round mantissas only (not the odd value at the bottom edge)
        const mant = v / 10 ** Math.floor(Math.log10(v) + 1e-9);
        return Math.abs(mant - Math.round(mant)) < 0.02 ? String(Number((v / k).toPrecision(2))) : "";
      });
    },
    size: 58,
  };
}

function xAxis() {
  return {
    label: "f − f_LO (MHz)",
    stroke: COLORS.axis,
    grid: { stroke: COLORS.grid, width: 1 },
    ticks: { stroke: COLORS.grid, width: 1 },
  };
}

function yAxis(extra) {
  return {
    stroke: COLORS.axis,
    grid: { stroke: COLORS.grid, width: 1 },
    ticks: { stroke: COLORS.grid, width: 1 },
    ...extra,
  };
}

const xSeries = {
  label: "f − f_LO (MHz)",
  value: (u, v) => (v == null ? "–" : v.toFixed(4)),
};

function logRange(u, min, max) {
  if (!(min > 0) || !(max > 0)) return [1e-12, 1];
  return [min / 1.15, max * 1.15];
}

function commonOptions(el, { series, axes, bands, log }) {
  return {
    width: containerWidth(el),
    height: plotHeight(),
    pxAlign: false,
    series: [xSeries, ...series],
    axes,
    bands,
    scales: {
      x: { time: false },
      // log: pad by 10 % instead of snapping out to whole decades
      y: log ? { distr: 3, log: 10, range: logRange } : { auto: true },
    },
    cursor: {
      drag: { x: true, y: false, setScale: true },
      sync: {
        key: "quax-spectra",
        // share the crosshair only; zoom is synchronised through the setScale hook
        filters: { pub: (type) => type === "mousemove" || type === "mouseleave" },
      },
    },
    legend: { live: true },
    hooks: { setScale: [onSetScale] },
  };
}

function makeRunPlot() {
  const el = $(PLOT_IDS.run);
  const log = state.log.run;
  return new uPlot(
    commonOptions(el, {
      log,
      series: [
        { label: "mean", stroke: COLORS.runMean, width: 1.25, value: fmtPsd },
        { label: "mean + sem", stroke: COLORS.runBandEdge, width: 0.5, value: fmtPsd },
        { label: "mean − sem", stroke: COLORS.runBandEdge, width: 0.5, value: fmtPsd },
        { label: "SG baseline", stroke: COLORS.baseline, width: 1.5, dash: [7, 4], value: fmtPsd },
      ],
      bands: [{ series: [2, 3], fill: COLORS.runBand }],
      axes: [xAxis(), yAxis(psdAxis())],
    }),
    emptyData(5),
    el,
  );
}

function makeFilePlot() {
  const el = $(PLOT_IDS.file);
  const log = state.log.file;
  return new uPlot(
    commonOptions(el, {
      log,
      series: [
        { label: "mean", stroke: COLORS.fileMean, width: 1.25, value: fmtPsd },
        { label: log ? "mean + σ" : "mean + σ", stroke: COLORS.fileBandEdge, width: 0.5, value: fmtPsd },
        { label: log ? "mean − σ (≥ mean/10)" : "mean − σ", stroke: COLORS.fileBandEdge, width: 0.5, value: fmtPsd },
      ],
      bands: [{ series: [2, 3], fill: COLORS.fileBand }],
      axes: [xAxis(), yAxis(psdAxis())],
    }),
    emptyData(4),
    el,
  );
}

function makeExcessPlot() {
  const el = $(PLOT_IDS.excess);
  return new uPlot(
    commonOptions(el, {
      log: false,
      series: [
        { label: "per-bin excess", stroke: COLORS.excess, width: 0.75, value: fmtSigma },
        { label: "matched filter", stroke: COLORS.matched, width: 1.75, value: fmtSigma },
        {
          label: "threshold",
          stroke: COLORS.threshold,
          width: 1.25,
          dash: [6, 4],
          value: (u, v) => (v == null ? "–" : v.toFixed(3)),
        },
        {
          label: "candidates",
          stroke: COLORS.candidate,
          fill: COLORS.candidate,
          paths: () => null,
          points: { show: true, size: 11, width: 2, stroke: "#ffffff", fill: COLORS.candidate },
          value: fmtSigma,
        },
      ],
      axes: [xAxis(), yAxis({ label: "excess (σ)", size: 50 })],
    }),
    emptyData(5),
    el,
  );
}

function emptyData(n) {
  return Array.from({ length: n }, () => []);
}

const MAKERS = { run: makeRunPlot, file: makeFilePlot, excess: makeExcessPlot };

function createPlot(name) {
  const old = plots[name];
  if (old) old.destroy();
  plots[name] = MAKERS[name]();
}

function fullRange(u) {
  const x = u.data[0];
  return x.length ? { min: x[0], max: x[x.length - 1] } : null;
}

/** x-scale changes: from a drag (zoom), a double-click (reset) or our own updates. */
function onSetScale(u, key) {
  if (key !== "x" || syncingZoom || u.quaxApplying) return;
  const { min, max } = u.scales.x;
  const full = fullRange(u);
  if (min == null || max == null || !full) return;
  const tol = 1e-9 * Math.max(1, Math.abs(full.max - full.min));
  state.zoom = min <= full.min + tol && max >= full.max - tol ? null : { min, max };
  applyZoom(u);
}

/** Give every plot (but `source`) the current zoom, and the waterfall too. */
function applyZoom(source) {
  syncingZoom = true;
  try {
    for (const u of Object.values(plots)) {
      if (!u || u === source || !u.data[0].length) continue;
      const r = state.zoom ?? fullRange(u);
      if (u.scales.x.min !== r.min || u.scales.x.max !== r.max) u.setScale("x", r);
    }
  } finally {
    syncingZoom = false;
  }
  setFlag("zoom-reset", "active", state.zoom != null);
  schedule("wf");
}

/** New data for a plot, keeping the zoom; y auto-ranges over the visible window. */
function applyData(u, data) {
  u.quaxApplying = true;
  try {
    u.batch(() => {
      u.setData(data, true);
      if (state.zoom && data[0].length) u.setScale("x", { ...state.zoom });
    });
  } finally {
    u.quaxApplying = false;
  }
}

function resetZoom() {
  state.zoom = null;
  applyZoom(null);
}

function zoomTo(min, max) {
  state.zoom = { min, max };
  applyZoom(null);
}

function resizeAll() {
  const h = plotHeight();
  for (const [name, u] of Object.entries(plots)) {
    if (!u) continue;
    const w = containerWidth($(PLOT_IDS[name]));
    if (u.width !== w || u.height !== h) u.setSize({ width: w, height: h });
  }
  sizeWaterfall();
  dirty.wf = true;
}

// ---------------------------------------------------------------------------------------
// Overlays ("waiting for data" messages on top of a plot)

function overlay(containerId, text) {
  const el = $(containerId);
  let o = el.querySelector(":scope > .overlay");
  if (!o) {
    o = document.createElement("div");
    o.className = "overlay";
    el.appendChild(o);
  }
  o.textContent = text || "";
  o.hidden = !text;
}

// ---------------------------------------------------------------------------------------
// Rendering: run spectrum, excess, candidates, figures

function renderRun() {
  const doc = state.run;
  if (!doc) {
    const msg = state.runId
      ? state.runMissing
        ? `Run ${state.runId} has no cumulative spectrum yet: waiting for its first file…`
        : "Loading…"
      : "No runs yet: waiting for the first file of a run…";
    for (const id of [PLOT_IDS.run, PLOT_IDS.excess]) overlay(id, msg);
    return;
  }
  const ax = axisOf(doc);
  const x = ax.x;
  const n = x.length;
  const log = state.log.run;
  const a = doc.analysis || {};
  const mean = doc.mean || [];
  const sem = doc.sem || [];
  const base = a.baseline || [];
  const m = new Array(n);
  const hi = new Array(n);
  const lo = new Array(n);
  const b = new Array(n);
  for (let i = 0; i < n; i++) {
    const mv = fin(mean[i]);
    const sv = fin(sem[i]);
    const bv = fin(base[i]);
    m[i] = log && mv != null && mv <= 0 ? null : mv;
    if (mv == null || sv == null) {
      hi[i] = lo[i] = null;
    } else {
      hi[i] = mv + sv;
      lo[i] = log && mv - sv <= 0 ? null : mv - sv;
    }
    b[i] = log && bv != null && bv <= 0 ? null : bv;
  }
  applyData(plots.run, [x, m, hi, lo, b]);
  overlay(PLOT_IDS.run, "");

  const ex = a.excess_sigma || [];
  const mf = a.matched_sigma || [];
  const thr = fin(a.threshold_sigma);
  const e = new Array(n);
  const f = new Array(n);
  const t = new Array(n);
  const c = new Array(n).fill(null);
  for (let i = 0; i < n; i++) {
    e[i] = fin(ex[i]);
    f[i] = fin(mf[i]);
    t[i] = thr;
  }
  const candidates = Array.isArray(a.candidates) ? a.candidates : [];
  for (const cand of candidates) {
    let i = Number.isInteger(cand.bin) ? cand.bin : -1;
    if (!(i >= 0 && i < n) && Number.isFinite(cand.frequency_hz) && n > 1) {
      i = Math.round(((cand.frequency_hz - ax.fLo) / 1e6 - x[0]) / (x[1] - x[0]));
    }
    if (i >= 0 && i < n) c[i] = fin(cand.significance);
  }
  applyData(plots.excess, [x, e, f, t, c]);
  overlay(PLOT_IDS.excess, "");

  const fLoGHz = fmtGHz(ax.fLo, 6);
  setText(
    "title-run",
    `Cumulative run spectrum · N = ${fmtInt(doc.slices)} ${plural(doc.slices, "slice")} in ${fmtInt(doc.files)} ${plural(doc.files, "file")} · f_LO = ${fLoGHz} GHz`,
  );
  setText(
    "title-excess",
    `Normalised excess · threshold ${thr == null ? "–" : thr.toFixed(3)} σ · ${candidates.length} candidate${candidates.length === 1 ? "" : "s"} · f_LO = ${fLoGHz} GHz`,
  );
  renderCandidates(doc, ax);
  renderDetails(doc, ax);
  wf.baselineKey = ""; // the waterfall's baseline normalisation follows the run
  dirty.wf = true;
  dirty.figures = true;
  if (document.body.dataset.ready !== "true") document.body.dataset.ready = "true";
}

function renderFile() {
  const doc = state.file;
  if (!doc) {
    const msg = !state.runId
      ? "No runs yet."
      : state.fileMissing
        ? "No file spectrum kept for this run yet: waiting for the next file…"
        : "Loading…";
    overlay(PLOT_IDS.file, msg);
    setText("title-file", "Latest file");
    $("file-flag").hidden = true;
    return;
  }
  const ax = axisOf(doc);
  const x = ax.x;
  const n = x.length;
  const log = state.log.file;
  const mean = doc.mean || [];
  const std = doc.std || [];
  const m = new Array(n);
  const hi = new Array(n);
  const lo = new Array(n);
  for (let i = 0; i < n; i++) {
    const mv = fin(mean[i]);
    const sv = fin(std[i]);
    m[i] = log && mv != null && mv <= 0 ? null : mv;
    if (mv == null || sv == null) {
      hi[i] = lo[i] = null;
    } else {
      hi[i] = mv + sv;
      lo[i] = log ? Math.max(mv - sv, mv / 10) : mv - sv;
      if (log && lo[i] <= 0) lo[i] = null;
    }
  }
  applyData(plots.file, [x, m, hi, lo]);
  const empty = !doc.count;
  overlay(PLOT_IDS.file, empty ? `File #${doc.file_number} has no valid slices (every chunk was rejected).` : "");
  const incomplete = doc.complete === false;
  const revised = doc.revision > 0 ? ` · revision ${doc.revision} (late data merged)` : "";
  setText(
    "title-file",
    `Latest file #${doc.file_number} · ${fmtInt(doc.count)}${incomplete ? ` of ${fmtInt(doc.expected_count)}` : ""} ${plural(doc.count, "slice")}${revised} · f_LO = ${fmtGHz(ax.fLo, 6)} GHz`,
  );
  const flag = $("file-flag");
  flag.hidden = !incomplete;
  flag.title = incomplete ? `closed with ${doc.count} of its ${doc.expected_count} slices` : "";
  const band = doc.count < 2 ? "no σ band: the spread is undefined for one slice" : "±σ band: spread of single-slice spectra";
  setText("note-file", `mean PSD of the slices of file #${doc.file_number} (DAQ ${fmtUtc(doc.daq_time)}); ${band}.`);
}

function renderCandidates(doc, ax) {
  const candidates = (doc.analysis && doc.analysis.candidates) || [];
  const key = `${ax.fLo}|${JSON.stringify(candidates)}`;
  if (key === state.candidatesKey) return;
  state.candidatesKey = key;
  const sorted = [...candidates].sort((p, q) => (fin(q.significance) ?? -Infinity) - (fin(p.significance) ?? -Infinity));
  const tbody = $("candidates").tBodies[0];
  const rows = sorted.map((c, k) => {
    const tr = document.createElement("tr");
    const offsetKHz = (c.frequency_hz - ax.fLo) / 1e3;
    const cells = [
      String(k + 1),
      Number.isFinite(offsetKHz) ? offsetKHz.toFixed(2) : "–",
      fmtGHz(c.frequency_hz, 6),
      fin(c.significance) == null ? "–" : c.significance.toFixed(2),
      fin(c.excess_sigma) == null ? "–" : c.excess_sigma.toFixed(2),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i > 0) td.className = "num";
      tr.appendChild(td);
    });
    tr.tabIndex = 0;
    tr.title = "Zoom the spectra on this candidate";
    const centre = offsetKHz / 1e3;
    const width = Math.max(((doc.analysis && doc.analysis.line_fwhm_hz) || 4850) * 6, 20 * (ax.binHz || 651)) / 1e6;
    tr.dataset.min = String(centre - width / 2);
    tr.dataset.max = String(centre + width);
    if (fin(doc.analysis.threshold_sigma) != null && c.significance >= 2 * doc.analysis.threshold_sigma) {
      tr.classList.add("strong");
    }
    return tr;
  });
  tbody.replaceChildren(...rows);
  $("cand-empty").hidden = rows.length > 0;
  setText(
    "cand-summary",
    rows.length ? `${rows.length} above ${doc.analysis.threshold_sigma} σ` : "",
  );
}

function renderDetails(doc, ax) {
  const a = doc.analysis || {};
  const items = [
    ["run", doc.run_id],
    ["f_LO", `${fmtGHz(ax.fLo, 9)} GHz`],
    ["sampling", `${(ax.fs / 1e6).toFixed(3)} MS/s · n_fft ${fmtInt(ax.nFft)} · bin ${ax.binHz.toFixed(2)} Hz`],
    ["first DAQ file", fmtUtc(doc.first_daq_time)],
    ["last DAQ file", `${fmtUtc(doc.last_daq_time)} · #${doc.last_file}`],
    ["span", fmtDuration(doc.last_daq_time - doc.first_daq_time)],
    ["last update", fmtUtc(doc.emitted_time)],
    ["baseline", `Savitzky–Golay, ${a.baseline_window} bins, degree ${a.baseline_order}`],
    ["line FWHM", Number.isFinite(a.line_fwhm_hz) ? `${(a.line_fwhm_hz / 1e3).toFixed(2)} kHz` : "–"],
    ["threshold", Number.isFinite(a.threshold_sigma) ? `${a.threshold_sigma} σ` : "–"],
  ];
  const dl = $("details");
  const frag = document.createDocumentFragment();
  for (const [k, v] of items) {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v ?? "–";
    div.append(dt, dd);
    frag.appendChild(div);
  }
  dl.replaceChildren(frag);
}

function inputRate() {
  const h = state.rateHistory;
  if (h.length >= 2 && state.run) {
    const first = h[0];
    const last = h[h.length - 1];
    const dt = last.t - first.t;
    if (dt > 0) return ((last.slices - first.slices) * state.run.axis.n_fft * 8) / dt;
  }
  return state.bootstrapRate;
}

function renderFigures() {
  const r = state.run;
  setText("fig-files", r ? fmtInt(r.files) : "–");
  setText("fig-files-sub", r ? `last #${r.last_file}` : "");
  setText("fig-slices", r ? fmtInt(r.slices) : "–");
  setText("fig-integration", r ? `${fmtDuration((r.slices * r.axis.n_fft) / r.axis.fs_hz)} of data` : "");
  setText("fig-incomplete", r ? fmtInt(r.incomplete_files) : "–");
  setText(
    "fig-incomplete-sub",
    r && r.files ? `${((100 * r.incomplete_files) / r.files).toFixed(r.incomplete_files ? 1 : 0)} % of files` : "",
  );
  setFlag("fig-incomplete-box", "warn", r && r.incomplete_files > 0);
  setText("fig-duplicates", r ? fmtInt(r.duplicates) : "–");
  const summary = state.runs.find((s) => s.run_id === state.runId);
  const rejects = summary && Number.isFinite(summary.rejects) ? summary.rejects : null;
  setText("fig-rejects", rejects == null ? "" : `${fmtInt(rejects)} rejected chunk${rejects === 1 ? "" : "s"}`);
  setFlag("fig-duplicates-box", "warn", rejects > 0);
  const ratio = r ? fin(r.analysis && r.analysis.radiometer_ratio) : null;
  setText("fig-ratio", ratio == null ? "–" : ratio.toFixed(3));
  setFlag("fig-ratio-box", "bad", ratio != null && (ratio < RATIO_OK[0] || ratio > RATIO_OK[1]));
  setFlag("fig-ratio-box", "good", ratio != null && ratio >= RATIO_OK[0] && ratio <= RATIO_OK[1]);
  const lat = state.lastFileLatency;
  setText("fig-latency", lat == null ? "–" : `${lat.toFixed(2)} s`);
  setText("fig-latency-sub", state.lastFileNumber == null ? "" : `file #${state.lastFileNumber}`);
  setFlag("fig-latency-box", "warn", lat != null && lat > LATENCY_WARN_S);
  const rate = inputRate();
  setText("fig-rate", rate == null || !Number.isFinite(rate) ? "–" : `${(rate / 1e6).toFixed(1)} MB/s`);
  setText(
    "fig-rate-sub",
    rate == null ? "" : state.rateHistory.length >= 2 ? `last ${state.rateHistory.length} updates` : "from the kept files",
  );
  const dropped = state.droppedBefore + state.droppedConn;
  setText("fig-dropped", fmtInt(dropped));
  setFlag("fig-dropped-box", "warn", dropped > 0);
  renderAge();
  renderRunStatus();
}

function renderAge() {
  const r = state.run;
  if (!r) {
    setText("fig-age", "–");
    setText("fig-age-sub", "");
    return;
  }
  const age = Math.max(0, Date.now() / 1000 - r.emitted_time);
  setText("fig-age", age < 1.5 ? "just now" : fmtAge(age));
  setText("fig-age-sub", fmtUtc(r.emitted_time).slice(11));
  setFlag("fig-age-box", "warn", age > STALE_WARN_S);
}

function fmtAge(s) {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

function renderRunStatus() {
  const summary = state.runs.find((s) => s.run_id === state.runId);
  const r = state.run;
  let live = summary ? summary.status === "live" : false;
  if (r) live = Date.now() / 1000 - r.emitted_time < 60;
  const archived = summary ? summary.status === "archived" : false;
  const el = $("run-status");
  const text = state.runId ? (live ? "live" : archived ? "archived" : "idle") : "–";
  if (el.textContent !== text) el.textContent = text;
  el.classList.toggle("live", state.runId != null && live);
  setText("run-mode", state.follow ? "(following newest)" : "");
}

// ---------------------------------------------------------------------------------------
// Waterfall (plain canvas)

const wf = {
  decimation: WF_DECIMATE,
  rows: [], // {file, daq, values: Float64Array, median} oldest first
  baseline: null, // decimated run baseline
  baselineKey: "x",
  image: null, // offscreen canvas, one pixel per (bin group, file)
  layout: null,
  cssW: 0,
  cssH: 0,
  norm: "baseline",
  range: [0.97, 1.03],
  incomplete: new Map(), // file number → closed incomplete
};

const VIRIDIS = (() => {
  const c = [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
  ];
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    for (let ch = 0; ch < 3; ch++) {
      let v = c[6][ch];
      for (let k = 5; k >= 0; k--) v = c[k][ch] + t * v;
      lut[i * 3 + ch] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
  }
  return lut;
})();
const MISSING_RGB = [70, 70, 78];

function wfRowFromValues(file, daq, values, revision = 0) {
  return { file, daq, values, revision, median: median(values) };
}

/** Insert a file row (a repeat is ignored, a later revision replaces it), keeping file-number order and the last WF_LAST. */
function wfInsert(row) {
  const rows = wf.rows;
  let i = rows.length;
  while (i > 0 && rows[i - 1].file > row.file) i--;
  if (i > 0 && rows[i - 1].file === row.file) {
    // A revision of a file already shown (late data merged): its row is replaced.
    if (row.revision <= rows[i - 1].revision) return false;
    rows[i - 1] = row;
    return true;
  }
  if (rows.length >= WF_LAST && i === 0) return false; // older than everything kept
  rows.splice(i, 0, row);
  if (rows.length > WF_LAST) rows.splice(0, rows.length - WF_LAST);
  return true;
}

function wfAddFile(doc) {
  if (!Array.isArray(doc.mean)) return;
  if (wf.rows.length && wf.rows[0].values.length !== Math.floor(doc.mean.length / wf.decimation)) {
    wf.rows = []; // the axis changed
  }
  wf.incomplete.set(doc.file_number, doc.complete === false);
  const values = decimate(doc.mean, wf.decimation);
  if (wfInsert(wfRowFromValues(doc.file_number, doc.daq_time, values, doc.revision || 0))) {
    schedule("wf");
  }
}

function wfReplace(resp) {
  const d = resp.decimation || WF_DECIMATE;
  const kept = wf.decimation === d ? wf.rows : [];
  wf.decimation = d;
  wf.rows = [];
  resp.rows.forEach((row, k) => {
    const values = Float64Array.from(row, (v) => (typeof v === "number" ? v : NaN));
    wfInsert(wfRowFromValues(resp.file_numbers[k], resp.daq_times[k], values));
  });
  for (const row of kept) wfInsert(row); // rows from the socket newer than the response
  wf.baselineKey = "";
  schedule("wf");
}

function wfClear() {
  wf.rows = [];
  wf.incomplete.clear();
  wf.baseline = null;
  wf.baselineKey = "";
  schedule("wf");
}

function sizeWaterfall() {
  const box = $("waterfall");
  const canvas = wfCanvas();
  const w = containerWidth(box);
  const h = plotHeight() + 40;
  const dpr = window.devicePixelRatio || 1;
  if (wf.cssW !== w || wf.cssH !== h || wf.dpr !== dpr) {
    wf.cssW = w;
    wf.cssH = h;
    wf.dpr = dpr;
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
}

function wfCanvas() {
  return $("waterfall").querySelector("canvas");
}

function niceStep(range, target) {
  const raw = range / Math.max(1, target);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

function drawWaterfall() {
  sizeWaterfall();
  const canvas = wfCanvas();
  const ctx = canvas.getContext("2d");
  const dpr = wf.dpr;
  const W = wf.cssW;
  const H = wf.cssH;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  const L = { left: 62, right: 78, top: 8, bottom: 42 };
  const pw = Math.max(10, W - L.left - L.right);
  const ph = Math.max(10, H - L.top - L.bottom);
  ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  ctx.fillStyle = COLORS.axis;
  ctx.strokeStyle = "rgba(255,255,255,0.25)";

  const rows = wf.rows;
  const doc = state.run || state.file;
  if (!rows.length || !doc) {
    wf.layout = null;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(state.runId ? "Waiting for file spectra…" : "No runs yet.", W / 2, H / 2);
    setText("title-waterfall", "Waterfall of recent files");
    return;
  }
  const ax = axisOf(doc);
  const d = wf.decimation;
  const nCols = rows[rows.length - 1].values.length;
  const dx = (ax.x[1] - ax.x[0]) * d;
  const x0 = nCols ? ax.x.slice(0, d).reduce((s, v) => s + v, 0) / d : 0; // centre of group 0

  // normalisation
  let mode = wf.norm;
  if (mode === "baseline") {
    const base = state.run && state.run.analysis && state.run.analysis.baseline;
    const key = state.run ? `${state.run.slices}|${d}` : "";
    if (base && key !== wf.baselineKey) {
      wf.baseline = decimate(base, d);
      wf.baselineKey = key;
    }
    if (!base || !wf.baseline || wf.baseline.length !== nCols) mode = "median";
  }
  const norm = rows.map((row) => {
    const out = new Float64Array(nCols);
    const v = row.values;
    if (mode === "baseline") for (let j = 0; j < nCols; j++) out[j] = v[j] / wf.baseline[j];
    else for (let j = 0; j < nCols; j++) out[j] = v[j] / row.median;
    return out;
  });

  // colour range: symmetric around 1, from robust percentiles of the visible columns
  const [c0, c1] = visibleColumns(x0, dx, nCols);
  const sample = [];
  for (const r of norm) for (let j = c0; j < c1; j++) if (Number.isFinite(r[j])) sample.push(r[j]);
  if (sample.length > 10) {
    const s = Float64Array.from(sample).sort();
    const lo = s[Math.floor(0.005 * (s.length - 1))];
    const hi = s[Math.ceil(0.995 * (s.length - 1))];
    const half = Math.max(1 - lo, hi - 1, 1e-4);
    wf.range = [Math.max(0, 1 - half), 1 + half]; // a ratio of powers is never negative
  }
  const [vmin, vmax] = wf.range;

  // image: newest row at the top
  if (!wf.image) wf.image = document.createElement("canvas");
  const img = wf.image;
  if (img.width !== nCols || img.height !== rows.length) {
    img.width = nCols;
    img.height = rows.length;
  }
  const ictx = img.getContext("2d");
  const data = ictx.createImageData(nCols, rows.length);
  const px = data.data;
  for (let r = 0; r < rows.length; r++) {
    const line = norm[rows.length - 1 - r];
    for (let j = 0; j < nCols; j++) {
      const o = (r * nCols + j) * 4;
      const v = line[j];
      if (Number.isFinite(v)) {
        const t = Math.min(255, Math.max(0, Math.round(((v - vmin) / (vmax - vmin)) * 255)));
        px[o] = VIRIDIS[t * 3];
        px[o + 1] = VIRIDIS[t * 3 + 1];
        px[o + 2] = VIRIDIS[t * 3 + 2];
      } else {
        px[o] = MISSING_RGB[0];
        px[o + 1] = MISSING_RGB[1];
        px[o + 2] = MISSING_RGB[2];
      }
      px[o + 3] = 255;
    }
  }
  ictx.putImageData(data, 0, 0);

  // x range (follows the spectra's zoom)
  const edge0 = x0 - dx / 2;
  const edge1 = edge0 + nCols * dx;
  let zmin = state.zoom ? Math.max(edge0, state.zoom.min) : edge0;
  let zmax = state.zoom ? Math.min(edge1, state.zoom.max) : edge1;
  if (!(zmax > zmin)) {
    zmin = edge0;
    zmax = edge1;
  }
  const rowH = ph / rows.length; // a young run's few rows fill the panel too
  const imgH = rowH * rows.length;
  ctx.fillStyle = "#0b0f14";
  ctx.fillRect(L.left, L.top, pw, ph);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, (zmin - edge0) / dx, 0, (zmax - zmin) / dx, rows.length, L.left, L.top, pw, imgH);
  ctx.strokeRect(L.left + 0.5, L.top + 0.5, pw - 1, ph - 1);
  // incomplete files: an amber mark left of their row
  ctx.fillStyle = "#f0a020";
  let anyIncomplete = false;
  for (let r = 0; r < rows.length; r++) {
    if (wf.incomplete.get(rows[rows.length - 1 - r].file)) {
      anyIncomplete = true;
      ctx.fillRect(L.left - 3, L.top + r * rowH, 3, Math.max(1, rowH));
    }
  }
  wf.layout = { L, pw, ph, rowH, zmin, zmax, edge0, dx, nCols, norm, mode };

  // x axis
  ctx.fillStyle = COLORS.axis;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const step = niceStep(zmax - zmin, pw / 90);
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  for (let v = Math.ceil(zmin / step) * step; v <= zmax + 1e-12; v += step) {
    const X = L.left + ((v - zmin) / (zmax - zmin)) * pw;
    ctx.fillRect(Math.round(X), L.top + ph, 1, 4);
    ctx.fillText((Math.abs(v) < step / 1e6 ? 0 : v).toFixed(decimals), X, L.top + ph + 6);
  }
  ctx.font = "bold 12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  ctx.fillText("f − f_LO (MHz)", L.left + pw / 2, L.top + ph + 24);

  // y axis: file numbers, newest at the top
  ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const every = Math.max(1, Math.ceil(18 / rowH));
  const labelEvery = every <= 1 ? 1 : every <= 2 ? 2 : Math.ceil(every / 5) * 5;
  for (let r = 0; r < rows.length; r++) {
    if (r % labelEvery !== 0) continue;
    const row = rows[rows.length - 1 - r];
    const Y = L.top + (r + 0.5) * rowH;
    ctx.fillRect(L.left - 4, Math.round(Y), 4, 1);
    ctx.fillText(`#${row.file}`, L.left - 6, Y);
  }
  ctx.save();
  ctx.translate(14, L.top + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.font = "bold 12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  ctx.fillText("file (newest at top)", 0, 0);
  ctx.restore();

  // colour bar
  const cbX = L.left + pw + 14;
  const cbW = 14;
  for (let k = 0; k < ph; k++) {
    const t = Math.round((1 - k / (ph - 1)) * 255);
    ctx.fillStyle = `rgb(${VIRIDIS[t * 3]},${VIRIDIS[t * 3 + 1]},${VIRIDIS[t * 3 + 2]})`;
    ctx.fillRect(cbX, L.top + k, cbW, 1);
  }
  ctx.strokeRect(cbX + 0.5, L.top + 0.5, cbW - 1, ph - 1);
  ctx.fillStyle = COLORS.axis;
  ctx.textAlign = "left";
  const span = vmax - vmin;
  const dec = span < 0.02 ? 4 : span < 0.2 ? 3 : 2;
  const yOne = L.top + ((vmax - 1) / (vmax - vmin)) * ph;
  const labels = [
    [vmax, L.top + 6],
    [vmin, L.top + ph - 6],
  ];
  if (yOne > L.top + 18 && yOne < L.top + ph - 18) labels.push([1, yOne]);
  for (const [v, Y] of labels) ctx.fillText(v.toFixed(dec), cbX + cbW + 4, Y);

  const first = rows[0].file;
  const last = rows[rows.length - 1].file;
  const what = mode === "baseline" ? "PSD ÷ run baseline" : "PSD ÷ row median";
  setText(
    "title-waterfall",
    `Waterfall · files #${first}–#${last} (${rows.length}) · f_LO = ${fmtGHz(ax.fLo, 6)} GHz`,
  );
  setText(
    "note-waterfall",
    `newest file at the top; colour = ${what}${mode !== wf.norm ? " (baseline not available yet)" : ""}; ${d} bins per column (${((ax.binHz * d) / 1e3).toFixed(2)} kHz); grey = missing${anyIncomplete ? "; amber mark = incomplete file" : ""}.`,
  );
}

function visibleColumns(x0, dx, nCols) {
  if (!state.zoom) return [0, nCols];
  const a = Math.max(0, Math.floor((state.zoom.min - (x0 - dx / 2)) / dx));
  const b = Math.min(nCols, Math.ceil((state.zoom.max - (x0 - dx / 2)) / dx));
  return b > a ? [a, b] : [0, nCols];
}

function onWaterfallHover(ev) {
  const tip = $("wf-tip");
  const lay = wf.layout;
  if (!lay) {
    tip.hidden = true;
    return;
  }
  const rect = wfCanvas().getBoundingClientRect();
  const X = ev.clientX - rect.left - lay.L.left;
  const Y = ev.clientY - rect.top - lay.L.top;
  const r = Math.floor(Y / lay.rowH);
  const rows = wf.rows;
  if (X < 0 || X >= lay.pw || Y < 0 || r >= rows.length) {
    tip.hidden = true;
    return;
  }
  const f = lay.zmin + (X / lay.pw) * (lay.zmax - lay.zmin);
  const j = Math.floor((f - lay.edge0) / lay.dx);
  const k = rows.length - 1 - r;
  const row = rows[k];
  if (!row || j < 0 || j >= lay.nCols) {
    tip.hidden = true;
    return;
  }
  const ratio = lay.norm[k][j];
  const psd = row.values[j];
  const flag = wf.incomplete.get(row.file) ? " · incomplete" : "";
  tip.textContent = `file #${row.file}${flag} · ${fmtUtc(row.daq)}\nf − f_LO = ${f.toFixed(4)} MHz\nPSD ${Number.isFinite(psd) ? psd.toExponential(3) : "–"} V²/Hz · ratio ${Number.isFinite(ratio) ? ratio.toFixed(4) : "–"}`;
  tip.hidden = false;
  const bx = ev.clientX - rect.left;
  const by = ev.clientY - rect.top;
  tip.style.left = `${Math.min(bx + 14, rect.width - 260)}px`;
  tip.style.top = `${by + 14}px`;
}

/** Drag across the waterfall to zoom every panel on that frequency range. */
function onWaterfallDragStart(ev) {
  const lay = wf.layout;
  if (!lay || ev.button !== 0) return;
  const rect = wfCanvas().getBoundingClientRect();
  const clampX = (clientX) => Math.min(lay.pw, Math.max(0, clientX - rect.left - lay.L.left));
  const x0 = clampX(ev.clientX);
  if (ev.clientX - rect.left - lay.L.left !== x0) return; // outside the image
  ev.preventDefault();
  const sel = $("wf-sel");
  let x1 = x0;
  const show = () => {
    sel.style.left = `${lay.L.left + Math.min(x0, x1)}px`;
    sel.style.width = `${Math.abs(x1 - x0)}px`;
    sel.style.top = `${lay.L.top}px`;
    sel.style.height = `${lay.ph}px`;
    sel.hidden = false;
  };
  const move = (e) => {
    x1 = clampX(e.clientX);
    show();
  };
  const up = (e) => {
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", up);
    sel.hidden = true;
    x1 = clampX(e.clientX);
    if (Math.abs(x1 - x0) < 4) return;
    const toMHz = (x) => lay.zmin + (x / lay.pw) * (lay.zmax - lay.zmin);
    zoomTo(toMHz(Math.min(x0, x1)), toMHz(Math.max(x0, x1)));
  };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
}

// ---------------------------------------------------------------------------------------
// Data intake (REST and WebSocket)

class HttpError extends Error {
  constructor(status, url) {
    super(`${status} for ${url}`);
    this.status = status;
  }
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) throw new HttpError(response.status, path);
  return response.json();
}

const runPath = (id) => `${API}/runs/${encodeURIComponent(id)}`;

function acceptRun(doc) {
  if (!doc || doc.run_id !== state.runId) return;
  // the update with the most slices is the newest (replays carry fewer); a newer emission
  // with fewer slices means the run was reprocessed from scratch (the API restarted)
  if (state.run && doc.slices <= state.run.slices && !(doc.emitted_time > state.run.emitted_time)) return;
  if (state.run && state.run.axis.f_lo_hz !== doc.axis.f_lo_hz) state.zoom = null;
  state.run = doc;
  state.runMissing = false;
  const h = state.rateHistory;
  if (!h.length || doc.slices > h[h.length - 1].slices) h.push({ slices: doc.slices, t: doc.emitted_time });
  if (h.length > RATE_WINDOW) h.splice(0, h.length - RATE_WINDOW);
  schedule("run");
}

function acceptFile(doc) {
  if (!doc || doc.run_id !== state.runId) return;
  wfAddFile(doc);
  if (state.file && doc.file_number < state.file.file_number) return;
  state.file = doc;
  state.fileMissing = false;
  // A revision (late data) says nothing of the pipeline's latency.
  if (!(doc.revision > 0) && Number.isFinite(doc.emitted_time) && Number.isFinite(doc.daq_time)) {
    state.lastFileLatency = doc.emitted_time - doc.daq_time;
    state.lastFileNumber = doc.file_number;
  }
  dirty.figures = true;
  schedule("file");
}

let resyncing = false;
let resyncAgain = false;
let resyncTimer = 0;

function scheduleResync(ms) {
  clearTimeout(resyncTimer);
  resyncTimer = setTimeout(resync, ms);
}

/** Fetch the run, the file list, the latest file and the waterfall over REST. */
async function resync() {
  clearTimeout(resyncTimer);
  if (!state.runId) return;
  if (resyncing) {
    resyncAgain = true;
    return;
  }
  resyncing = true;
  const gen = state.gen;
  const id = state.runId;
  try {
    const [run, files] = await Promise.allSettled([getJSON(runPath(id)), getJSON(`${runPath(id)}/files`)]);
    if (gen !== state.gen) return;
    for (const result of [run, files]) {
      if (result.status === "rejected" && !(result.reason instanceof HttpError && result.reason.status === 404)) {
        throw result.reason;
      }
    }
    if (run.status === "fulfilled") acceptRun(run.value);
    else if (!state.run) {
      state.runMissing = true;
      schedule("run");
    }
    const list = files.status === "fulfilled" ? files.value : [];
    if (list.length) {
      const last = list[list.length - 1];
      if (state.lastFileLatency == null || !state.file || last.file_number >= state.file.file_number) {
        state.lastFileLatency = last.latency_seconds;
        state.lastFileNumber = last.file_number;
      }
      for (const f of list) wf.incomplete.set(f.file_number, !f.complete);
      bootstrapRate(list);
      const [fileDoc, waterfall] = await Promise.allSettled([
        !state.file || last.file_number > state.file.file_number
          ? getJSON(`${runPath(id)}/files/${last.file_number}`)
          : Promise.resolve(null),
        getJSON(`${runPath(id)}/waterfall?last=${WF_LAST}&decimate=${WF_DECIMATE}`),
      ]);
      if (gen !== state.gen) return;
      if (fileDoc.status === "fulfilled" && fileDoc.value) acceptFile(fileDoc.value);
      if (waterfall.status === "fulfilled") wfReplace(waterfall.value);
    } else if (!state.file) {
      state.fileMissing = true;
      schedule("file");
      schedule("wf");
    }
    banner("");
    dirty.figures = true;
    schedule();
  } catch (error) {
    if (gen === state.gen) {
      banner(`The API does not answer (${error.message || error}); retrying…`);
      scheduleResync(3000);
    }
  } finally {
    resyncing = false;
    if (resyncAgain) {
      resyncAgain = false;
      resync();
    }
  }
}

/** An input-rate estimate from the DAQ times of the kept files, until run updates give one. */
function bootstrapRate(list) {
  if (list.length < 2 || !state.run) return;
  const first = list[0];
  const last = list[list.length - 1];
  const dt = last.daq_time - first.daq_time;
  const slices = list.slice(1).reduce((s, f) => s + f.count, 0);
  if (dt > 0) state.bootstrapRate = (slices * state.run.axis.n_fft * 8) / dt;
}

function banner(text) {
  const el = $("banner");
  el.textContent = text;
  el.hidden = !text;
}

// WebSocket --------------------------------------------------------------------------------

function setConn(status, text) {
  conn.status = status;
  const el = $("conn");
  el.className = `conn conn-${status}`;
  setText("conn-text", text || status);
}

function connect() {
  clearTimeout(conn.retryTimer);
  clearTimeout(conn.helloTimer);
  if (conn.ws) {
    const old = conn.ws;
    old.onopen = old.onmessage = old.onclose = old.onerror = null;
    if (old.readyState <= 1) old.close(1000, "run changed");
    conn.ws = null;
  }
  if (!state.runId) {
    setConn("connecting", "waiting for a run");
    return;
  }
  const gen = state.gen;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/ws/v1/spectra?runs=${encodeURIComponent(state.runId)}`;
  setConn(conn.everConnected ? "reconnecting" : "connecting", conn.everConnected ? "reconnecting…" : "connecting…");
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (error) {
    scheduleReconnect(gen);
    return;
  }
  conn.ws = ws;
  // if the socket does not come up quickly, fill the page over REST meanwhile
  conn.helloTimer = setTimeout(() => {
    if (gen === state.gen && conn.status !== "connected") resync();
  }, HELLO_TIMEOUT_MS);
  ws.onmessage = (event) => onSocketMessage(event.data, gen);
  ws.onclose = () => {
    if (gen !== state.gen || conn.ws !== ws) return;
    conn.ws = null;
    state.droppedBefore += state.droppedConn;
    state.droppedConn = 0;
    scheduleReconnect(gen);
  };
  ws.onerror = () => {}; // a close event follows
}

function scheduleReconnect(gen) {
  if (gen !== state.gen) return;
  const delay = conn.backoff;
  conn.backoff = Math.min(BACKOFF_MAX_MS, conn.backoff * 2);
  conn.retryAt = Date.now() + delay;
  renderReconnect();
  conn.retryTimer = setTimeout(() => {
    if (gen === state.gen) connect();
  }, delay);
}

function renderReconnect() {
  if (conn.ws || !conn.retryAt) return;
  const s = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
  setConn("reconnecting", `reconnecting in ${s} s`);
}

function onSocketMessage(text, gen) {
  if (gen !== state.gen) return;
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return;
  }
  switch (msg.type) {
    case "hello":
      clearTimeout(conn.helloTimer);
      conn.backoff = BACKOFF_MIN_MS;
      conn.retryAt = 0;
      conn.everConnected = true;
      setConn("connected", "connected");
      resync(); // subscribed now: whatever REST returns plus the feed misses nothing
      break;
    case "dropped":
      state.droppedConn = Number(msg.count) || 0;
      schedule("figures");
      scheduleResync(2000); // file spectra were lost: refill the waterfall
      break;
    case "file":
      if (msg.run_id !== state.runId) return;
      state.filesSeen += 1;
      document.body.dataset.filesSeen = String(state.filesSeen);
      acceptFile(msg.data);
      break;
    case "run":
      if (msg.run_id !== state.runId) return;
      acceptRun(msg.data);
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------
// Runs and the selector

function hashRun() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const id = params.get("run");
  return id ? id : null;
}

async function refreshRuns() {
  let runs;
  try {
    runs = await getJSON(`${API}/runs`);
  } catch {
    return; // the socket state and banner tell the story
  }
  state.runs = Array.isArray(runs) ? runs : [];
  if (state.follow) {
    const newest = state.runs[0];
    const current = state.runs.find((r) => r.run_id === state.runId);
    // follow a newer run, not the latest-updated of two concurrent ones
    if (
      newest &&
      (!state.runId ||
        !current ||
        (newest.run_id !== state.runId &&
          (newest.first_daq_time ?? 0) > (current.first_daq_time ?? 0) &&
          current.status !== "live"))
    ) {
      selectRun(newest.run_id);
    }
  }
  renderSelector();
  schedule("figures");
  if (!state.runId) {
    setConn("connecting", "waiting for a run");
    schedule("run");
    schedule("file");
    schedule("wf");
  }
}

function renderSelector() {
  const select = $("run-select");
  const runs = state.runs;
  const ids = runs.map((r) => r.run_id);
  if (state.runId && !ids.includes(state.runId)) ids.push(state.runId);
  const labels = ids.map((id) => {
    const r = runs.find((s) => s.run_id === id);
    if (!r) return `${id} · not found`;
    if (r.status === "archived") return `${id} · archived`;
    return r.kept === false ? `${id} · ${r.status} · figures only (older run)` : `${id} · ${r.status}`;
  });
  const key = labels.join("\n");
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    if (!ids.length) {
      select.replaceChildren(new Option("no runs yet", ""));
    } else {
      select.replaceChildren(...ids.map((id, i) => new Option(labels[i], id)));
    }
  }
  if (state.runId && select.value !== state.runId) select.value = state.runId;
}

function selectRun(id) {
  if (id === state.runId) return;
  state.gen += 1;
  state.runId = id;
  state.run = null;
  state.file = null;
  state.runMissing = false;
  state.fileMissing = false;
  state.lastFileLatency = null;
  state.lastFileNumber = null;
  state.rateHistory = [];
  state.bootstrapRate = null;
  state.droppedBefore = 0;
  state.droppedConn = 0;
  state.zoom = null;
  state.candidatesKey = "";
  document.body.dataset.ready = "false";
  for (const u of Object.values(plots)) if (u) applyData(u, emptyData(u.series.length));
  $("candidates").tBodies[0].replaceChildren();
  $("cand-empty").hidden = false;
  setText("cand-summary", "");
  $("details").replaceChildren();
  wfClear();
  clearTimeout(resyncTimer);
  resyncing = false; // responses of the previous run are ignored by generation
  resyncAgain = false;
  conn.backoff = BACKOFF_MIN_MS;
  renderSelector();
  schedule("run");
  schedule("file");
  schedule("figures");
  connect();
}

function applyHash() {
  const id = hashRun();
  if (id) {
    state.follow = false;
    selectRun(id);
    renderSelector();
    renderRunStatus();
  } else {
    state.follow = true;
    refreshRuns();
  }
}

// ---------------------------------------------------------------------------------------
// Start

function init() {
  if (typeof uPlot !== "function") {
    banner("uPlot is missing: /static/vendor/uPlot.iife.min.js did not load.");
    return;
  }
  createPlot("run");
  createPlot("file");
  createPlot("excess");
  sizeWaterfall();

  $("run-select").addEventListener("change", (ev) => {
    const id = ev.target.value;
    if (id) location.hash = `run=${encodeURIComponent(id)}`;
  });
  window.addEventListener("hashchange", applyHash);
  $("log-run").addEventListener("change", (ev) => {
    state.log.run = ev.target.checked;
    createPlot("run");
    applyZoom(null);
    schedule("run");
  });
  $("log-file").addEventListener("change", (ev) => {
    state.log.file = ev.target.checked;
    createPlot("file");
    applyZoom(null);
    schedule("file");
  });
  $("zoom-reset").addEventListener("click", resetZoom);
  $("wf-norm").addEventListener("change", (ev) => {
    wf.norm = ev.target.value;
    schedule("wf");
  });
  const tbody = $("candidates").tBodies[0];
  const zoomOnRow = (ev) => {
    const tr = ev.target.closest("tr");
    if (tr && tr.dataset.min) zoomTo(Number(tr.dataset.min), Number(tr.dataset.max));
  };
  tbody.addEventListener("click", zoomOnRow);
  tbody.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      zoomOnRow(ev);
    }
  });
  const canvas = wfCanvas();
  canvas.addEventListener("mousemove", onWaterfallHover);
  canvas.addEventListener("mouseleave", () => {
    $("wf-tip").hidden = true;
  });
  canvas.addEventListener("dblclick", resetZoom);
  canvas.addEventListener("mousedown", onWaterfallDragStart);

  const observer = new ResizeObserver(() => schedule("size"));
  for (const id of [...Object.values(PLOT_IDS), "waterfall"]) observer.observe($(id));
  window.addEventListener("resize", () => schedule("size"));

  setInterval(() => {
    renderAge();
    renderReconnect();
  }, 1000);
  // the run list: every RUNS_POLL_MS, every 3 s while there is no run to show
  let lastRunsPoll = Date.now();
  setInterval(() => {
    const wait = state.runId ? RUNS_POLL_MS : 3000;
    if (Date.now() - lastRunsPoll >= wait - 100) {
      lastRunsPoll = Date.now();
      refreshRuns();
    }
  }, 1000);

  const id = hashRun();
  if (id) {
    state.follow = false;
    selectRun(id);
  } else {
    setConn("connecting", "loading runs…");
  }
  refreshRuns();
  schedule("run");
  schedule("file");
  schedule("wf");
  schedule("figures");
}

init();

// for debugging in the console and for automated tests: the plots and the page state
window.quax = Object.freeze({ plots, state, wf, conn });
