// The panels: run spectrum and excess, latest file, candidates, run details, the figures
// across the top and the run's status.

import { axisOf } from "./arrays.js";
import { LATENCY_WARN_S, RATIO_OK, STALE_WARN_S } from "./config.js";
import { $, overlay, setFlag, setText } from "./dom.js";
import { fin, fmtAge, fmtDuration, fmtGHz, fmtInt, fmtUtc, plural } from "./format.js";
import { applyData, PLOT_IDS, plots } from "./plots.js";
import { candidateRows, candidatesOf, excessSeries, fileSeries, inputRate, runSeries } from "./series.js";
import { schedule, state } from "./state.js";
import { invalidateBaseline } from "./waterfall.js";

export function renderRun() {
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
  applyData(plots.run, runSeries(doc, ax, state.log.run));
  overlay(PLOT_IDS.run, "");
  applyData(plots.excess, excessSeries(doc, ax));
  overlay(PLOT_IDS.excess, "");

  const fLoGHz = fmtGHz(ax.fLo, 6);
  const thr = fin((doc.analysis || {}).threshold_sigma);
  const found = candidatesOf(doc).length;
  setText(
    "title-run",
    `Cumulative run spectrum · N = ${fmtInt(doc.slices)} ${plural(doc.slices, "slice")} in ${fmtInt(doc.files)} ${plural(doc.files, "file")} · f_LO = ${fLoGHz} GHz`,
  );
  setText(
    "title-excess",
    `Normalised excess · threshold ${thr == null ? "–" : thr.toFixed(3)} σ · ${found} ${plural(found, "candidate")} · f_LO = ${fLoGHz} GHz`,
  );
  renderCandidates(doc, ax);
  renderDetails(doc, ax);
  invalidateBaseline(); // the waterfall's baseline normalisation follows the run
  schedule("figures");
  if (document.body.dataset.ready !== "true") document.body.dataset.ready = "true";
}

export function renderFile() {
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
  applyData(plots.file, fileSeries(doc, ax, state.log.file));
  overlay(PLOT_IDS.file, doc.count ? "" : `File #${doc.file_number} has no valid slices (every chunk was rejected).`);
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
  const key = `${ax.fLo}|${JSON.stringify(candidatesOf(doc))}`;
  if (key === state.candidatesKey) return;
  state.candidatesKey = key;
  const rows = candidateRows(doc, ax).map((c) => {
    const tr = document.createElement("tr");
    c.cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i > 0) td.className = "num";
      tr.appendChild(td);
    });
    tr.tabIndex = 0;
    tr.title = "Zoom the spectra on this candidate";
    tr.dataset.min = String(c.min);
    tr.dataset.max = String(c.max);
    if (c.strong) tr.classList.add("strong");
    return tr;
  });
  $("candidates").tBodies[0].replaceChildren(...rows);
  $("cand-empty").hidden = rows.length > 0;
  setText("cand-summary", rows.length ? `${rows.length} above ${doc.analysis.threshold_sigma} σ` : "");
}

/** Empty the candidate table and the details (a run switch). */
export function clearLists() {
  $("candidates").tBodies[0].replaceChildren();
  $("cand-empty").hidden = false;
  setText("cand-summary", "");
  $("details").replaceChildren();
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
  $("details").replaceChildren(frag);
}

function renderRate() {
  const measured = state.run ? inputRate(state.rateHistory, state.run.axis.n_fft) : null;
  const rate = measured ?? state.bootstrapRate;
  setText("fig-rate", rate == null || !Number.isFinite(rate) ? "–" : `${(rate / 1e6).toFixed(1)} MB/s`);
  setText(
    "fig-rate-sub",
    rate == null ? "" : state.rateHistory.length >= 2 ? `last ${state.rateHistory.length} updates` : "from the kept files",
  );
}

export function renderFigures() {
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
  setText("fig-rejects", rejects == null ? "" : `${fmtInt(rejects)} rejected ${plural(rejects, "chunk")}`);
  setFlag("fig-duplicates-box", "warn", rejects > 0);
  const ratio = r ? fin(r.analysis && r.analysis.radiometer_ratio) : null;
  const ratioOk = ratio != null && ratio >= RATIO_OK[0] && ratio <= RATIO_OK[1];
  setText("fig-ratio", ratio == null ? "–" : ratio.toFixed(3));
  setFlag("fig-ratio-box", "bad", ratio != null && !ratioOk);
  setFlag("fig-ratio-box", "good", ratioOk);
  const lat = state.lastFileLatency;
  setText("fig-latency", lat == null ? "–" : `${lat.toFixed(2)} s`);
  setText("fig-latency-sub", state.lastFileNumber == null ? "" : `file #${state.lastFileNumber}`);
  setFlag("fig-latency-box", "warn", lat != null && lat > LATENCY_WARN_S);
  renderRate();
  const dropped = state.droppedBefore + state.droppedConn;
  setText("fig-dropped", fmtInt(dropped));
  setFlag("fig-dropped-box", "warn", dropped > 0);
  renderAge();
  renderRunStatus();
}

/** How long ago the run was last updated (redrawn every second). */
export function renderAge() {
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

export function renderRunStatus() {
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
