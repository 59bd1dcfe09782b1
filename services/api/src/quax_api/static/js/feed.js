// The data feed: REST fills the page, one WebSocket per page (subscribed to the selected
// run) brings "file" and "run" updates. Documents are only stored here; panels are marked
// to be drawn.

import { API, BACKOFF_MAX_MS, BACKOFF_MIN_MS, HELLO_TIMEOUT_MS, RATE_WINDOW, WF_DECIMATE, WF_LAST } from "./config.js";
import { $, banner, setText } from "./dom.js";
import { rateFromFiles } from "./series.js";
import { conn, schedule, state } from "./state.js";
import { addFile, markIncomplete, replaceRows } from "./waterfall.js";

// REST ---------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, url) {
    super(`${status} for ${url}`);
    this.status = status;
  }
}

export async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) throw new HttpError(response.status, path);
  return response.json();
}

const runPath = (id) => `${API}/runs/${encodeURIComponent(id)}`;

export function acceptRun(doc) {
  if (!doc || doc.run_id !== state.runId) return;
  // the update with the most slices is the newest (replays carry fewer); a newer emission
  // with fewer slices means the run was reprocessed from scratch (the API restarted)
  if (state.run && doc.slices <= state.run.slices && !(doc.emitted_time > state.run.emitted_time)) return;
  if (state.run && state.run.axis.f_lo_hz !== doc.axis.f_lo_hz) state.zoom = null;
  state.run = doc;
  state.runMissing = false;
  const h = state.rateHistory;
  if (!h.length || doc.slices > h[h.length - 1].slices) h.push({ slices: doc.slices, t: doc.emitted_time });
  if (h.length > RATE_WINDOW) h.splice(0, h.length - RATE_WINDOW);
  schedule("run");
}

export function acceptFile(doc) {
  if (!doc || doc.run_id !== state.runId) return;
  addFile(doc);
  if (state.file && doc.file_number < state.file.file_number) return;
  state.file = doc;
  state.fileMissing = false;
  // A revision (late data) says nothing of the pipeline's latency.
  if (!(doc.revision > 0) && Number.isFinite(doc.emitted_time) && Number.isFinite(doc.daq_time)) {
    state.lastFileLatency = doc.emitted_time - doc.daq_time;
    state.lastFileNumber = doc.file_number;
  }
  schedule("figures");
  schedule("file");
}

const sync = { running: false, again: false, timer: 0 };

export function scheduleResync(ms) {
  clearTimeout(sync.timer);
  sync.timer = setTimeout(resync, ms);
}

/** Forget a resync under way (a run switch: its responses are ignored by generation). */
export function cancelResync() {
  clearTimeout(sync.timer);
  sync.running = false;
  sync.again = false;
}

/** The latest file and the waterfall, once the file list says what there is. */
async function fetchFiles(id, gen, list) {
  const last = list[list.length - 1];
  if (state.lastFileLatency == null || !state.file || last.file_number >= state.file.file_number) {
    state.lastFileLatency = last.latency_seconds;
    state.lastFileNumber = last.file_number;
  }
  markIncomplete(list);
  if (state.run) state.bootstrapRate = rateFromFiles(list, state.run.axis.n_fft) ?? state.bootstrapRate;
  const [fileDoc, waterfall] = await Promise.allSettled([
    !state.file || last.file_number > state.file.file_number
      ? getJSON(`${runPath(id)}/files/${last.file_number}`)
      : Promise.resolve(null),
    getJSON(`${runPath(id)}/waterfall?last=${WF_LAST}&decimate=${WF_DECIMATE}`),
  ]);
  if (gen !== state.gen) return;
  if (fileDoc.status === "fulfilled" && fileDoc.value) acceptFile(fileDoc.value);
  if (waterfall.status === "fulfilled") replaceRows(waterfall.value);
}

/** Fetch the run, the file list, the latest file and the waterfall over REST. */
export async function resync() {
  clearTimeout(sync.timer);
  if (!state.runId) return;
  if (sync.running) {
    sync.again = true;
    return;
  }
  sync.running = true;
  const gen = state.gen;
  const id = state.runId;
  try {
    const [run, files] = await Promise.allSettled([getJSON(runPath(id)), getJSON(`${runPath(id)}/files`)]);
    if (gen !== state.gen) return;
    for (const result of [run, files]) {
      if (result.status === "rejected" && !(result.reason instanceof HttpError && result.reason.status === 404)) {
        throw result.reason;
      }
    }
    if (run.status === "fulfilled") acceptRun(run.value);
    else if (!state.run) {
      state.runMissing = true;
      schedule("run");
    }
    const list = files.status === "fulfilled" ? files.value : [];
    if (list.length) await fetchFiles(id, gen, list);
    else if (!state.file) {
      state.fileMissing = true;
      schedule("file");
      schedule("wf");
    }
    banner("");
    schedule("figures");
  } catch (error) {
    if (gen === state.gen) {
      banner(`The API does not answer (${error.message || error}); retrying…`);
      scheduleResync(3000);
    }
  } finally {
    sync.running = false;
    if (sync.again) {
      sync.again = false;
      resync();
    }
  }
}

// WebSocket ----------------------------------------------------------------------------

export function setConn(status, text) {
  conn.status = status;
  $("conn").className = `conn conn-${status}`;
  setText("conn-text", text || status);
}

/** Open the socket for the selected run (closing any other). */
export function connect() {
  clearTimeout(conn.retryTimer);
  clearTimeout(conn.helloTimer);
  if (conn.ws) {
    const old = conn.ws;
    old.onopen = old.onmessage = old.onclose = old.onerror = null;
    if (old.readyState <= 1) old.close(1000, "run changed");
    conn.ws = null;
  }
  if (!state.runId) {
    setConn("connecting", "waiting for a run");
    return;
  }
  const gen = state.gen;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/ws/v1/spectra?runs=${encodeURIComponent(state.runId)}`;
  setConn(conn.everConnected ? "reconnecting" : "connecting", conn.everConnected ? "reconnecting…" : "connecting…");
  let ws;
  try {
    ws = new WebSocket(url);
  } catch {
    scheduleReconnect(gen);
    return;
  }
  conn.ws = ws;
  // if the socket does not come up quickly, fill the page over REST meanwhile
  conn.helloTimer = setTimeout(() => {
    if (gen === state.gen && conn.status !== "connected") resync();
  }, HELLO_TIMEOUT_MS);
  ws.onmessage = (event) => onSocketMessage(event.data, gen);
  ws.onclose = () => {
    if (gen !== state.gen || conn.ws !== ws) return;
    conn.ws = null;
    state.droppedBefore += state.droppedConn;
    state.droppedConn = 0;
    scheduleReconnect(gen);
  };
  ws.onerror = () => {}; // a close event follows
}

function scheduleReconnect(gen) {
  if (gen !== state.gen) return;
  const delay = conn.backoff;
  conn.backoff = Math.min(BACKOFF_MAX_MS, conn.backoff * 2);
  conn.retryAt = Date.now() + delay;
  renderReconnect();
  conn.retryTimer = setTimeout(() => {
    if (gen === state.gen) connect();
  }, delay);
}

/** The countdown to the next attempt (redrawn every second). */
export function renderReconnect() {
  if (conn.ws || !conn.retryAt) return;
  const s = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
  setConn("reconnecting", `reconnecting in ${s} s`);
}

function onSocketMessage(text, gen) {
  if (gen !== state.gen) return;
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return;
  }
  switch (msg.type) {
    case "hello":
      clearTimeout(conn.helloTimer);
      conn.backoff = BACKOFF_MIN_MS;
      conn.retryAt = 0;
      conn.everConnected = true;
      setConn("connected", "connected");
      resync(); // subscribed now: whatever REST returns plus the feed misses nothing
      break;
    case "dropped":
      state.droppedConn = Number(msg.count) || 0;
      schedule("figures");
      scheduleResync(2000); // file spectra were lost: refill the waterfall
      break;
    case "file":
      if (msg.run_id !== state.runId) return;
      state.filesSeen += 1;
      document.body.dataset.filesSeen = String(state.filesSeen);
      acceptFile(msg.data);
      break;
    case "run":
      if (msg.run_id !== state.runId) return;
      acceptRun(msg.data);
      break;
    default:
      break;
  }
}
