// The page's state: the selected run and its newest documents, the connection, and which
// panels must be drawn again at the next animation frame.

import { BACKOFF_MIN_MS } from "./config.js";

export const state = {
  gen: 0, // bumped on every run switch; stale responses and messages are ignored
  runs: [],
  runId: null,
  follow: true, // no #run= in the address: follow the newest run
  run: null, // latest quax.run-spectrum/1 document
  runMissing: false,
  file: null, // latest quax.file-spectrum/1 document
  fileMissing: false,
  lastFileLatency: null,
  lastFileNumber: null,
  rateHistory: [], // {slices, t} of recent run updates
  bootstrapRate: null, // from the file list, until two run updates are seen
  droppedBefore: 0, // dropped updates of earlier connections (this run)
  droppedConn: 0, // as reported on the current connection
  filesSeen: 0,
  zoom: null, // {min, max} in MHz, or null for the whole band
  candidatesKey: "",
  log: { run: false, file: false },
};

export const conn = {
  ws: null,
  backoff: BACKOFF_MIN_MS,
  retryAt: 0,
  retryTimer: 0,
  helloTimer: 0,
  status: "connecting",
  everConnected: false,
};

// Messages only store documents and mark panels dirty; one animation frame draws them.
const ORDER = ["size", "run", "file", "figures", "wf"];
const dirty = Object.fromEntries(ORDER.map((what) => [what, false]));
let painters = {};
let rafId = 0;

/** The functions that draw each part (size, run, file, figures, wf), set once at start. */
export function setPainters(functions) {
  painters = functions;
}

/** Mark `what` (if given) to be drawn at the next frame, and ask for that frame. */
export function schedule(what) {
  if (what) dirty[what] = true;
  if (!rafId) rafId = requestAnimationFrame(frame);
}

function frame() {
  rafId = 0;
  for (const what of ORDER) {
    if (dirty[what]) {
      dirty[what] = false;
      painters[what]();
    }
  }
}
