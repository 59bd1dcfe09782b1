// Numbers, times and units as the dashboard prints them (pure functions, tested with node).

const intFormat = new Intl.NumberFormat("en-US");
const SUP = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

export const fmtInt = (n) => (Number.isFinite(n) ? intFormat.format(n) : "–");
/** The value if it is a finite number, else null (JSON's null for a missing value). */
export const fin = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
/** An integer as superscript digits (for 10ⁿ in axis labels). */
export const sup = (n) => String(n).replace(/[-0-9]/g, (c) => SUP[c]);
export const plural = (n, word) => (n === 1 ? word : `${word}s`);
export const fmtGHz = (hz, digits = 6) => (Number.isFinite(hz) ? (hz / 1e9).toFixed(digits) : "–");
/** uPlot legend values: PSD in V²/Hz, significance in σ. */
export const fmtPsd = (u, v) => (v == null ? "–" : v.toExponential(3));
export const fmtSigma = (u, v) => (v == null ? "–" : v.toFixed(2));

/** A duration to one or two units, from 0.1 s to days. */
export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

/** An age, rounded coarser than a duration: it is read at a glance. */
export function fmtAge(s) {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

/** Unix seconds as "YYYY-MM-DD hh:mm:ss UTC". */
export function fmtUtc(t) {
  if (!Number.isFinite(t)) return "–";
  return `${new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19)} UTC`;
}

/** A round tick step (1, 2 or 5 × 10ⁿ) giving about `target` ticks over `range`. */
export function niceStep(range, target) {
  const raw = range / Math.max(1, target);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}
