// What the dashboard asks for and how it judges what it shows: constants only.

export const API = "/api/v1";
export const WF_LAST = 60; // files in the waterfall
export const WF_DECIMATE = 4; // bins averaged per waterfall column
export const BACKOFF_MIN_MS = 1000;
export const BACKOFF_MAX_MS = 15000;
export const HELLO_TIMEOUT_MS = 1500; // fill the page over REST if the socket is not up by then
export const RUNS_POLL_MS = 15000;
export const RATE_WINDOW = 8; // run updates used for the input-rate estimate
export const RATIO_OK = [0.9, 1.1];
export const LATENCY_WARN_S = 15;
export const STALE_WARN_S = 30;

export const COLORS = {
  axis: "#aab4c0",
  grid: "rgba(255,255,255,0.07)",
  runMean: "#58a6ff",
  runBand: "rgba(88,166,255,0.28)",
  runBandEdge: "rgba(88,166,255,0.45)",
  baseline: "#ffa657",
  fileMean: "#7ee787",
  fileBand: "rgba(126,231,135,0.16)",
  fileBandEdge: "rgba(126,231,135,0.35)",
  excess: "#8b98a9",
  matched: "#f2cc60",
  threshold: "#ff7b72",
  candidate: "#ff6bcb",
};
