// The dashboard's pure helpers, under node's own test runner (`node --test`): formatting,
// the frequency axis, decimation as the API decimates, the series the panels plot, the
// candidate table, the input rate and the waterfall's data steps.

import assert from "node:assert/strict";
import { test } from "node:test";

import { axisOf, decimate, median } from "../../src/quax_api/static/js/arrays.js";
import { fin, fmtAge, fmtDuration, fmtGHz, fmtInt, fmtUtc, niceStep, plural, sup } from "../../src/quax_api/static/js/format.js";
import { candidateRows, excessSeries, fileSeries, inputRate, rateFromFiles, runSeries } from "../../src/quax_api/static/js/series.js";
import { colourRange, insertRow, makeRow, MISSING_RGB, normalise, paint, VIRIDIS, visibleColumns } from "../../src/quax_api/static/js/wfdata.js";

const close = (a, b, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

function doc({ n = 8, fLo = 9.5e9, fs = 2e6, ...rest } = {}) {
  const frequency_hz = Array.from({ length: n }, (_, i) => fLo + ((i - n / 2) * fs) / n);
  return { axis: { n_fft: n, fs_hz: fs, f_lo_hz: fLo, frequency_hz, bin_width_hz: fs / n }, ...rest };
}

test("numbers, times and units print as the panels show them", () => {
  assert.equal(fmtInt(1234567), "1,234,567");
  assert.equal(fmtInt(NaN), "–");
  assert.equal(fin(null), null);
  assert.equal(fin(Infinity), null);
  assert.equal(fin(0), 0);
  assert.equal(sup(-12), "⁻¹²");
  assert.equal(plural(1, "file"), "file");
  assert.equal(plural(0, "file"), "files");
  assert.equal(fmtGHz(9.5e9, 3), "9.500");
  assert.equal(fmtDuration(4.25), "4.3 s"); // rounded to a tenth under 10 s
  assert.equal(fmtDuration(3725), "62 min 5 s");
  assert.equal(fmtDuration(90000), "25 h 0 min");
  assert.equal(fmtDuration(3 * 86400 + 7200), "3 d 2 h");
  assert.equal(fmtAge(3725), "62 min");
  assert.equal(fmtUtc(0), "1970-01-01 00:00:00 UTC");
  assert.equal(fmtUtc(undefined), "–");
});

test("tick steps are 1, 2 or 5 times a power of ten near the asked count", () => {
  assert.equal(niceStep(1, 10), 0.1);
  assert.equal(niceStep(2, 5), 0.5);
  close(niceStep(0.03, 10), 0.002);
  assert.equal(niceStep(1000, 4), 200);
});

test("the axis is MHz from f_LO and is computed once per axis", () => {
  const d = doc({ n: 4 });
  const ax = axisOf(d);
  assert.deepEqual(ax.x, [-1, -0.5, 0, 0.5]);
  assert.equal(ax.binHz, 5e5);
  assert.equal(axisOf(doc({ n: 4 })), ax); // same axis, same object
  assert.notEqual(axisOf(doc({ n: 4, fLo: 1e9 })), ax);
});

test("decimation averages groups and leaves NaN where a group misses a value", () => {
  assert.deepEqual(Array.from(decimate([1, 3, 5, 7, 9], 2)), [2, 6]); // the tail is dropped
  const out = decimate([1, null, 4, 4], 2);
  assert.ok(Number.isNaN(out[0]));
  assert.equal(out[1], 4);
  assert.equal(median([3, NaN, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([NaN])));
});

test("the run series give mean ± sem and the baseline, with gaps for a log axis", () => {
  const d = doc({ n: 4, mean: [2, 1, null, 4], sem: [1, 1, 1, null], analysis: { baseline: [2, 0, 2, 2] } });
  const [x, m, hi, lo, b] = runSeries(d, axisOf(d), false);
  assert.equal(x.length, 4);
  assert.deepEqual(m, [2, 1, null, 4]);
  assert.deepEqual(hi, [3, 2, null, null]);
  assert.deepEqual(lo, [1, 0, null, null]);
  assert.deepEqual(b, [2, 0, 2, 2]);
  const [, , , logLo, logB] = runSeries(d, axisOf(d), true);
  assert.deepEqual(logLo, [1, null, null, null]); // 1 − 1 = 0 has no logarithm
  assert.deepEqual(logB, [2, null, 2, 2]);
});

test("the file series' lower edge stops at a tenth of the mean on a log axis", () => {
  const d = doc({ n: 2, mean: [1, 1], std: [0.5, 3] });
  assert.deepEqual(fileSeries(d, axisOf(d), false).slice(1), [[1, 1], [1.5, 4], [0.5, -2]]);
  assert.deepEqual(fileSeries(d, axisOf(d), true)[3], [0.5, 0.1]);
});

test("candidates sit at their bin, or at their frequency's bin when the bin is missing", () => {
  const d = doc({
    n: 8,
    analysis: {
      excess_sigma: [0, 1, 2, 3, 4, 5, 6, 7],
      matched_sigma: [null, 1, 1, 1, 1, 1, 1, null],
      threshold_sigma: 3.455,
      candidates: [
        { bin: 2, frequency_hz: 9.5e9 - 5e5, significance: 4.0, excess_sigma: 2 },
        { frequency_hz: 9.5e9 + 5e5, significance: 9.0, excess_sigma: 6 },
      ],
    },
  });
  const [, e, f, t, c] = excessSeries(d, axisOf(d));
  assert.equal(e[7], 7);
  assert.equal(f[0], null);
  assert.deepEqual(new Set(t), new Set([3.455]));
  assert.deepEqual(c, [null, null, 4.0, null, null, null, 9.0, null]);
  const rows = candidateRows(d, axisOf(d));
  assert.deepEqual(rows.map((r) => r.cells[0] + ":" + r.cells[3]), ["1:9.00", "2:4.00"]); // strongest first
  assert.equal(rows[0].cells[1], "500.00"); // kHz from f_LO
  assert.equal(rows[0].strong, true); // at least twice the threshold
  assert.equal(rows[1].strong, false);
  const width = Math.max(4850 * 6, 20 * 2.5e5) / 1e6; // six line widths, at least 20 bins
  close(rows[0].max - rows[0].min, 1.5 * width);
});

test("the input rate comes from run updates, or from the kept files before two updates", () => {
  assert.equal(inputRate([{ slices: 0, t: 0 }], 3072), null);
  assert.equal(inputRate([{ slices: 0, t: 0 }, { slices: 1000, t: 0 }], 3072), null);
  // 651 slices of 3072 complex float32 samples every 4 s: 4.0 MB/s
  close(inputRate([{ slices: 0, t: 0 }, { slices: 651, t: 4 }], 3072), (651 * 3072 * 8) / 4);
  const files = [{ daq_time: 0, count: 651 }, { daq_time: 4.2, count: 651 }, { daq_time: 8.4, count: 651 }];
  close(rateFromFiles(files, 3072), (2 * 651 * 3072 * 8) / 8.4);
  assert.equal(rateFromFiles(files.slice(0, 1), 3072), null);
});

test("waterfall rows stay in file order: repeats ignored, revisions replace, the oldest go", () => {
  const rows = [];
  for (const file of [3, 1, 2]) assert.ok(insertRow(rows, makeRow(file, file, [file]), 3));
  assert.deepEqual(rows.map((r) => r.file), [1, 2, 3]);
  assert.equal(insertRow(rows, makeRow(2, 2, [9]), 3), false); // a repeat
  assert.ok(insertRow(rows, makeRow(2, 2, [9], 1), 3)); // revision 1
  assert.deepEqual(rows[1].values, [9]);
  assert.equal(insertRow(rows, makeRow(0, 0, [0]), 3), false); // older than all kept
  assert.ok(insertRow(rows, makeRow(4, 4, [4]), 3));
  assert.deepEqual(rows.map((r) => r.file), [2, 3, 4]);
});

test("rows are divided by the baseline, or by their median without one", () => {
  const rows = [makeRow(0, 0, Float64Array.from([2, 4, 6]))];
  assert.deepEqual(Array.from(normalise(rows, Float64Array.from([2, 2, 2]), 3)[0]), [1, 2, 3]);
  assert.deepEqual(Array.from(normalise(rows, null, 3)[0]), [0.5, 1, 1.5]);
});

test("the colour range is symmetric around 1 and never below 0", () => {
  const line = Float64Array.from({ length: 100 }, (_, i) => 0.9 + (0.15 * i) / 99);
  const [lo, hi] = colourRange([line], 0, 100, [0, 2]);
  close(lo, 0.9); // the farther side (0.9, against 1.05) sets both
  close(hi, 1.1);
  assert.deepEqual(colourRange([Float64Array.from([5, NaN])], 0, 2, [0.5, 1.5]), [0.5, 1.5]); // too few
  assert.equal(colourRange([Float64Array.from({ length: 50 }, (_, i) => 1 + 3 * i)], 0, 50, null)[0], 0);
});

test("visible columns follow the zoom, and all are shown without one", () => {
  assert.deepEqual(visibleColumns(null, 0, 1, 10), [0, 10]);
  assert.deepEqual(visibleColumns({ min: 2, max: 5 }, 0.5, 1, 10), [2, 5]);
  assert.deepEqual(visibleColumns({ min: 20, max: 30 }, 0.5, 1, 10), [0, 10]); // outside: all
});

test("pixels: newest row on top, viridis ends for the range ends, grey where missing", () => {
  const norm = [Float64Array.from([1, NaN]), Float64Array.from([0, 2])]; // oldest first
  const px = paint(new Uint8ClampedArray(2 * 2 * 4), norm, 2, [0, 2]);
  assert.deepEqual(Array.from(px.slice(0, 4)), [...VIRIDIS.slice(0, 3), 255]); // newest, 0
  assert.deepEqual(Array.from(px.slice(4, 8)), [...VIRIDIS.slice(765, 768), 255]); // newest, 2
  assert.deepEqual(Array.from(px.slice(12, 16)), [...MISSING_RGB, 255]);
  assert.equal(VIRIDIS.length, 768);
  // the fit is within a few levels of viridis: dark purple (68, 1, 84) to yellow (253, 231, 37)
  const near = (got, want) => want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) <= 4, `${got} vs ${want}`));
  near(VIRIDIS.slice(0, 3), [68, 1, 84]);
  near(VIRIDIS.slice(765), [253, 231, 37]);
});
