// Conformité: what the law asks a commune to hold and to show (issue 24) — its prefectoral
// authorisations and the cameras they cover (R3, R5, R27, R28), its signs (R26), the public register
// as published (R25), the record of processing (R40), breaches and their 72 hours (R39), and, for a
// deployment administrator, new communes. Each tab shows only what the account may see.
import { api, latest, SUPERSEDED } from "./api.js";
import { h, clear, fields, frDate, frDateTime, fromLocalInput, tabbed } from "./dom.js";

const RECIPIENTS = { municipal_police: "Police municipale", national_police: "Police nationale", gendarmerie: "Gendarmerie", other: "Autres (à préciser)" };
const STATES = { valid: "en vigueur", not_yet: "pas encore en vigueur", expired: "expirée", missing: "aucune" };
const WARNINGS = { "6_months": "expire dans moins de six mois", "3_months": "expire dans moins de trois mois", "1_month": "expire dans moins d'un mois", expired: "expirée" };
const RISKS = { unlikely: "Risque peu probable (pas de notification, motif requis)", risk: "Risque", high_risk: "Risque élevé (informer aussi les personnes)" };
const URGENCY = { on_time: "dans les délais", due_soon: "à notifier sous 24 h", overdue: "en retard", notified: "notifiée", not_notified: "non notifiée (risque peu probable)" };

const lists = { authorisations: latest(), signs: latest(), incidents: latest() };

function result() { return h("p", { role: "status" }); }
function say(el, text, ok = true) { el.className = ok ? "ok" : "erreur"; el.textContent = text; }
function boxes(name, entries, checked = () => false) {
  return entries.map(([value, label]) => h("label", { class: "coche" },
    h("input", { type: "checkbox", name: `${name}:${value}`, checked: checked(value) }), ` ${label}`));
}
function picked(form, name) {
  return [...form.querySelectorAll(`input[type=checkbox][name^="${name}:"]`)].filter((b) => b.checked)
    .map((b) => b.name.slice(name.length + 1));
}

export function mount(main, ctx) {
  const tabs = [
    ["autorisations", "Autorisations préfectorales", "configuration", authorisations],
    ["panneaux", "Panneaux d'information", "configuration", signs],
    ["registre-public", "Registre public", ["configuration", "register_audit"], publicRegister],
    ["traitement", "Registre des traitements", "register_audit", processingRecord],
    ["violations", "Violations de données", "register_audit", incidents],
    ["communes", "Nouvelle commune", "commune_admin", newCommune],
  ].filter(([, , p]) => ctx.can(p));
  clear(main, h("h1", {}, `Conformité — ${ctx.communeView()?.name || ctx.commune}`),
    ...tabbed(tabs.map(([id, label, , render]) => [id, label, (panel) => render(panel, ctx)])));
}

async function authorisations(panel, ctx, msg = result()) {
  const commune = ctx.commune;
  const data = await lists.authorisations.get(`/api/communes/${commune}/authorisations`);
  if (data === SUPERSEDED) return;
  const cameras = ctx.cameras.filter((c) => c.commune === commune);
  const view = ctx.communeView();
  const stopped = data.unauthorised.length ? h("div", { class: "erreur", role: "alert" },
    h("strong", {}, "Caméras sans autorisation valide — elles ne filment pas (R3) : "),
    data.unauthorised.map((c) => `${c.slug} (${STATES[c.authorisation_state]}${c.reference ? ` : ${c.reference}` : ""})`).join(", ")) : "";
  const NORMS = /^(\d+)x(\d+) at ([\d.]+) fps, below (\d+)x(\d+) at ([\d.]+) fps$/;
  const measured = (text) => {
    const m = text.match(NORMS);
    return m ? `${m[1]}×${m[2]} à ${m[3].replace(".", ",")} images/s, sous le minimum de ${m[4]}×${m[5]} à ${m[6]} images/s` : text;
  };
  const norms = (data.below_norms || []).length ? h("div", { class: "erreur normes", role: "alert" },
    h("strong", {}, "Caméras sous les normes techniques de l'arrêté du 3 août 2007 (R35) : "),
    data.below_norms.map((c) => `${c.name} (${measured(c.measured)})`).join(" ; ")) : "";
  const rows = data.authorisations.map((a) => {
    const others = cameras.filter((c) => !a.cameras.includes(c.slug));
    const attach = h("form", { class: "ligne", "aria-label": `Rattacher à ${a.reference}`, hidden: others.length === 0 },
      h("select", { name: "camera", "aria-label": "Caméra" }, others.map((c) => h("option", { value: c.slug }, `${c.name} (${c.slug})`))),
      h("button", { type: "submit" }, "Rattacher"));
    attach.addEventListener("submit", async (e) => {
      e.preventDefault();
      const v = fields(attach);
      if (!v.camera) return;
      try {
        await api.post(`/api/communes/${commune}/authorisations/${a.id}/cameras`, { cameras: [v.camera] });
        say(msg, `${v.camera} rattachée à ${a.reference}.`);
        authorisations(panel, ctx, msg);
      } catch (err) { say(msg, err.message, false); }
    });
    return h("tr", { dataset: { autorisation: a.reference }, class: a.warning || a.state !== "valid" ? "alerte" : "" },
      h("td", {}, h("strong", {}, a.reference), h("br"), `du ${frDate(a.granted_on)} au ${frDate(a.valid_until)}`),
      h("td", {}, STATES[a.state], a.warning && a.state === "valid" ? h("div", { class: "erreur" }, WARNINGS[a.warning]) : ""),
      h("td", {}, a.purposes.join(" ; ")),
      h("td", {}, a.recipients.map((r) => RECIPIENTS[r]).join(", "), a.other_recipients ? ` (${a.other_recipients})` : ""),
      h("td", {}, `${a.retention_min_days} à ${a.retention_max_days} j`),
      h("td", {}, a.cameras.join(", ") || "—", attach));
  });
  const today = new Date().toISOString().slice(0, 10);
  const add = h("form", { class: "pile", "aria-label": "Nouvelle autorisation" },
    h("label", {}, "Référence de l'arrêté préfectoral", h("input", { name: "reference", required: true, placeholder: "AP n° 2026-091-0042" })),
    h("label", {}, "Accordée le", h("input", { name: "granted_on", type: "date", required: true, max: today })),
    h("label", {}, "Valable jusqu'au (cinq ans au plus)", h("input", { name: "valid_until", type: "date", required: true })),
    h("fieldset", {}, h("legend", {}, "Finalités (CSI L251-2)"), boxes("purpose", data.purposes_allowed.map((p) => [p, p]))),
    h("fieldset", {}, h("legend", {}, "Destinataires"), boxes("recipient", Object.entries(RECIPIENTS), (r) => r === "municipal_police")),
    h("label", {}, "Autres destinataires", h("input", { name: "other_recipients" })),
    h("label", {}, "Conservation minimale (jours)", h("input", { name: "retention_min_days", type: "number", min: 1, max: 30, value: 1 })),
    h("label", {}, "Conservation maximale (jours, 30 au plus)", h("input", { name: "retention_max_days", type: "number", min: 1, max: 30, required: true, value: view?.retention_days || 15 })),
    h("fieldset", {}, h("legend", {}, "Caméras couvertes"), boxes("camera", cameras.map((c) => [c.slug, `${c.name} (${c.slug})`]))),
    h("button", { type: "submit", class: "principal" }, "Enregistrer l'autorisation"));
  add.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = fields(add);
    try {
      await api.post(`/api/communes/${commune}/authorisations`, {
        reference: v.reference, granted_on: v.granted_on, valid_until: v.valid_until,
        purposes: picked(add, "purpose"), recipients: picked(add, "recipient"), other_recipients: v.other_recipients,
        retention_min_days: Number(v.retention_min_days), retention_max_days: Number(v.retention_max_days),
        cameras: picked(add, "camera"),
      });
      say(msg, `Autorisation ${v.reference} enregistrée.`);
      authorisations(panel, ctx, msg);
    } catch (err) { say(msg, err.message, false); }
  });
  const withPolice = data.authorisations.filter((a) => a.recipients.includes("national_police") && a.state === "valid");
  const profile = h("form", { class: "ligne", "aria-label": "Profil de bascule" },
    h("label", {}, "Autorisation nommant la police nationale", h("select", { name: "authorisation_id", required: true },
      h("option", { value: "" }, "— choisir —"),
      withPolice.map((a) => h("option", { value: a.id, selected: a.reference === view?.handover_authorisation }, a.reference)))),
    h("label", {}, "Convention de coordination", h("input", { name: "coordination_convention", required: true, value: view?.coordination_convention || "" })),
    h("button", { type: "submit" }, "Enregistrer le profil"));
  profile.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = fields(profile);
    try {
      await api.put(`/api/communes/${commune}/handover/profile`, { authorisation_id: Number(v.authorisation_id), coordination_convention: v.coordination_convention });
      say(msg, "Profil de bascule enregistré.");
    } catch (err) { say(msg, err.message, false); }
  });
  clear(panel, stopped, norms, msg,
    h("table", {}, h("thead", {}, h("tr", {}, ["Arrêté", "État", "Finalités", "Destinataires", "Conservation", "Caméras"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6 }, "Aucune autorisation enregistrée : aucune caméra ne filme.")))),
    h("h2", {}, "Bascule vers la police nationale (R27, R28)"),
    h("p", { class: "info" }, view?.handover_authorisation
      ? `Profil actuel : ${view.handover_authorisation}, ${view.coordination_convention}.`
      : "Aucun profil : la main n'est jamais donnée à la police nationale."), profile,
    h("h2", {}, "Enregistrer un arrêté (un renouvellement est un nouvel arrêté)"), add);
}

async function signs(panel, ctx, msg = result()) {
  const commune = ctx.commune;
  const data = await lists.signs.get(`/api/communes/${commune}/signs`);
  if (data === SUPERSEDED) return;
  const cameras = ctx.cameras.filter((c) => c.commune === commune);
  const MENTIONS = { pictogram: "pictogramme caméra", controller: "responsable", purposes: "finalités", rights: "droits", cnil_complaint: "réclamation CNIL", verbalisation: "vidéo-verbalisation" };
  const add = h("form", { class: "pile", "aria-label": "Nouveau panneau" },
    h("label", {}, "Emplacement", h("input", { name: "place", required: true })),
    h("label", {}, "Installé le", h("input", { name: "installed_on", type: "date", required: true, max: new Date().toISOString().slice(0, 10) })),
    h("fieldset", {}, h("legend", {}, "Mentions portées"), boxes("mention", Object.entries(MENTIONS), (m) => m !== "verbalisation")),
    h("fieldset", {}, h("legend", {}, "Caméras couvertes"), boxes("camera", cameras.map((c) => [c.slug, `${c.name} (${c.slug})`]))),
    h("button", { type: "submit", class: "principal" }, "Enregistrer le panneau"));
  add.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = fields(add);
    const mentions = picked(add, "mention");
    try {
      await api.post(`/api/communes/${commune}/signs`, {
        place: v.place, installed_on: v.installed_on, cameras: picked(add, "camera"),
        ...Object.fromEntries(Object.keys(MENTIONS).map((m) => [m, mentions.includes(m)])),
      });
      say(msg, "Panneau enregistré.");
      signs(panel, ctx, msg);
    } catch (err) { say(msg, err.message, false); }
  });
  clear(panel,
    data.flagged.length ? h("div", { class: "erreur", role: "alert" }, h("strong", {}, "Caméras sans panneau complet (R26) : "),
      data.flagged.map((f) => `${f.name} (${f.camera}) — ${f.why.startsWith("used") ? "vidéo-verbalisation sans panneau qui la mentionne" : "aucun panneau complet"}`).join(" ; ")) : h("p", { class: "ok" }, "Chaque caméra est signalée par un panneau complet."),
    msg,
    h("table", {}, h("thead", {}, h("tr", {}, ["Emplacement", "Installé le", "Mentions manquantes", "Caméras", "Retiré"].map((t) => h("th", {}, t)))),
      h("tbody", {}, data.signs.length ? data.signs.map((s) => h("tr", { class: s.removed_on ? "retire" : "" }, h("td", {}, s.place), h("td", {}, frDate(s.installed_on)),
        h("td", {}, s.missing_mentions.map((m) => MENTIONS[m]).join(", ") || "aucune"), h("td", {}, s.cameras.join(", ")),
        h("td", {}, s.removed_on ? `le ${frDate(s.removed_on)} — ${s.removal_reason}` : "—")))
        : h("tr", {}, h("td", { colspan: 5 }, "Aucun panneau enregistré.")))),
    h("h2", {}, "Enregistrer un panneau installé"), add,
    ...removal(data.signs.filter((s) => !s.removed_on), commune, msg, () => signs(panel, ctx, msg)));
}

/** A sign taken down (damaged, moved, stolen): it informs no one from that day (R26). */
function removal(standing, commune, msg, done) {
  if (!standing.length) return [];
  const form = h("form", { class: "pile", "aria-label": "Panneau retiré" },
    h("label", {}, "Panneau", h("select", { name: "sign" }, standing.map((s) => h("option", { value: s.id }, `${s.place} (${s.cameras.join(", ")})`)))),
    h("label", {}, "Retiré le", h("input", { name: "removed_on", type: "date", required: true, max: new Date().toISOString().slice(0, 10) })),
    h("label", {}, "Motif", h("input", { name: "reason", required: true, placeholder: "arraché, déplacé, volé…" })),
    h("button", { type: "submit" }, "Enregistrer le retrait"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = fields(form);
    try {
      await api.post(`/api/communes/${commune}/signs/${v.sign}/removal`, { removed_on: v.removed_on, reason: v.reason });
      say(msg, "Retrait enregistré : les caméras qu'il couvrait sont signalées si aucun autre panneau complet ne les couvre.");
      done();
    } catch (err) { say(msg, err.message, false); }
  });
  return [h("h2", {}, "Un panneau a été retiré"), form];
}

function publicRegister(panel, ctx, msg = result()) {
  const base = `/public/${ctx.commune}/cameras`;
  const view = ctx.communeView() || {};
  const identity = h("form", { class: "pile", "aria-label": "Responsable et contact" },
    h("label", {}, "Responsable du traitement", h("input", { name: "controller", value: view.controller || "" })),
    h("label", {}, "Exercice des droits (adresse, courriel)", h("input", { name: "rights_contact", value: view.rights_contact || "" })),
    h("label", {}, "Motif (journalisé)", h("input", { name: "reason", placeholder: "élection, nouvelle adresse…" })),
    h("button", { type: "submit" }, "Enregistrer"));
  identity.addEventListener("submit", async (e) => {
    e.preventDefault();
    // Only what is filled in: an empty field is not a change (the server refuses emptying one).
    const v = Object.fromEntries(Object.entries(fields(identity)).filter(([, value]) => value));
    try {
      const changed = await api.put(`/api/communes/${ctx.commune}/identity`, v);
      Object.assign(view, { controller: changed.controller, rights_contact: changed.rights_contact });
      say(msg, "Enregistré : le registre public l'affiche dès maintenant.");
      panel.querySelector("iframe").src = `${base}?vu=${Date.now()}`; // the same address would not reload
    } catch (err) { say(msg, err.message, false); }
  });
  clear(panel,
    h("p", {}, "Ce que voit le public, sans connexion, à une adresse stable (R25) : emplacement, finalités, responsable, durée de conservation, exercice des droits, autorisation — rien d'interne."),
    h("p", {}, h("a", { href: base, target: "_blank", rel: "noopener" }, "Page publique"), " · ",
      h("a", { href: `${base}.csv` }, "CSV"), " · ", h("a", { href: `${base}.geojson` }, "GeoJSON")),
    h("iframe", { src: base, title: "Registre public", class: "apercu-public", sandbox: "" }),
    ...(ctx.can("configuration") ? [h("h2", {}, "Responsable et contact (nouveau maire, nouvelle adresse)"), msg, identity] : []));
}

async function processingRecord(panel, ctx) {
  const url = `/api/register/processing-record?commune=${encodeURIComponent(ctx.commune)}`;
  clear(panel,
    h("p", {}, "La fiche du registre des traitements et les éléments de l'analyse d'impact (R40), lus dans la configuration en vigueur. Chaque consultation est journalisée."),
    h("p", {}, h("a", { href: `${url}&format=html`, target: "_blank", rel: "noopener" }, "Version imprimable"), " · ",
      h("a", { href: url, target: "_blank", rel: "noopener" }, "JSON")));
}

async function incidents(panel, ctx, msg = result()) {
  const list = await lists.incidents.get("/api/incidents");
  if (list === SUPERSEDED) return;
  const add = h("form", { class: "pile", "aria-label": "Déclarer une violation" },
    h("label", {}, "Ce qui s'est passé", h("textarea", { name: "summary", required: true, rows: 2 })),
    h("label", {}, "Découverte le", h("input", { name: "discovered_at", type: "datetime-local", required: true })),
    h("label", {}, "Données concernées (catégories, nombre approximatif)", h("input", { name: "data_concerned", required: true })),
    h("label", {}, "Personnes concernées (catégories, nombre approximatif)", h("input", { name: "people_concerned", required: true })),
    h("label", {}, "Conséquences probables", h("input", { name: "consequences" })),
    h("label", {}, "Mesures prises ou envisagées", h("textarea", { name: "measures", required: true, rows: 2 })),
    h("label", {}, "Risque", h("select", { name: "risk" }, Object.entries(RISKS).map(([k, v]) => h("option", { value: k, selected: k === "risk" }, v)))),
    h("label", {}, "Motif de non-notification (risque peu probable)", h("input", { name: "no_notice_reason" })),
    h("button", { type: "submit", class: "principal" }, "Déclarer"));
  add.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = fields(add);
    try {
      await api.post("/api/incidents", { ...v, commune: ctx.commune, discovered_at: fromLocalInput(v.discovered_at).toISOString() });
      say(msg, "Violation déclarée : 72 heures pour notifier la CNIL à compter de sa découverte.");
      incidents(panel, ctx, msg);
    } catch (err) { say(msg, err.message, false); }
  });
  clear(panel, msg,
    h("table", {}, h("thead", {}, h("tr", {}, ["Violation", "Découverte", "Échéance (72 h)", "État", "Notification"].map((t) => h("th", {}, t)))),
      h("tbody", {}, list.length ? list.map((i) => h("tr", { class: i.urgency === "overdue" || i.urgency === "due_soon" ? "alerte" : "" },
        h("td", {}, `${i.commune} — ${i.summary}`), h("td", {}, frDateTime(i.discovered_at)), h("td", {}, frDateTime(i.due_at)),
        h("td", {}, URGENCY[i.urgency] || i.urgency),
        h("td", {}, h("a", { href: `/api/incidents/${i.id}/notification`, target: "_blank", rel: "noopener" }, "Texte préparé pour la CNIL")))) :
        h("tr", {}, h("td", { colspan: 5 }, "Aucune violation déclarée.")))),
    h("h2", {}, "Déclarer une violation de données (R39)"), add);
}

function newCommune(panel, ctx, msg = result()) {
  const add = h("form", { class: "pile", "aria-label": "Nouvelle commune" },
    h("label", {}, "Identifiant (minuscules)", h("input", { name: "slug", required: true, pattern: "[a-z0-9][a-z0-9_\\-]*" })),
    h("label", {}, "Nom", h("input", { name: "name", required: true })),
    h("label", {}, "Conservation (jours, 1 à 30)", h("input", { name: "retention_days", type: "number", min: 1, max: 30, required: true, value: 15 })),
    h("label", {}, "Responsable du traitement", h("input", { name: "controller", required: true, placeholder: "le maire de …" })),
    h("label", {}, "Exercice des droits (adresse, courriel)", h("input", { name: "rights_contact", required: true })),
    h("button", { type: "submit", class: "principal" }, "Créer la commune"));
  add.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = fields(add);
    try {
      await api.post("/api/communes", { ...v, retention_days: Number(v.retention_days) });
      say(msg, `Commune ${v.name} créée. Suivant : son administrateur (Administration › Utilisateurs), puis son arrêté préfectoral et ses caméras.`);
    } catch (err) { say(msg, err.message, false); }
  });
  clear(panel, h("p", {}, "Une commune nouvelle : ses sujets, son préfixe de stockage et sa règle d'effacement suivent."), add, msg);
}

