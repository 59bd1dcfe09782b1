// The waterfall of recent files (plain canvas): its rows, its drawing in steps, its hover
// read-out and its drag-to-zoom.

import { axisOf, decimate } from "./arrays.js";
import { COLORS, WF_DECIMATE, WF_LAST } from "./config.js";
import { $, setText } from "./dom.js";
import { fmtGHz, fmtUtc, niceStep } from "./format.js";
import { containerWidth, plotHeight, zoomTo } from "./plots.js";
import { schedule, state } from "./state.js";
import { colourRange, insertRow, makeRow, normalise, paint, VIRIDIS, visibleColumns } from "./wfdata.js";

const FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const BOLD = `bold ${FONT}`;
const MARGIN = { left: 62, right: 78, top: 8, bottom: 42 };

export const wf = {
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

// Rows ---------------------------------------------------------------------------------

/** A file spectrum from the feed or REST: its row (decimated as the API decimates). */
export function addFile(doc) {
  if (!Array.isArray(doc.mean)) return;
  if (wf.rows.length && wf.rows[0].values.length !== Math.floor(doc.mean.length / wf.decimation)) {
    wf.rows = []; // the axis changed
  }
  wf.incomplete.set(doc.file_number, doc.complete === false);
  const values = decimate(doc.mean, wf.decimation);
  if (insertRow(wf.rows, makeRow(doc.file_number, doc.daq_time, values, doc.revision || 0), WF_LAST)) {
    schedule("wf");
  }
}

/** The API's waterfall response; rows from the socket newer than it are kept. */
export function replaceRows(resp) {
  const d = resp.decimation || WF_DECIMATE;
  const kept = wf.decimation === d ? wf.rows : [];
  wf.decimation = d;
  wf.rows = [];
  resp.rows.forEach((row, k) => {
    const values = Float64Array.from(row, (v) => (typeof v === "number" ? v : NaN));
    insertRow(wf.rows, makeRow(resp.file_numbers[k], resp.daq_times[k], values), WF_LAST);
  });
  for (const row of kept) insertRow(wf.rows, row, WF_LAST);
  invalidateBaseline();
}

/** Which of the listed files were closed incomplete (from the API's file list). */
export function markIncomplete(list) {
  for (const f of list) wf.incomplete.set(f.file_number, !f.complete);
}

/** The run changed: the baseline normalisation is recomputed at the next drawing. */
export function invalidateBaseline() {
  wf.baselineKey = "";
  schedule("wf");
}

export function clearRows() {
  wf.rows = [];
  wf.incomplete.clear();
  wf.baseline = null;
  invalidateBaseline();
}

// Drawing ------------------------------------------------------------------------------

function canvas() {
  return $("waterfall").querySelector("canvas");
}

/** Fit the canvas to its box and the screen's pixel ratio. */
export function sizeWaterfall() {
  const w = containerWidth($("waterfall"));
  const h = plotHeight() + 40;
  const dpr = window.devicePixelRatio || 1;
  if (wf.cssW !== w || wf.cssH !== h || wf.dpr !== dpr) {
    const c = canvas();
    Object.assign(wf, { cssW: w, cssH: h, dpr });
    c.style.width = `${w}px`;
    c.style.height = `${h}px`;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
}

/** The run's baseline decimated as the rows, or null (then rows are divided by their median). */
function baselineFor(d, nCols) {
  if (wf.norm !== "baseline") return null;
  const base = state.run && state.run.analysis && state.run.analysis.baseline;
  const key = state.run ? `${state.run.slices}|${d}` : "";
  if (base && key !== wf.baselineKey) {
    wf.baseline = decimate(base, d);
    wf.baselineKey = key;
  }
  return base && wf.baseline && wf.baseline.length === nCols ? wf.baseline : null;
}

/** The offscreen image: one pixel per (column, file), newest file at the top. */
function paintImage(norm, nCols) {
  if (!wf.image) wf.image = document.createElement("canvas");
  const img = wf.image;
  if (img.width !== nCols || img.height !== norm.length) {
    img.width = nCols;
    img.height = norm.length;
  }
  const ictx = img.getContext("2d");
  const data = ictx.createImageData(nCols, norm.length);
  paint(data.data, norm, nCols, wf.range);
  ictx.putImageData(data, 0, 0);
  return img;
}

/** The image in the plot area, cut to the spectra's zoom; incomplete files marked amber. */
function drawImage(ctx, img, lay) {
  const { L, pw, ph, rowH, zmin, zmax, edge0, dx } = lay;
  const rows = wf.rows;
  ctx.fillStyle = "#0b0f14";
  ctx.fillRect(L.left, L.top, pw, ph);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, (zmin - edge0) / dx, 0, (zmax - zmin) / dx, rows.length, L.left, L.top, pw, rowH * rows.length);
  ctx.strokeRect(L.left + 0.5, L.top + 0.5, pw - 1, ph - 1);
  ctx.fillStyle = "#f0a020";
  let anyIncomplete = false;
  for (let r = 0; r < rows.length; r++) {
    if (wf.incomplete.get(rows[rows.length - 1 - r].file)) {
      anyIncomplete = true;
      ctx.fillRect(L.left - 3, L.top + r * rowH, 3, Math.max(1, rowH));
    }
  }
  return anyIncomplete;
}

function drawXAxis(ctx, { L, pw, ph, zmin, zmax }) {
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
  ctx.font = BOLD;
  ctx.fillText("f − f_LO (MHz)", L.left + pw / 2, L.top + ph + 24);
}

/** File numbers, newest at the top, as many as fit. */
function drawYAxis(ctx, { L, ph, rowH }) {
  const rows = wf.rows;
  ctx.font = FONT;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const every = Math.max(1, Math.ceil(18 / rowH));
  const labelEvery = every <= 1 ? 1 : every <= 2 ? 2 : Math.ceil(every / 5) * 5;
  for (let r = 0; r < rows.length; r += labelEvery) {
    const Y = L.top + (r + 0.5) * rowH;
    ctx.fillRect(L.left - 4, Math.round(Y), 4, 1);
    ctx.fillText(`#${rows[rows.length - 1 - r].file}`, L.left - 6, Y);
  }
  ctx.save();
  ctx.translate(14, L.top + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.font = BOLD;
  ctx.fillText("file (newest at top)", 0, 0);
  ctx.restore();
}

function drawColourBar(ctx, { L, pw, ph }) {
  const [vmin, vmax] = wf.range;
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
}

function writeTitles(ax, d, mode, anyIncomplete) {
  const rows = wf.rows;
  const what = mode === "baseline" ? "PSD ÷ run baseline" : "PSD ÷ row median";
  setText(
    "title-waterfall",
    `Waterfall · files #${rows[0].file}–#${rows[rows.length - 1].file} (${rows.length}) · f_LO = ${fmtGHz(ax.fLo, 6)} GHz`,
  );
  setText(
    "note-waterfall",
    `newest file at the top; colour = ${what}${mode !== wf.norm ? " (baseline not available yet)" : ""}; ${d} bins per column (${((ax.binHz * d) / 1e3).toFixed(2)} kHz); grey = missing${anyIncomplete ? "; amber mark = incomplete file" : ""}.`,
  );
}

/** Where the image goes and which part of it is shown (the spectra's zoom). */
function layoutFor(ax, nCols, norm, mode) {
  const W = wf.cssW;
  const H = wf.cssH;
  const L = MARGIN;
  const pw = Math.max(10, W - L.left - L.right);
  const ph = Math.max(10, H - L.top - L.bottom);
  const d = wf.decimation;
  const dx = (ax.x[1] - ax.x[0]) * d;
  const x0 = nCols ? ax.x.slice(0, d).reduce((s, v) => s + v, 0) / d : 0; // centre of group 0
  const edge0 = x0 - dx / 2;
  const edge1 = edge0 + nCols * dx;
  let zmin = state.zoom ? Math.max(edge0, state.zoom.min) : edge0;
  let zmax = state.zoom ? Math.min(edge1, state.zoom.max) : edge1;
  if (!(zmax > zmin)) [zmin, zmax] = [edge0, edge1];
  const rowH = ph / wf.rows.length; // a young run's few rows fill the panel too
  return { L, pw, ph, rowH, zmin, zmax, x0, edge0, dx, nCols, norm, mode };
}

export function drawWaterfall() {
  sizeWaterfall();
  const ctx = canvas().getContext("2d");
  ctx.setTransform(wf.dpr, 0, 0, wf.dpr, 0, 0);
  ctx.clearRect(0, 0, wf.cssW, wf.cssH);
  ctx.font = FONT;
  ctx.fillStyle = COLORS.axis;
  ctx.strokeStyle = "rgba(255,255,255,0.25)";
  const doc = state.run || state.file;
  if (!wf.rows.length || !doc) {
    wf.layout = null;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(state.runId ? "Waiting for file spectra…" : "No runs yet.", wf.cssW / 2, wf.cssH / 2);
    setText("title-waterfall", "Waterfall of recent files");
    return;
  }
  const ax = axisOf(doc);
  const nCols = wf.rows[wf.rows.length - 1].values.length;
  const baseline = baselineFor(wf.decimation, nCols);
  const mode = baseline ? "baseline" : "median";
  const norm = normalise(wf.rows, baseline, nCols);
  const lay = layoutFor(ax, nCols, norm, mode);
  const [c0, c1] = visibleColumns(state.zoom, lay.x0, lay.dx, nCols);
  wf.range = colourRange(norm, c0, c1, wf.range);
  const anyIncomplete = drawImage(ctx, paintImage(norm, nCols), lay);
  wf.layout = lay;
  drawXAxis(ctx, lay);
  drawYAxis(ctx, lay);
  drawColourBar(ctx, lay);
  writeTitles(ax, wf.decimation, mode, anyIncomplete);
}

// Pointer ------------------------------------------------------------------------------

/** The file, frequency, PSD and ratio under the pointer. */
export function onHover(ev) {
  const tip = $("wf-tip");
  const lay = wf.layout;
  tip.hidden = true;
  if (!lay) return;
  const rect = canvas().getBoundingClientRect();
  const X = ev.clientX - rect.left - lay.L.left;
  const Y = ev.clientY - rect.top - lay.L.top;
  const r = Math.floor(Y / lay.rowH);
  const rows = wf.rows;
  if (X < 0 || X >= lay.pw || Y < 0 || r >= rows.length) return;
  const f = lay.zmin + (X / lay.pw) * (lay.zmax - lay.zmin);
  const j = Math.floor((f - lay.edge0) / lay.dx);
  const k = rows.length - 1 - r;
  const row = rows[k];
  if (!row || j < 0 || j >= lay.nCols) return;
  const ratio = lay.norm[k][j];
  const psd = row.values[j];
  const flag = wf.incomplete.get(row.file) ? " · incomplete" : "";
  tip.textContent = `file #${row.file}${flag} · ${fmtUtc(row.daq)}\nf − f_LO = ${f.toFixed(4)} MHz\nPSD ${Number.isFinite(psd) ? psd.toExponential(3) : "–"} V²/Hz · ratio ${Number.isFinite(ratio) ? ratio.toFixed(4) : "–"}`;
  tip.hidden = false;
  tip.style.left = `${Math.min(ev.clientX - rect.left + 14, rect.width - 260)}px`;
  tip.style.top = `${ev.clientY - rect.top + 14}px`;
}

/** Drag across the waterfall to zoom every panel on that frequency range. */
export function onDragStart(ev) {
  const lay = wf.layout;
  if (!lay || ev.button !== 0) return;
  const rect = canvas().getBoundingClientRect();
  const clampX = (clientX) => Math.min(lay.pw, Math.max(0, clientX - rect.left - lay.L.left));
  const x0 = clampX(ev.clientX);
  if (ev.clientX - rect.left - lay.L.left !== x0) return; // outside the image
  ev.preventDefault();
  const sel = $("wf-sel");
  let x1 = x0;
  const move = (e) => {
    x1 = clampX(e.clientX);
    Object.assign(sel.style, {
      left: `${lay.L.left + Math.min(x0, x1)}px`,
      width: `${Math.abs(x1 - x0)}px`,
      top: `${lay.L.top}px`,
      height: `${lay.ph}px`,
    });
    sel.hidden = false;
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

/** The canvas's listeners. */
export function listen(resetZoom) {
  const c = canvas();
  c.addEventListener("mousemove", onHover);
  c.addEventListener("mouseleave", () => {
    $("wf-tip").hidden = true;
  });
  c.addEventListener("dblclick", resetZoom);
  c.addEventListener("mousedown", onDragStart);
}
