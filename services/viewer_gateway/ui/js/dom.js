// Small DOM helpers: h("button", {onclick}, "Texte") builds an element; text is never parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

// The legal time of the commune being worked on (its `communes.time_zone`): every date and time
// on screen, and every one typed in a form, is in it — an agent in Cayenne reads Cayenne's hours,
// whatever the zone of the browser (issue 37). app.js sets it when the commune is chosen.
let zone = "Europe/Paris";

export function setTimeZone(timeZone) {
  zone = timeZone || "Europe/Paris";
}

export function timeZone() {
  return zone;
}

const inZone = () => ({ timeZone: zone });

/** Minutes the commune's zone is ahead of UTC at the instant `d`. */
function offsetMinutes(d) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(d).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return Math.round((wall - Math.floor(d.getTime() / 1000) * 1000) / 60000);
}

/** Date and time in the commune's zone, to the second: what agents read on screen (R36). */
export function frDateTime(value) {
  const d = value instanceof Date ? value : new Date(value);
  return d.toLocaleString("fr-FR", { ...inZone(), dateStyle: "short", timeStyle: "medium" });
}

/** Date and time to the tenth of a second: the time being played (issue 18). */
export function frDateTimeTenths(value) {
  const d = value instanceof Date ? value : new Date(value);
  return `${frDateTime(d)},${Math.floor(d.getUTCMilliseconds() / 100)}`;
}

/** Hour and minute (and seconds), for timeline ticks. */
export function frTime(value, seconds = false) {
  return new Date(value).toLocaleTimeString("fr-FR", { ...inZone(), hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined });
}

/** « il y a 3 min » */
export function frAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `il y a ${s} s`;
  if (s < 3600) return `il y a ${Math.floor(s / 60)} min`;
  return `il y a ${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}`;
}

/** A day: « 01/03/2026 ». A calendar date (2026-03-01: an order's end, a training) is that day
 * everywhere; an instant is the day it was in the commune. */
export function frDate(value) {
  if (!value) return "—";
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return new Date(`${value}T12:00:00Z`).toLocaleDateString("fr-FR", { timeZone: "UTC" });
  return new Date(value).toLocaleDateString("fr-FR", inZone());
}

/** A <input type="datetime-local"> value: the wall time in the commune's zone of the instant `d`. */
export function localInput(d) {
  return new Date(d.getTime() + offsetMinutes(d) * 60000).toISOString().slice(0, 19);
}

/** The instant a <input type="datetime-local"> value (a wall time in the commune's zone) names. */
export function fromLocalInput(value) {
  const wall = new Date(`${value.length === 16 ? `${value}:00` : value}Z`).getTime();
  const first = wall - offsetMinutes(new Date(wall)) * 60000;
  return new Date(wall - offsetMinutes(new Date(first)) * 60000);  // right across a DST change
}

/** The form's fields as an object of trimmed strings. */
export function fields(form) {
  return Object.fromEntries([...new FormData(form).entries()].map(([k, v]) => [k, String(v).trim()]));
}

/** Opens the page's <dialog> with a form; resolves with its fields, or null when cancelled. */
export function ask(title, body, { submit = "Valider", onsubmit } = {}) {
  const dialog = document.getElementById("dialogue");
  return new Promise((resolve) => {
    const error = h("p", { class: "erreur", role: "alert" });
    const form = h("form", { class: "pile", method: "dialog" },
      h("h2", {}, title), body, error,
      h("div", { class: "outils" },
        h("button", { type: "submit", class: "principal" }, submit),
        h("button", { type: "button", onclick: () => { dialog.close(); resolve(null); } }, "Annuler")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = fields(form);
      try {
        const result = onsubmit ? await onsubmit(values) : values;
        dialog.close();
        resolve(result);
      } catch (err) {
        error.textContent = err.message;
      }
    });
    dialog.onclose = () => resolve(null);
    clear(dialog, form);
    dialog.showModal();
    form.querySelector("input, select, textarea")?.focus();
  });
}

/**
 * Tabs over panels: [tablist, panels]; each tab renders its own panel when chosen, so a slow answer
 * for a tab left meanwhile fills its own hidden panel, never the one now shown. The first is chosen.
 * tabs: [[id, label, render(panel)]].
 */
export function tabbed(tabs) {
  const panels = tabs.map(([id]) => h("section", { role: "tabpanel", hidden: true, dataset: { onglet: id } }));
  const buttons = tabs.map(([id, label, render], i) => h("button", {
    type: "button", role: "tab", dataset: { onglet: id },
    onclick: () => {
      buttons.forEach((b, j) => { b.setAttribute("aria-selected", String(i === j)); panels[j].hidden = i !== j; });
      render(panels[i]);
    },
  }, label));
  queueMicrotask(() => buttons[0]?.click());
  return [h("div", { class: "onglets", role: "tablist" }, buttons), panels];
}

/** Keep `el` within the window: its height is what is left below its top (it was a fixed
 * `100vh - 10em`, and a toolbar on two lines or a taller header pushed the picture's bottom out
 * of sight, issue 38). In the browser's full screen, the element fills the screen by CSS. Returns
 * the function that stops following the window. */
export function fitToWindow(el, { min = 240, margin = 8 } = {}) {
  const fit = () => {
    if (document.fullscreenElement === el) { el.style.height = ""; return; }
    const top = el.getBoundingClientRect().top + window.scrollY;
    el.style.height = `${Math.max(min, window.innerHeight - top - margin)}px`;
  };
  // What is above it: the toolbar wraps, the header grows (not the body, which it resizes).
  const observer = new ResizeObserver(fit);
  for (const above of [document.querySelector("body > header"), el.previousElementSibling]) {
    if (above) observer.observe(above);
  }
  window.addEventListener("resize", fit);
  document.addEventListener("fullscreenchange", fit);
  requestAnimationFrame(fit);
  fit();
  return () => {
    observer.disconnect();
    window.removeEventListener("resize", fit);
    document.removeEventListener("fullscreenchange", fit);
  };
}
