// The waterfall's data steps, without a canvas (pure): rows kept, normalisation, colour
// range, pixels, visible columns.

import { median } from "./arrays.js";

/** A file's row: its decimated PSD and the row's median (the fallback normalisation). */
export function makeRow(file, daq, values, revision = 0) {
  return { file, daq, values, revision, median: median(values) };
}

/**
 * Insert `row` into `rows` (file-number order, at most `max` kept, oldest dropped). A repeat
 * is ignored and a later revision replaces its file's row. Returns whether `rows` changed.
 */
export function insertRow(rows, row, max) {
  let i = rows.length;
  while (i > 0 && rows[i - 1].file > row.file) i--;
  if (i > 0 && rows[i - 1].file === row.file) {
    if (row.revision <= rows[i - 1].revision) return false;
    rows[i - 1] = row;
    return true;
  }
  if (rows.length >= max && i === 0) return false; // older than everything kept
  rows.splice(i, 0, row);
  if (rows.length > max) rows.splice(0, rows.length - max);
  return true;
}

/** Each row divided by the run's baseline (when given) or else by the row's own median. */
export function normalise(rows, baseline, nCols) {
  return rows.map((row) => {
    const out = new Float64Array(nCols);
    const v = row.values;
    if (baseline) for (let j = 0; j < nCols; j++) out[j] = v[j] / baseline[j];
    else for (let j = 0; j < nCols; j++) out[j] = v[j] / row.median;
    return out;
  });
}

/**
 * The colour range: symmetric around 1 from the 0.5 and 99.5 percentiles of the finite
 * ratios in columns [c0, c1), never below 0 (a ratio of powers); `previous` when there are
 * too few values to tell.
 */
export function colourRange(norm, c0, c1, previous) {
  const sample = [];
  for (const r of norm) for (let j = c0; j < c1; j++) if (Number.isFinite(r[j])) sample.push(r[j]);
  if (sample.length <= 10) return previous;
  const s = Float64Array.from(sample).sort();
  const lo = s[Math.floor(0.005 * (s.length - 1))];
  const hi = s[Math.ceil(0.995 * (s.length - 1))];
  const half = Math.max(1 - lo, hi - 1, 1e-4);
  return [Math.max(0, 1 - half), 1 + half];
}

/** The columns inside the zoom ({min, max} in MHz, or null), given column 0's centre and width. */
export function visibleColumns(zoom, x0, dx, nCols) {
  if (!zoom) return [0, nCols];
  const a = Math.max(0, Math.floor((zoom.min - (x0 - dx / 2)) / dx));
  const b = Math.min(nCols, Math.ceil((zoom.max - (x0 - dx / 2)) / dx));
  return b > a ? [a, b] : [0, nCols];
}

/** viridis as 256 RGB triples (its published polynomial fit). */
export const VIRIDIS = (() => {
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
export const MISSING_RGB = [70, 70, 78];

/** RGBA pixels of the normalised rows, newest at the top; grey where a value is missing. */
export function paint(px, norm, nCols, [vmin, vmax]) {
  const n = norm.length;
  for (let r = 0; r < n; r++) {
    const line = norm[n - 1 - r];
    for (let j = 0; j < nCols; j++) {
      const o = (r * nCols + j) * 4;
      const v = line[j];
      if (Number.isFinite(v)) {
        const t = Math.min(255, Math.max(0, Math.round(((v - vmin) / (vmax - vmin)) * 255)));
        px[o] = VIRIDIS[t * 3];
        px[o + 1] = VIRIDIS[t * 3 + 1];
        px[o + 2] = VIRIDIS[t * 3 + 2];
      } else {
        px.set(MISSING_RGB, o);
      }
      px[o + 3] = 255;
    }
  }
  return px;
}
