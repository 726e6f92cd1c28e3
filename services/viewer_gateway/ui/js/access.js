// Demandes d'accès (R20–R24): a filmed person's requests with their deadlines (overdue first), the
// intake (the identity check recorded, never a copy of the document), extension, answer — on-site
// viewing booked then done, refusal or restriction with grounds —, closing (the hold released),
// the redacted copy (redaction.js: editor, preview, approval), and the proof-of-deletion extract
// for a place and a filmed period.
import { api, latest, SUPERSEDED, query } from "./api.js";
import { h, clear, ask, fields, frDateTime, fromLocalInput, localInput } from "./dom.js";
import { mountEditor } from "./redaction.js";

const DOCUMENTS = { carte_identite: "carte d'identité", passeport: "passeport", titre_sejour: "titre de séjour", permis_conduire: "permis de conduire", autre: "autre document" };
const URGENCY = { overdue: "en retard", due_soon: "échéance sous 7 jours", on_time: "dans les délais" };
const STATES = { open: "ouverte", answered: "répondue", closed: "close" };
const ANSWERS = { copy: "copie", viewing: "visionnage sur place", refusal: "refus", restriction: "limitation" };

export function mount(main, ctx) {
  const commune = ctx.commune;
  const cameras = ctx.cameras.filter((c) => c.commune === commune && c.state !== "commissioning");
  const now = new Date();
  const error = h("p", { class: "erreur", role: "alert" });
  const done = h("p", { class: "ok", role: "status" });
  const cameraBoxes = () => h("fieldset", {}, h("legend", {}, "Caméras"),
    ...cameras.map((c) => h("label", {}, h("input", { type: "checkbox", name: "camera", value: c.slug }), ` ${c.name}`)));
  const form = h("form", { class: "pile", "aria-label": "Nouvelle demande d'accès" },
    h("div", { class: "ligne" },
      h("label", {}, "Demandeur", h("input", { name: "requester", required: true, maxlength: 200 })),
      h("label", {}, "Adresse de réponse", h("input", { name: "contact", required: true, maxlength: 200 }))),
    h("div", { class: "ligne" },
      h("label", {}, "Pièce d'identité présentée", h("select", { name: "identity_document" },
        Object.entries(DOCUMENTS).map(([k, v]) => h("option", { value: k }, v)))),
      h("label", {}, "Vérifiée par", h("input", { name: "identity_checked_by", required: true, maxlength: 200 }))),
    h("p", { class: "info" }, "Aucune copie de la pièce d'identité n'est conservée : seuls sa nature et le vérificateur."),
    cameraBoxes(),
    h("div", { class: "ligne" },
      h("label", {}, "Filmé du", h("input", { type: "datetime-local", name: "start", step: 1, required: true, value: localInput(new Date(now - 3600e3)) })),
      h("label", {}, "Au", h("input", { type: "datetime-local", name: "end", step: 1, required: true, value: localInput(now) }))),
    h("label", {}, "Description (tenue, lieu, heure)", h("textarea", { name: "description", rows: 2 })),
    h("div", { class: "outils" }, h("button", { type: "submit", class: "principal" }, "Enregistrer et geler la période")),
    error, done);
  const body = h("tbody");
  const proof = h("form", { class: "ligne", "aria-label": "Attestation d'effacement" },
    h("label", {}, "Caméra", h("select", { name: "camera" }, cameras.map((c) => h("option", { value: c.slug }, c.name)))),
    h("label", {}, "Filmé du", h("input", { type: "datetime-local", name: "start", step: 1, required: true, value: localInput(new Date(now - 86400e3)) })),
    h("label", {}, "Au", h("input", { type: "datetime-local", name: "end", step: 1, required: true, value: localInput(now) })),
    h("button", { type: "submit" }, "Attestation (à imprimer)"));
  const editor = h("section", { class: "editeur", "aria-label": "Copie floutée" });
  let closeEditor = null;
  clear(main, h("h1", {}, "Demandes d'accès"), form,
    h("h2", {}, "Demandes"),
    h("table", { class: "demandes" }, h("thead", {}, h("tr", {},
      ["N°", "Reçue le", "Demandeur", "Caméras", "Période filmée", "Échéance", "État", ""].map((t) => h("th", {}, t)))), body),
    editor,
    h("h2", {}, "Attestation d'effacement (R24)"), proof);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = ""; done.textContent = "";
    const v = fields(form);
    const chosen = [...form.querySelectorAll("input[name=camera]:checked")].map((i) => i.value);
    if (!chosen.length) { error.textContent = "Cochez au moins une caméra."; return; }
    try {
      const made = await api.post("/api/access-requests", {
        commune, requester: v.requester, contact: v.contact, identity_document: v.identity_document,
        identity_checked_by: v.identity_checked_by, cameras: chosen, description: v.description,
        period_start: fromLocalInput(v.start).toISOString(), period_end: fromLocalInput(v.end).toISOString(),
      });
      const held = made.hold_state === "active"
        ? "la période est gelée (protégée de l'effacement ; ses copies se font en arrière-plan)"
        : made.hold_state === "pending"
          ? "la période dépasse 48 heures-caméra : un second superviseur doit approuver le gel (Réquisitions › Gels en cours) avant que rien ne soit gardé"
          : "rien de la période n'existe plus (durée de conservation passée)";
      done.textContent = `Demande n° ${made.id} enregistrée : ${held}, réponse due le ${frDateTime(made.due_at)}.`;
      await refresh();
    } catch (err) {
      error.textContent = err.message;
    }
  });

  proof.addEventListener("submit", (event) => {
    event.preventDefault();
    const v = fields(proof);
    window.open(`/api/access-requests/deletion-proof${query({ commune, cameras: v.camera, start: fromLocalInput(v.start).toISOString(), end: fromLocalInput(v.end).toISOString() })}`, "_blank");
  });

  const act = (r, label, title, content, submit) => h("button", { type: "button", onclick: async () => {
    const answered = await ask(title, content, { submit: label, onsubmit: submit });
    if (answered) await refresh();
  } }, label);

  function actions(r) {
    if (r.state === "closed") return `close le ${frDateTime(r.closed_at)}`;
    const list = [];
    if (r.hold_id) {
      list.push(h("button", { type: "button", onclick: () => {
        closeEditor?.();
        closeEditor = mountEditor(editor, r, { onanswer: refresh, me: ctx.me.username });
        editor.scrollIntoView({ block: "start" });
      } }, "Copie floutée"));
    }
    list.push(act(r, "Prolonger", `Prolonger la demande n° ${r.id}`, [
      h("label", {}, "De", h("select", { name: "months" }, h("option", { value: "1" }, "1 mois"), h("option", { value: "2" }, "2 mois"))),
      h("label", {}, "Motif (communiqué au demandeur)", h("textarea", { name: "reason", required: true }))],
      (v) => api.post(`/api/access-requests/${r.id}/extension`, { months: Number(v.months), reason: v.reason })));
    list.push(act(r, "Visionnage", `Visionnage sur place — demande n° ${r.id}`, [
      h("label", {}, "Rendez-vous", h("input", { type: "datetime-local", name: "at", step: 60 })),
      h("label", {}, "Compte rendu (une fois fait : qui a vu quoi)", h("textarea", { name: "report" }))],
      (v) => api.post(`/api/access-requests/${r.id}/answer`, { kind: "viewing", viewing_at: v.at ? fromLocalInput(v.at).toISOString() : null, viewing_report: v.report || "" })));
    list.push(act(r, "Refuser", `Refus ou limitation — demande n° ${r.id}`, [
      h("label", {}, "Réponse", h("select", { name: "kind" }, h("option", { value: "refusal" }, "refus"), h("option", { value: "restriction" }, "limitation"))),
      h("label", {}, "Motifs (procédure en cours, sécurité publique, droits des tiers)", h("textarea", { name: "grounds", required: true })),
      h("p", { class: "info" }, "La réponse mentionne la possibilité de saisir la CNIL ou la commission départementale.")],
      (v) => api.post(`/api/access-requests/${r.id}/answer`, { kind: v.kind, grounds: v.grounds })));
    if (r.state === "answered") {
      list.push(act(r, "Clore", `Clore la demande n° ${r.id}`, h("p", {}, "Le gel de la période est levé."),
        () => api.post(`/api/access-requests/${r.id}/close`)));
    }
    return list;
  }

  const lists = latest();
  async function refresh() {
    try {
      const all = await lists.get("/api/access-requests");
      if (all === SUPERSEDED) return;
      clear(body, all.filter((r) => r.commune === commune).map((r) => h("tr", { dataset: { id: r.id, urgency: r.urgency, state: r.state } },
        h("td", {}, String(r.id)), h("td", {}, frDateTime(r.received_at)),
        h("td", {}, r.requester, h("br"), h("span", { class: "info" }, `${DOCUMENTS[r.identity_document]} vérifiée par ${r.identity_checked_by}`)),
        h("td", {}, r.cameras.join(", ")), h("td", {}, `${frDateTime(r.period_start)} → ${frDateTime(r.period_end)}`),
        h("td", { class: r.urgency === "on_time" ? "" : "erreur" }, `${frDateTime(r.due_at)} (${URGENCY[r.urgency]})`),
        h("td", {}, STATES[r.state], r.answer ? ` — ${ANSWERS[r.answer]}` : "", r.answer_grounds ? h("div", { class: "info" }, r.answer_grounds) : ""),
        h("td", { class: "outils" }, actions(r)))));
    } catch (err) {
      error.textContent = err.message;
    }
  }
  refresh();
  return () => { lists.cancel(); closeEditor?.(); };
}
