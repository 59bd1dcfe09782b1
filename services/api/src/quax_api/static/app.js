// quax-stream dashboard: native ES modules (js/), no build step. uPlot is the global
// `uPlot` (loaded from /static/vendor/uPlot.iife.min.js before this module runs).
//
// Data flow (js/feed.js): REST fills the page (run, file list, latest file, waterfall);
// one WebSocket per page, subscribed to the selected run, brings "file" and "run" updates.
// Messages only store the newest documents and mark panels dirty (js/state.js); one
// requestAnimationFrame callback redraws what changed with setData on plots that are
// created once (js/plots.js, js/panels.js, js/waterfall.js). Pure helpers (js/format.js,
// js/arrays.js, js/series.js, js/wfdata.js) are tested with node (dashboard/test/).

/* global uPlot */

import { RUNS_POLL_MS } from "./js/config.js";
import { $, banner } from "./js/dom.js";
import { renderReconnect, setConn } from "./js/feed.js";
import { renderAge, renderFigures, renderFile, renderRun } from "./js/panels.js";
import { applyZoom, createPlot, PLOT_IDS, plots, resetZoom, resizePlots, zoomTo } from "./js/plots.js";
import { applyHash, hashRun, refreshRuns, selectRun } from "./js/runs.js";
import { conn, schedule, setPainters, state } from "./js/state.js";
import * as waterfall from "./js/waterfall.js";

function listen() {
  $("run-select").addEventListener("change", (ev) => {
    const id = ev.target.value;
    if (id) location.hash = `run=${encodeURIComponent(id)}`;
  });
  window.addEventListener("hashchange", applyHash);
  for (const name of ["run", "file"]) {
    $(`log-${name}`).addEventListener("change", (ev) => {
      state.log[name] = ev.target.checked;
      createPlot(name);
      applyZoom(null);
      schedule(name);
    });
  }
  $("zoom-reset").addEventListener("click", resetZoom);
  $("wf-norm").addEventListener("change", (ev) => {
    waterfall.wf.norm = ev.target.value;
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
  waterfall.listen(resetZoom);
  const observer = new ResizeObserver(() => schedule("size"));
  for (const id of [...Object.values(PLOT_IDS), "waterfall"]) observer.observe($(id));
  window.addEventListener("resize", () => schedule("size"));
}

/** Every second: ages and countdowns; the run list every RUNS_POLL_MS (3 s without a run). */
function tick() {
  let lastRunsPoll = Date.now();
  setInterval(() => {
    renderAge();
    renderReconnect();
    const wait = state.runId ? RUNS_POLL_MS : 3000;
    if (Date.now() - lastRunsPoll >= wait - 100) {
      lastRunsPoll = Date.now();
      refreshRuns();
    }
  }, 1000);
}

function init() {
  if (typeof uPlot !== "function") {
    banner("uPlot is missing: /static/vendor/uPlot.iife.min.js did not load.");
    return;
  }
  setPainters({
    size: () => {
      resizePlots();
      waterfall.sizeWaterfall();
      schedule("wf");
    },
    run: renderRun,
    file: renderFile,
    figures: renderFigures,
    wf: waterfall.drawWaterfall,
  });
  for (const name of ["run", "file", "excess"]) createPlot(name);
  waterfall.sizeWaterfall();
  listen();
  tick();
  const id = hashRun();
  if (id) {
    state.follow = false;
    selectRun(id);
  } else {
    setConn("connecting", "loading runs…");
  }
  refreshRuns();
  for (const what of ["run", "file", "wf", "figures"]) schedule(what);
}

init();

// for debugging in the console and for automated tests: the plots and the page state
window.quax = Object.freeze({ plots, state, wf: waterfall.wf, conn });
