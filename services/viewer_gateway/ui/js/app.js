// The shell: session, header (commune, hand-over, menu), screen-wide warnings, and the router.
// Screens are modules exporting mount(main, ctx, params) → optional cleanup function.
import { api, latest, SUPERSEDED } from "./api.js";
import { h, clear, ask, frDate, frDateTime, fromLocalInput, setTimeZone } from "./dom.js";
import { HOLDERS, fr } from "./fr.js";

const SCREENS = [
  // [route, menu label, permission needed to see it (null: everyone), module]
  ["mur", "Mur d'images", "live", "./mosaic.js"],
  ["direct", "Direct", "live", "./direct.js"],
  ["camera", null, "live", "./live.js"],
  ["alarmes", null, "live", "./alarms.js"],
  ["relecture", "Relecture", "playback", "./playback.js"],
  ["requisitions", "Réquisitions", "export", "./requisitions.js"],
  ["acces", "Demandes d'accès", "rights_requests", "./access.js"],
  ["masques", "Masques", "mask_admin", "./masks.js"],
  ["administration", "Administration", ["configuration", "user_admin"], "./admin.js"],
  ["registre", "Registre", "register_audit", "./register.js"],
  ["conformite", "Conformité", ["configuration", "register_audit", "commune_admin"], "./compliance.js"],
];
const POLL_MS = 2000;

const ctx = {
  me: null, communes: [], commune: null, cameras: [],
  can(permission) {
    const wanted = Array.isArray(permission) ? permission : [permission];
    return !permission || wanted.some((p) => this.me?.permissions.includes(p));
  },
  communeView() { return this.communes.find((c) => c.slug === this.commune); },
  go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash; // the hashchange routes
  },
};
window.vigie = ctx; // for the browser tests and the curious: no secret lives here

let cleanup = null;
let poller = null;
let events = null;

async function boot() {
  try {
    ctx.me = await api.get("/api/session");
  } catch {
    ctx.me = null;
  }
  if (ctx.me && !ctx.me.password_change_required) await signedIn();
  window.addEventListener("hashchange", route);
  await route();
}

async function signedIn() {
  ctx.communes = await api.get("/api/communes");
  const saved = sessionStorage.getItem("vigie.commune");
  ctx.commune = ctx.communes.some((c) => c.slug === saved) ? saved : ctx.communes[0]?.slug ?? null;
  communeChosen();
  renderHeader();
  await refresh();
  clearInterval(poller);
  poller = setInterval(refresh, POLL_MS);
  openEvents();
}

async function afterLogin(me) {
  ctx.me = me;
  if (me.password_change_required) return route(); // its own password first (R8)
  await signedIn();
  // A link opened while signed out (#/relecture/gare…) is where the agent goes once signed in.
  const wanted = sessionStorage.getItem("vigie.wanted");
  sessionStorage.removeItem("vigie.wanted");
  ctx.go(wanted || defaultRoute());
}

function defaultRoute() {
  const first = SCREENS.find(([, label, permission]) => label && ctx.can(permission));
  return first ? `#/${first[0]}` : "#/compte";
}

/** Cameras and hand-over, every two seconds: the wall, the warnings and the header follow. */
const polls = latest(); // a slow poll's answer never redraws over a newer one
const alarmPolls = latest();

async function refresh() {
  const turn = polls.turn();
  try {
    const [cameras, communes] = await Promise.all([turn.request("GET", "/api/cameras"), turn.request("GET", "/api/communes")]);
    if (!turn.current) return;
    ctx.cameras = cameras;
    ctx.communes = communes;
  } catch (err) {
    if (!turn.current) return;
    // A poll answered after a sign-out must not redraw the sign-in form under the agent's fingers.
    if (err.status === 401 && ctx.me) return signedOut(err.message);
    return;
  }
  if (!ctx.me) return;
  renderHandover();
  renderWarnings();
  renderAlarms();
  document.dispatchEvent(new CustomEvent("vigie:refresh"));
}

let alarmCount = 0;

/** The header's alarm count: unacknowledged alarms of the commune shown; it rings when it grows. */
async function renderAlarms() {
  const link = document.getElementById("alarmes");
  if (!ctx.can("live")) { link.hidden = true; return; }
  let alarms;
  try { alarms = await alarmPolls.get("/api/alarms"); } catch { return; }
  if (alarms === SUPERSEDED) return;
  const waiting = alarms.filter((a) => a.commune === ctx.commune && !a.acknowledged_by).length;
  link.hidden = false;
  link.classList.toggle("sonne", waiting > 0);
  link.dataset.nombre = String(waiting);
  document.getElementById("alarmes-nombre").textContent = String(waiting);
  if (waiting > alarmCount) ring();
  alarmCount = waiting;
}

/** Two short tones (Web Audio: no file to fetch, allowed once the agent has used the page). */
function ring() {
  try {
    const audio = new AudioContext();
    for (const [at, freq] of [[0, 880], [0.25, 660]]) {
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.value = 0.15;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + at);
      osc.stop(audio.currentTime + at + 0.18);
    }
    setTimeout(() => audio.close(), 1000);
  } catch { /* no sound device: the count still shows */ }
}

function openEvents() {
  events?.close();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  events = new WebSocket(`${scheme}://${location.host}/api/session/events`);
  events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "rights_changed") refresh();
    if (event.type === "alarm") renderAlarms();
    if (event.type === "session_ended") signedOut(fr(event.reason || "your session has ended"));
    document.dispatchEvent(new CustomEvent("vigie:event", { detail: event }));
  };
  // A gateway restart or a network cut must not leave the session deaf to hand-overs.
  const socket = events;
  events.onclose = () => setTimeout(() => { if (ctx.me && events === socket) openEvents(); }, 3000);
}

function signedOut(message) {
  ctx.me = null;
  clearInterval(poller);
  events?.close();
  events = null;
  sessionStorage.setItem("vigie.message", message || "");
  ctx.go("#/connexion");
}

/** Times on every screen, and typed in every form, are the chosen commune's legal time. */
function communeChosen() {
  setTimeZone(ctx.communes.find((c) => c.slug === ctx.commune)?.time_zone);
  document.body.dataset.fuseau = ctx.communes.find((c) => c.slug === ctx.commune)?.time_zone || "";
}

function renderHeader() {
  const header = document.getElementById("bandeau");
  header.hidden = false;
  const select = document.getElementById("commune");
  clear(select, ctx.communes.map((c) => h("option", { value: c.slug, selected: c.slug === ctx.commune }, c.name)));
  select.onchange = () => {
    ctx.commune = select.value;
    sessionStorage.setItem("vigie.commune", ctx.commune);
    communeChosen();
    renderHandover();
    route();
  };
  clear(document.getElementById("menu"), SCREENS.filter(([, label, p]) => label && ctx.can(p))
    .map(([name, label]) => h("a", { href: `#/${name}`, dataset: { ecran: name } }, label)));
  const account = document.getElementById("compte");
  account.textContent = ctx.me.username;
  account.title = `${ctx.me.full_name} (${ctx.me.username})${ctx.me.post ? " — " + ctx.me.post : ""}`;
  document.getElementById("deconnexion").onclick = async () => {
    try { await api.del("/api/session"); } finally { signedOut("Vous êtes déconnecté."); }
  };
  const switcher = document.getElementById("basculer");
  switcher.hidden = !ctx.can("handover");
  switcher.onclick = switchHandover;
}

function renderHandover() {
  const commune = ctx.communeView();
  const badge = document.getElementById("tenue");
  if (!commune) { badge.textContent = ""; return; }
  const ho = commune.handover;
  badge.className = `main ${ho.holder}`;
  badge.dataset.holder = ho.holder;
  const how = ho.by === "manual" ? `bascule manuelle : ${ho.reason}` : ho.by === "exception" ? `exception : ${ho.reason}` : "horaires";
  badge.textContent = `${HOLDERS[ho.holder]} à la main (${ho.by === "manual" ? "bascule manuelle" : ho.by === "exception" ? "exception" : "horaires"})`;
  badge.title = `${HOLDERS[ho.holder]} à la main (${how}${ho.until ? ", jusqu'au " + frDateTime(ho.until) : ""})`;
  badge.dataset.detail = badge.title;
}

async function switchHandover() {
  const commune = ctx.communeView();
  const manual = commune.handover.by === "manual";
  const other = commune.handover.holder === "municipal_police" ? "national_police" : "municipal_police";
  const body = [
    h("p", {}, `Aujourd'hui : ${HOLDERS[commune.handover.holder]} (${commune.name}).`),
    h("label", {}, "Donner la main à ", h("select", { name: "holder" },
      Object.entries(HOLDERS).map(([k, v]) => h("option", { value: k, selected: k === other }, v)))),
    h("label", {}, "Jusqu'à (facultatif ; par défaut la prochaine bascule prévue)",
      h("input", { type: "datetime-local", name: "until" })),
    h("label", {}, "Motif (obligatoire)", h("textarea", { name: "reason", required: true, rows: 2 })),
    manual && h("label", {}, h("input", { type: "checkbox", name: "end" }), " Mettre fin à la bascule manuelle (retour aux horaires)"),
  ];
  await ask("Bascule de la main", body, {
    submit: "Basculer",
    onsubmit: async (v) => {
      if (v.end) return api.post(`/api/communes/${commune.slug}/handover/end`, { reason: v.reason });
      return api.post(`/api/communes/${commune.slug}/handover`, {
        holder: v.holder, reason: v.reason, until: v.until ? fromLocalInput(v.until).toISOString() : null,
      });
    },
  });
  await refresh();
}

function renderWarnings() {
  const box = document.getElementById("mise-en-garde");
  const items = [];
  for (const c of ctx.cameras.filter((c) => c.commune === ctx.commune && c.state === "active")) {
    if (c.authorisation_expired) {
      items.push(`Autorisation préfectorale expirée le ${frDate(c.authorisation_expires)} : ${c.name} (${c.slug}) ne filme plus (ni direct, ni enregistrement).`);
    } else if (c.authorisation !== "valid") {
      items.push(`Sans autorisation préfectorale en vigueur : ${c.name} (${c.slug}) ne filme pas.`);
    }
    if (c.status === "masking_failed") { // not when it films nothing for want of an authorisation
      items.push(`Masquage en échec : ${c.name} (${c.slug}) — aucune image n'est diffusée ni enregistrée.`);
    }
  }
  // R3: administrators are warned six, three and one month before an order ends (once per order).
  if (ctx.can("configuration")) {
    const ending = new Map();
    for (const c of ctx.cameras.filter((c) => c.commune === ctx.commune && c.authorisation === "valid" && c.state !== "disabled")) {
      const days = (new Date(c.authorisation_expires) - new Date()) / 86400000;
      if (days < 183) ending.set(c.authorisation_ref, c.authorisation_expires);
    }
    for (const [ref, until] of ending) {
      items.push(`L'autorisation préfectorale ${ref} prend fin le ${frDate(until)} : faites-la renouveler et rattachez ses caméras au nouvel arrêté (Conformité).`);
    }
  }
  box.hidden = items.length === 0;
  clear(box, items.length ? [h("strong", {}, "Mise en garde"), h("ul", {}, items.map((t) => h("li", {}, t)))] : []);
}

async function route() {
  const main = document.getElementById("ecran");
  if (typeof cleanup === "function") {
    try { cleanup(); } catch (err) { console.error(err); }
  }
  cleanup = null;
  const [name, ...params] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (!ctx.me) {
    if (name && name !== "connexion") sessionStorage.setItem("vigie.wanted", location.hash);
    document.getElementById("bandeau").hidden = true;
    document.getElementById("mise-en-garde").hidden = true;
    const { mount } = await import("./login.js");
    cleanup = mount(main, ctx, { message: sessionStorage.getItem("vigie.message") || "", onSignedIn: afterLogin });
    sessionStorage.removeItem("vigie.message");
    document.body.dataset.ecran = "connexion"; // once the form is up, as for the other screens
    return;
  }
  if (ctx.me.password_change_required) {
    document.getElementById("bandeau").hidden = true;
    const { mount } = await import("./password.js");
    cleanup = mount(main, ctx, { onDone: afterLogin });
    document.body.dataset.ecran = "mot-de-passe";
    return;
  }
  const screen = SCREENS.find(([route]) => route === name);
  if (!screen) return ctx.go(defaultRoute());
  if (!ctx.can(screen[2])) {
    clear(main, h("p", { class: "erreur" }, "Cet écran demande un droit que vos rôles n'ont pas (R10)."));
    return;
  }
  for (const link of document.querySelectorAll("#menu a")) {
    if (link.dataset.ecran === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const { mount } = await import(screen[3]);
  clear(main);
  cleanup = await mount(main, ctx, params);
  document.body.dataset.ecran = name; // which screen is up (the browser tests wait on it)
}

document.addEventListener("vigie:alarms", renderAlarms);
boot();
