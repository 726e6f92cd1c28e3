// Réquisitions: answer an officer's requisition (R17, R18) — cameras and period, the requisition's
// references, then the package is held and built in the background (progress shown), downloaded,
// and its delivery recorded; the commune's holds with their review dates and the state of their
// copies, released from here. An export or a hold over the camera-hours limit waits for a second
// supervisor's approval, given from here by someone other than who asked (issue 34). The screen
// says what happened, never more: « gelé » only once the copies are made.
import { api, latest, SUPERSEDED } from "./api.js";
import { h, clear, fields, frDate, frDateTime, fromLocalInput, localInput, ask } from "./dom.js";

const STATES = { pending: "à approuver par un second superviseur", queued: "en attente",
  building: "en préparation", ready: "prête", failed: "échec" };
const POLL_MS = 2000;

/** params: [camera, start ISO, end ISO] when opened from the playback timeline (prefilled). */
export function mount(main, ctx, [presetCamera, presetStart, presetEnd] = []) {
  const commune = ctx.commune;
  const cameras = ctx.cameras.filter((c) => c.commune === commune && c.state !== "commissioning");
  const now = new Date();
  const from = Date.parse(presetStart), to = Date.parse(presetEnd);
  const preset = Number.isFinite(from) && Number.isFinite(to) && from < to;
  const error = h("p", { class: "erreur", role: "alert" });
  const done = h("p", { class: "ok", role: "status" });
  const form = h("form", { class: "pile requisition", "aria-label": "Nouvelle réquisition" },
    h("fieldset", {}, h("legend", {}, "Caméras"),
      ...cameras.map((c) => h("label", {},
        h("input", { type: "checkbox", name: "camera", value: c.slug, checked: c.slug === presetCamera }), ` ${c.name} (${c.slug})`))),
    h("div", { class: "ligne" },
      h("label", {}, "Du", h("input", { type: "datetime-local", name: "start", step: 1, required: true, value: localInput(new Date(preset ? from : now - 3600e3)) })),
      h("label", {}, "Au", h("input", { type: "datetime-local", name: "end", step: 1, required: true, value: localInput(preset ? new Date(to) : now) }))),
    h("div", { class: "ligne" },
      h("label", {}, "Réquisition (n° de PV ou de procédure)", h("input", { name: "reference", required: true, maxlength: 200 })),
      h("label", {}, "OPJ et service", h("input", { name: "officer", required: true, maxlength: 200 }))),
    h("div", { class: "ligne" },
      h("label", {}, "Destinataire", h("input", { name: "recipient", required: true, maxlength: 200 })),
      h("label", {}, "Support ou n° de transfert", h("input", { name: "medium", required: true, maxlength: 200 }))),
    h("label", {}, "Motif", h("textarea", { name: "reason", required: true, rows: 2 })),
    h("div", { class: "outils" }, h("button", { type: "submit", class: "principal" }, "Geler et préparer l'extraction")),
    error, done);
  const body = h("tbody");
  const holds = h("tbody");
  clear(main, h("h1", {}, "Réquisitions"), form,
    h("h2", {}, "Extractions"),
    h("table", { class: "extractions" }, h("thead", {}, h("tr", {},
      ["N°", "Demandée le", "Réquisition", "Caméras", "Période", "État", "Remise"].map((t) => h("th", {}, t)))), body),
    ctx.can("holds") ? h("h2", {}, "Gels en cours") : "",
    ctx.can("holds") ? h("table", { class: "gels" }, h("thead", {}, h("tr", {},
      ["N°", "Référence", "Caméras", "Période", "À réexaminer le", "Copies sous gel", ""].map((t) => h("th", {}, t)))), holds) : "");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = ""; done.textContent = "";
    const v = fields(form);
    const chosen = [...form.querySelectorAll("input[name=camera]:checked")].map((i) => i.value);
    if (!chosen.length) { error.textContent = "Cochez au moins une caméra."; return; }
    try {
      const made = await api.post("/api/exports", {
        commune, cameras: chosen, period_start: fromLocalInput(v.start).toISOString(),
        period_end: fromLocalInput(v.end).toISOString(), reference: v.reference, officer: v.officer,
        recipient: v.recipient, medium: v.medium, reason: v.reason,
      });
      done.textContent = made.state === "pending"
        ? `Extraction n° ${made.id} enregistrée : elle couvre plus de 48 heures-caméra, un second superviseur doit l'approuver avant que rien ne soit gelé ni extrait.`
        : `Extraction n° ${made.id} demandée : les images seront gelées et le paquet préparé en arrière-plan (suivez l'état ci-dessous).`;
      await refresh();
    } catch (err) {
      error.textContent = err.message;
    }
  });

  function approve(url, label) {
    return h("button", { type: "button", onclick: async () => {
      error.textContent = "";
      try { await api.post(url, {}); } catch (err) { error.textContent = err.message; }
      await refresh();
    } }, label);
  }

  function state(e) {
    if (e.state === "pending") {
      return e.created_by === ctx.me.username
        ? h("span", {}, `${STATES.pending} (demandée par vous)`)
        : h("span", {}, `${STATES.pending} (demandée par ${e.created_by}) `, approve(`/api/exports/${e.id}/approve`, "Approuver l'extraction"));
    }
    if (e.state === "building") return h("span", {}, h("progress", { max: 100, value: e.percent }), ` ${e.percent} %`);
    if (e.state === "failed") return h("span", { class: "erreur" }, `échec : ${e.error}`);
    if (e.state === "ready") {
      return h("span", {}, "prête ",
        h("a", { href: `/api/exports/${e.id}/download`, download: `${e.package}.zip` }, "Télécharger"),
        e.gaps ? h("span", { class: "info" }, ` (${e.gaps} période(s) sans images, listées dans le paquet)`) : "");
    }
    return STATES[e.state] || e.state;
  }

  function delivery(e) {
    if (e.delivered_at) return `remise à ${e.delivered_to} (${e.delivered_medium}) le ${frDateTime(e.delivered_at)} par ${e.delivered_by}`;
    if (e.state !== "ready") return "";
    return h("button", { type: "button", onclick: async () => {
      await ask("Enregistrer la remise", h("div", { class: "pile" },
        h("label", {}, "Remise à", h("input", { name: "delivered_to", required: true, value: e.recipient })),
        h("label", {}, "Support", h("input", { name: "medium", required: true, value: e.medium }))),
      { submit: "Enregistrer", onsubmit: (values) => api.post(`/api/exports/${e.id}/delivery`, values) });
      await refresh();
    } }, "Enregistrer la remise");
  }

  let copying = false; // a hold's copies in progress: the screen follows them
  function copies(x) {
    if (x.state === "pending") return `aucune : ${x.camera_hours.toFixed(0)} heures-caméra, en attente d'un second superviseur (demandé par ${x.requested_by})`;
    if (x.copy_state === "queued" || x.copy_state === "building") {
      copying = true;
      return h("span", {}, h("progress", { max: 100, value: x.copy_percent || 0 }), ` copie en cours, ${x.copies_kept} segment(s) sous gel`);
    }
    if (x.copy_state === "failed") return h("span", { class: "erreur" }, `${x.copies_kept} ; copie en échec : ${x.copy_error}`);
    const missing = (x.coverage || []).reduce((n, c) => n + c.missing.length, 0);
    return `${x.copies_kept}${missing ? ` (${missing} période(s) sans images)` : ""}`;
  }

  let timer = null;
  let stopped = false;
  const exportsAsked = latest(); // a poll and a refresh after an action: the latest answer wins
  const holdsAsked = latest();
  async function refresh() {
    clearTimeout(timer);
    try {
      copying = false;
      const answer = await exportsAsked.get("/api/exports");
      if (answer === SUPERSEDED) return;
      const exports = answer.filter((e) => e.commune === commune);
      clear(body, exports.map((e) => h("tr", { dataset: { id: e.id, state: e.state } },
        h("td", {}, String(e.id)), h("td", {}, frDateTime(e.created_at)), h("td", {}, `${e.reference} — ${e.officer}`),
        h("td", {}, e.cameras.join(", ")), h("td", {}, `${frDateTime(e.period_start)} → ${frDateTime(e.period_end)}`),
        h("td", { class: "etat" }, state(e)), h("td", { class: "remise" }, delivery(e)))));
      if (ctx.can("holds")) {
        const held = await holdsAsked.get("/api/holds");
        if (held === SUPERSEDED) return;
        const list = held.filter((x) => x.commune === commune && x.state !== "released");
        clear(holds, list.map((x) => h("tr", { dataset: { id: x.id, state: x.state, copy: x.copy_state || "" } },
          h("td", {}, String(x.id)), h("td", {}, x.reference), h("td", {}, x.cameras.join(", ")),
          h("td", {}, `${frDateTime(x.period_start)} → ${frDateTime(x.period_end)}`),
          h("td", { class: "reexamen", dataset: { due: x.review_due || "" } }, frDate(x.review_on),
            x.review_due ? h("strong", {}, x.review_due === "overdue" ? " — date dépassée" : " — à réexaminer sous 7 jours") : ""),
          h("td", { class: "copies" }, copies(x)),
          h("td", {}, x.state === "pending" && x.requested_by !== ctx.me.username
            ? approve(`/api/holds/${x.id}/approve`, "Approuver le gel") : "",
          h("button", { type: "button", onclick: async () => {
            await ask(`Lever le gel n° ${x.id}`, h("label", {}, "Motif", h("textarea", { name: "reason", required: true })),
              { submit: "Lever le gel", onsubmit: (values) => api.post(`/api/holds/${x.id}/release`, values) });
            await refresh();
          } }, "Lever le gel")))));
      }
      if (!stopped && (exports.some((e) => e.state === "queued" || e.state === "building") || copying)) {
        timer = setTimeout(refresh, POLL_MS);
      }
    } catch (err) {
      error.textContent = err.message;
    }
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); exportsAsked.cancel(); holdsAsked.cancel(); };
}
