// Small DOM writes that change nothing when the page already shows the value.

export const $ = (id) => document.getElementById(id);

export function setText(id, text) {
  const el = $(id);
  if (el && el.textContent !== text) el.textContent = text;
}

export function setFlag(id, cls, on) {
  const el = $(id);
  if (el) el.classList.toggle(cls, Boolean(on));
}

/** A "waiting for data" message on top of a plot; empty text hides it. */
export function overlay(containerId, text) {
  const el = $(containerId);
  let o = el.querySelector(":scope > .overlay");
  if (!o) {
    o = document.createElement("div");
    o.className = "overlay";
    el.appendChild(o);
  }
  o.textContent = text || "";
  o.hidden = !text;
}

/** The banner across the top: why the page is not up to date (empty text hides it). */
export function banner(text) {
  const el = $("banner");
  el.textContent = text;
  el.hidden = !text;
}
