// The runs: the list polled from the API, the selector, the address (#run=…), and what a
// switch to another run resets.

import { API, BACKOFF_MIN_MS } from "./config.js";
import { $ } from "./dom.js";
import { cancelResync, connect, getJSON, setConn } from "./feed.js";
import { clearLists, renderRunStatus } from "./panels.js";
import { clearPlots } from "./plots.js";
import { conn, schedule, state } from "./state.js";
import { clearRows } from "./waterfall.js";

/** The run named in the address (#run=…), or null to follow the newest. */
export function hashRun() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const id = params.get("run");
  return id ? id : null;
}

/** Whether a follower should move from `current` to `newest`: a newer run, not the
 * latest-updated of two running at once. */
function newerRun(newest, current) {
  if (!newest) return false;
  if (!state.runId || !current) return true;
  return (
    newest.run_id !== state.runId &&
    (newest.first_daq_time ?? 0) > (current.first_daq_time ?? 0) &&
    current.status !== "live"
  );
}

export async function refreshRuns() {
  let runs;
  try {
    runs = await getJSON(`${API}/runs`);
  } catch {
    return; // the socket state and banner tell the story
  }
  state.runs = Array.isArray(runs) ? runs : [];
  if (state.follow) {
    const current = state.runs.find((r) => r.run_id === state.runId);
    if (newerRun(state.runs[0], current)) selectRun(state.runs[0].run_id);
  }
  renderSelector();
  schedule("figures");
  if (!state.runId) {
    setConn("connecting", "waiting for a run");
    for (const what of ["run", "file", "wf"]) schedule(what);
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

/** Show run `id`: forget the previous run's documents, figures and socket. */
export function selectRun(id) {
  if (id === state.runId) return;
  Object.assign(state, {
    gen: state.gen + 1,
    runId: id,
    run: null,
    file: null,
    runMissing: false,
    fileMissing: false,
    lastFileLatency: null,
    lastFileNumber: null,
    rateHistory: [],
    bootstrapRate: null,
    droppedBefore: 0,
    droppedConn: 0,
    zoom: null,
    candidatesKey: "",
  });
  document.body.dataset.ready = "false";
  clearPlots();
  clearLists();
  clearRows();
  cancelResync();
  conn.backoff = BACKOFF_MIN_MS;
  renderSelector();
  for (const what of ["run", "file", "figures"]) schedule(what);
  connect();
}

/** The address changed: follow the run it names, or the newest. */
export function applyHash() {
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
