// What the spectrum panels plot and list, computed from the documents (pure).

import { fin } from "./format.js";

/** A value for a log axis: null where it is not positive (uPlot leaves a gap). */
const positive = (log, v) => (log && v != null && v <= 0 ? null : v);

/** Run spectrum: [x, mean, mean + sem, mean − sem, baseline]. */
export function runSeries(doc, ax, log) {
  const n = ax.x.length;
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
    m[i] = positive(log, mv);
    if (mv == null || sv == null) {
      hi[i] = lo[i] = null;
    } else {
      hi[i] = mv + sv;
      lo[i] = positive(log, mv - sv);
    }
    b[i] = positive(log, fin(base[i]));
  }
  return [ax.x, m, hi, lo, b];
}

/** File spectrum: [x, mean, mean + σ, mean − σ]; on a log axis the lower edge stops at mean/10. */
export function fileSeries(doc, ax, log) {
  const n = ax.x.length;
  const mean = doc.mean || [];
  const std = doc.std || [];
  const m = new Array(n);
  const hi = new Array(n);
  const lo = new Array(n);
  for (let i = 0; i < n; i++) {
    const mv = fin(mean[i]);
    const sv = fin(std[i]);
    m[i] = positive(log, mv);
    if (mv == null || sv == null) {
      hi[i] = lo[i] = null;
    } else {
      hi[i] = mv + sv;
      lo[i] = log ? Math.max(mv - sv, mv / 10) : mv - sv;
      if (log && lo[i] <= 0) lo[i] = null;
    }
  }
  return [ax.x, m, hi, lo];
}

/** Excess panel: [x, per-bin excess, matched filter, threshold, candidates at their bin]. */
export function excessSeries(doc, ax) {
  const x = ax.x;
  const n = x.length;
  const a = doc.analysis || {};
  const ex = a.excess_sigma || [];
  const mf = a.matched_sigma || [];
  const thr = fin(a.threshold_sigma);
  const e = new Array(n);
  const f = new Array(n);
  const t = new Array(n).fill(thr);
  const c = new Array(n).fill(null);
  for (let i = 0; i < n; i++) {
    e[i] = fin(ex[i]);
    f[i] = fin(mf[i]);
  }
  for (const cand of candidatesOf(doc)) {
    let i = Number.isInteger(cand.bin) ? cand.bin : -1;
    if (!(i >= 0 && i < n) && Number.isFinite(cand.frequency_hz) && n > 1) {
      i = Math.round(((cand.frequency_hz - ax.fLo) / 1e6 - x[0]) / (x[1] - x[0]));
    }
    if (i >= 0 && i < n) c[i] = fin(cand.significance);
  }
  return [x, e, f, t, c];
}

export function candidatesOf(doc) {
  const a = doc.analysis || {};
  return Array.isArray(a.candidates) ? a.candidates : [];
}

/**
 * The candidate table, strongest first: the cells of each row, and the range (MHz from
 * f_LO) a click zooms on: the line's expected width six times over (at least 20 bins).
 */
export function candidateRows(doc, ax) {
  const a = doc.analysis || {};
  const threshold = fin(a.threshold_sigma);
  const width = Math.max((a.line_fwhm_hz || 4850) * 6, 20 * (ax.binHz || 651)) / 1e6;
  const strength = (c) => fin(c.significance) ?? -Infinity;
  const sorted = [...candidatesOf(doc)].sort((p, q) => strength(q) - strength(p));
  return sorted.map((c, k) => {
    const offsetKHz = (c.frequency_hz - ax.fLo) / 1e3;
    const centre = offsetKHz / 1e3;
    return {
      cells: [
        String(k + 1),
        Number.isFinite(offsetKHz) ? offsetKHz.toFixed(2) : "–",
        Number.isFinite(c.frequency_hz) ? (c.frequency_hz / 1e9).toFixed(6) : "–",
        fin(c.significance) == null ? "–" : c.significance.toFixed(2),
        fin(c.excess_sigma) == null ? "–" : c.excess_sigma.toFixed(2),
      ],
      min: centre - width / 2,
      max: centre + width,
      strong: threshold != null && c.significance >= 2 * threshold,
    };
  });
}

/** Input rate (bytes of I/Q per second) from the slices of successive run updates. */
export function inputRate(history, nFft) {
  if (history.length < 2) return null;
  const first = history[0];
  const last = history[history.length - 1];
  const dt = last.t - first.t;
  return dt > 0 ? ((last.slices - first.slices) * nFft * 8) / dt : null;
}

/** Input rate from the DAQ times and slice counts of the kept files (before two updates). */
export function rateFromFiles(list, nFft) {
  if (list.length < 2) return null;
  const dt = list[list.length - 1].daq_time - list[0].daq_time;
  const slices = list.slice(1).reduce((s, f) => s + f.count, 0);
  return dt > 0 ? (slices * nFft * 8) / dt : null;
}
