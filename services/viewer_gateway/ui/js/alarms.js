// Alarmes: what needs an agent now (a camera lost, masking failed, recordings late, an authorisation
// about to expire), acknowledged by name; then the history. New alarms arrive over the session's
// socket (app.js rings and counts them); this screen also asks every few seconds.
import { api, query, latest, superseded } from "./api.js";
import { h, clear, ask, frDate, frDateTime } from "./dom.js";
import { ALARMS, fr } from "./fr.js";

const POLL_MS = 3000;

export function mount(main, ctx) {
  const open = h("tbody");
  const history = h("tbody");
  const status = h("p", { role: "status", class: "info" });
  const headers = ["Depuis", "Caméra", "Alarme", "Détail", "Acquittement", ""].map((t) => h("th", {}, t));
  clear(main, h("h1", {}, "Alarmes"), status,
    h("h2", {}, "En cours"), h("table", { "aria-label": "Alarmes en cours" }, h("thead", {}, h("tr", {}, headers)), open),
    h("h2", {}, "Historique"), h("table", { "aria-label": "Historique des alarmes" },
      h("thead", {}, h("tr", {}, ["Levée", "Caméra", "Alarme", "Acquittée par", "Close"].map((t) => h("th", {}, t)))), history));

  const loads = latest(); // pushed events and the poll both reload: the latest answer wins

  async function load() {
    const turn = loads.turn();
    try {
      const [current, all] = await Promise.all([turn.request("GET", "/api/alarms"), turn.request("GET", `/api/alarms${query({ state: "all", limit: 100 })}`)]);
      if (!turn.current) return;
      const here = (a) => a.commune === ctx.commune;
      clear(open, current.filter(here).map((a) => h("tr", { dataset: { alarme: a.id, type: a.kind }, class: a.acknowledged_by ? "" : "non-acquittee" },
        h("td", {}, frDateTime(a.raised_at)), h("td", {}, cameraLink(a)), h("td", {}, ALARMS[a.kind] || a.kind),
        h("td", { class: "info" }, alarmDetail(a)),
        h("td", {}, a.acknowledged_by ? acknowledgedBy(a) : "non acquittée"),
        h("td", {}, a.acknowledged_by ? "" : h("button", { type: "button", onclick: () => acknowledge(a) }, "Acquitter")))));
      clear(history, all.filter((a) => here(a) && a.cleared_at).map((a) => h("tr", {},
        h("td", {}, frDateTime(a.raised_at)), h("td", {}, cameraLink(a)), h("td", {}, ALARMS[a.kind] || a.kind),
        h("td", {}, a.acknowledged_by ? acknowledgedBy(a) : "—"), h("td", {}, frDateTime(a.cleared_at)))));
      status.textContent = current.filter(here).length ? "" : "Aucune alarme en cours.";
    } catch (err) {
      if (!superseded(err, turn)) status.textContent = fr(err.message);
    }
  }

  /** The camera: its live picture, and its recording from a minute before the alarm (issue 38),
   * for an agent who may watch them. */
  function cameraLink(a) {
    const live = ctx.can("live") ? h("a", { href: `#/camera/${a.commune}/${a.camera}` }, a.camera_name) : a.camera_name;
    if (!ctx.can("playback")) return live;
    const before = new Date(new Date(a.raised_at).getTime() - 60e3).toISOString();
    return [live, " ", h("a", { href: `#/relecture/${a.camera}/${before}`, class: "relecture",
      title: `Relecture de ${a.camera_name} à l'heure de l'alarme` }, "relecture")];
  }

  function acknowledgedBy(a) {
    const who = `${a.acknowledged_by}, ${frDateTime(a.acknowledged_at)}`;
    return a.ack_comment ? [who, h("br"), h("q", {}, a.ack_comment)] : who;
  }

  async function acknowledge(alarm) {
    const said = await ask(`Acquitter : ${ALARMS[alarm.kind] || alarm.kind} (${alarm.camera_name})`,
      h("label", {}, "Commentaire (facultatif, journalisé)",
        h("input", { name: "comment", maxlength: 200, placeholder: "patrouille envoyée, travaux connus…" })),
      { submit: "Acquitter", onsubmit: (v) => api.post(`/api/alarms/${alarm.id}/ack`, { comment: v.comment || null }) });
    if (said === null) return;
    status.textContent = `Alarme « ${ALARMS[alarm.kind]} » (${alarm.camera_name}) acquittée par ${ctx.me.username}.`;
    await load();
    document.dispatchEvent(new CustomEvent("vigie:alarms"));
  }

  load();
  const timer = setInterval(load, POLL_MS);
  const onEvent = (e) => { if (e.detail.type === "alarm") load(); };
  document.addEventListener("vigie:event", onEvent);
  return () => { clearInterval(timer); loads.cancel(); document.removeEventListener("vigie:event", onEvent); };
}

// Why masking publishes nothing of a camera (the `masking.failed` event's reasons).
const MASKING = {
  commissioning: "caméra en mise en service : masques à approuver",
  unknown_camera: "caméra inconnue du masquage",
  masks_unavailable: "aucun masque approuvé : rien n'est diffusé ni enregistré",
  decode: "flux de la caméra illisible",
  mask: "masques inapplicables à l'image",
  encode: "encodage en échec",
  source_changed: "l'image de la caméra a changé : masques à redessiner et approuver",
  unauthorised: "sans autorisation préfectorale valide",
  other: "erreur du masquage (voir le journal du service)",
};
const SINCE = /^no image from the camera since (.+)$/;
const LATE = /^last recording ended at (.+)$/;
const ENDING = /^authorisation (.+) expires on (\d{4}-\d{2}-\d{2})$/;
const NORMS = /^(\d+)x(\d+) at ([\d.]+) fps, below (\d+)x(\d+) at ([\d.]+) fps$/;

/** The server's detail in French, its times in the browser's (the commune's) local time rather
 * than UTC (issue 38); a detail it does not know goes through the common translations. */
export function alarmDetail(a) {
  // PostgreSQL's text of a timestamptz: "2026-12-07 14:44:26.123456+00".
  const when = (text) => {
    const d = new Date(text.replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00"));
    return Number.isNaN(d.getTime()) ? text : frDateTime(d);
  };
  let m;
  if ((m = a.detail.match(SINCE))) return m[1] === "?" ? "aucune image reçue" : `aucune image depuis le ${when(m[1])}`;
  if ((m = a.detail.match(LATE))) return `dernier enregistrement terminé le ${when(m[1])}`;
  if (a.kind === "masking_failed" && (m = a.detail.match(/^([a-z_]+): /)) && MASKING[m[1]]) return MASKING[m[1]];
  if ((m = a.detail.match(NORMS))) return `${m[1]}×${m[2]} à ${m[3].replace(".", ",")} images/s, sous le minimum de ${m[4]}×${m[5]} à ${m[6]} images/s`;
  if ((m = a.detail.match(ENDING))) return `l'autorisation ${m[1]} prend fin le ${frDate(m[2])}`;
  return fr(a.detail);
}
