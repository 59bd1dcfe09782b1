// The three spectrum plots (uPlot, the global `uPlot`): made once, fed with setData, zoomed
// together (and the waterfall with them).

/* global uPlot */

import { COLORS } from "./config.js";
import { $, setFlag } from "./dom.js";
import { fmtPsd, fmtSigma, sup } from "./format.js";
import { schedule, state } from "./state.js";

export const plots = { run: null, file: null, excess: null };
export const PLOT_IDS = { run: "run-spectrum", file: "latest-file", excess: "excess" };
let syncingZoom = false;

export function plotHeight() {
  return window.innerWidth < 700 ? 230 : 290;
}

export function containerWidth(el) {
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
  return new uPlot(
    commonOptions(el, {
      log: state.log.run,
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
        { label: "mean + σ", stroke: COLORS.fileBandEdge, width: 0.5, value: fmtPsd },
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

export function emptyData(n) {
  return Array.from({ length: n }, () => []);
}

const MAKERS = { run: makeRunPlot, file: makeFilePlot, excess: makeExcessPlot };

/** Make (or make again, e.g. for a log axis) the plot `name`. */
export function createPlot(name) {
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
export function applyZoom(source) {
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
export function applyData(u, data) {
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

/** Empty every plot (a run switch). */
export function clearPlots() {
  for (const u of Object.values(plots)) if (u) applyData(u, emptyData(u.series.length));
}

export function resetZoom() {
  state.zoom = null;
  applyZoom(null);
}

export function zoomTo(min, max) {
  state.zoom = { min, max };
  applyZoom(null);
}

/** Fit each plot to its container. */
export function resizePlots() {
  const h = plotHeight();
  for (const [name, u] of Object.entries(plots)) {
    if (!u) continue;
    const w = containerWidth($(PLOT_IDS[name]));
    if (u.width !== w || u.height !== h) u.setSize({ width: w, height: h });
  }
}
