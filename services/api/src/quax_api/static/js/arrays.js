// The frequency axis of a document, and the array reductions the panels share (pure).

let axisCache = { key: "", x: [], fLo: NaN, nFft: 0, fs: NaN, binHz: NaN };

/** The frequency offset from f_LO in MHz for a document's axis (computed once per axis). */
export function axisOf(doc) {
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
export function decimate(values, d) {
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

/** The median of the finite values (NaN if there are none). */
export function median(values) {
  const finite = Float64Array.from(values).filter(Number.isFinite).sort();
  if (!finite.length) return NaN;
  const m = finite.length >> 1;
  return finite.length % 2 ? finite[m] : 0.5 * (finite[m - 1] + finite[m]);
}
