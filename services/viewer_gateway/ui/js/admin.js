// Administration: communes (retention, hours, exceptions), cameras (the prefectoral authorisation
// they are attached to, recorded in Conformité; the RTSP address is write-only), users (roles,
// designation, training, TOTP enrolment).
import { api, latest, SUPERSEDED } from "./api.js";

// Each list reloads after every change: the latest answer wins (a slow one never redraws over it).
const lists = { communes: latest(), cameras: latest(), users: latest() };
import { h, clear, ask, fields, frDate, frDateTime, fromLocalInput, tabbed } from "./dom.js";
import { HOLDERS, ROLES, cameraState } from "./fr.js";

const DAYS = { mon: "lundi", tue: "mardi", wed: "mercredi", thu: "jeudi", fri: "vendredi", sat: "samedi", sun: "dimanche" };

export function mount(main, ctx) {
  const tabs = [
    ["communes", "Communes", "configuration", communes],
    ["cameras", "Caméras", "configuration", cameras],
    ["utilisateurs", "Utilisateurs", "user_admin", users],
  ].filter(([, , p]) => ctx.can(p));
  clear(main, h("h1", {}, "Administration"),
    ...tabbed(tabs.map(([id, label, , render]) => [id, label, (panel) => render(panel, ctx)])));
}

function result() { return h("p", { role: "status" }); }
function say(el, text, ok = true) { el.className = ok ? "ok" : "erreur"; el.textContent = text; }

async function communes(panel, ctx) {
  const list = await lists.communes.get("/api/communes");
  if (list === SUPERSEDED) return;
  clear(panel, list.map((c) => {
    const msg = result();
    const retention = h("form", { class: "ligne", "aria-label": `Conservation ${c.name}` },
      h("label", {}, "Conservation (jours, 1 à 30 — R4)", h("input", { type: "number", name: "days", min: 1, max: 30, value: c.retention_days, required: true })),
      h("label", {}, "Motif", h("input", { name: "reason" })),
      h("button", { type: "submit" }, "Enregistrer"));
    retention.addEventListener("submit", async (e) => {
      e.preventDefault();
      const v = fields(retention);
      try { await api.put(`/api/communes/${c.slug}/retention`, { days: Number(v.days), reason: v.reason }); say(msg, "Durée de conservation enregistrée."); }
      catch (err) { say(msg, err.message, false); }
    });
    const hours = h("form", { class: "ligne", "aria-label": `Horaires ${c.name}` },
      h("p", { class: "info" }, "Exemple : 08:00-12:00, 14:00-20:00. Un jour laissé vide : la police nationale a la main toute la journée."),
      Object.entries(DAYS).map(([k, day]) => h("label", {}, day, h("input", {
        name: k, size: 12, title: "Plages hh:mm-hh:mm séparées par des virgules ; vide : police nationale toute la journée",
        value: (c.police_hours[k] || []).map(([a, b]) => `${a}-${b}`).join(", "),
      }))), h("button", { type: "submit" }, "Enregistrer les horaires"));
    hours.addEventListener("submit", async (e) => {
      e.preventDefault();
      const v = fields(hours);
      const police_hours = Object.fromEntries(Object.keys(DAYS).map((k) => [k, v[k] ? v[k].split(",").map((r) => r.trim().split("-")) : []]));
      try { await api.put(`/api/communes/${c.slug}/hours`, { police_hours }); say(msg, "Horaires de la police municipale enregistrés."); }
      catch (err) { say(msg, err.message, false); }
    });
    const exception = h("form", { class: "ligne", "aria-label": `Exception ${c.name}` },
      h("label", {}, "Du", h("input", { type: "datetime-local", name: "starts_at", required: true })),
      h("label", {}, "Au", h("input", { type: "datetime-local", name: "ends_at", required: true })),
      h("label", {}, "Main à", h("select", { name: "holder" }, Object.entries(HOLDERS).map(([k, v]) => h("option", { value: k }, v)))),
      h("label", {}, "Motif", h("input", { name: "reason", required: true })),
      h("button", { type: "submit" }, "Ajouter l'exception"));
    exception.addEventListener("submit", async (e) => {
      e.preventDefault();
      const v = fields(exception);
      try {
        await api.post(`/api/communes/${c.slug}/handover/exceptions`, {
          starts_at: fromLocalInput(v.starts_at).toISOString(), ends_at: fromLocalInput(v.ends_at).toISOString(), holder: v.holder, reason: v.reason,
        });
        say(msg, "Exception enregistrée.");
      } catch (err) { say(msg, err.message, false); }
    });
    return h("article", {}, h("h2", {}, `${c.name} — ${HOLDERS[c.handover.holder]} à la main`),
      retention, h("h3", {}, "Horaires de la police municipale (hors de ces horaires, la police nationale a la main)"), hours,
      h("h3", {}, "Exceptions datées (jour férié, événement)"), exception, msg);
  }));
}

async function cameras(panel, ctx, msg = result()) {
  const list = await lists.cameras.get("/api/cameras");
  if (list === SUPERSEDED) return;
  const add = h("form", { class: "ligne", "aria-label": "Nouvelle caméra" },
    h("label", {}, "Commune", h("select", { name: "commune", required: true },
      h("option", { value: "" }, "— choisir —"), ctx.communes.map((c) => h("option", { value: c.slug }, c.name)))),
    h("label", {}, "Identifiant", h("input", { name: "slug", required: true, pattern: "[a-z0-9][a-z0-9_\\-]*", title: "lettres minuscules, chiffres, « - » ou « _ »", placeholder: "mairie-parvis" })),
    h("label", {}, "Nom", h("input", { name: "name", required: true })),
    h("label", {}, "Emplacement", h("input", { name: "location" })),
    h("label", {}, "Adresse RTSP (non réaffichée)", h("input", { name: "rtsp_url", type: "password", required: true, autocomplete: "off", placeholder: "rtsp://…" })),
    h("label", {}, "Réf. de l'autorisation préfectorale (enregistrée dans Conformité)", h("input", { name: "authorisation_ref" })),
    h("button", { type: "submit", class: "principal" }, "Ajouter (en mise en service)"));
  add.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = fields(add);
    try {
      await api.post("/api/cameras", { ...v, authorisation_ref: v.authorisation_ref || null });
      say(msg, `Caméra ${v.slug} ajoutée à ${ctx.communes.find((c) => c.slug === v.commune)?.name} : elle reste sans image jusqu'à l'approbation de ses masques.`);
      cameras(panel, ctx, msg);
    } catch (err) { say(msg, err.message, false); }
  });
  const rows = list.map((c) => {
    const form = h("form", { class: "ligne", "aria-label": `Caméra ${c.slug}` },
      h("input", { name: "name", value: c.name, "aria-label": "Nom" }),
      h("input", { name: "location", value: c.location, "aria-label": "Emplacement" }),
      h("select", { name: "state", "aria-label": "État", title: c.state === "commissioning" ? "Mise en service : par l'approbation de ses masques (écran Masques)" : "" },
        [["commissioning", "en mise en service"], ["active", "active"], ["disabled", "désactivée"]]
          .filter(([k]) => k !== "active" || c.state !== "commissioning")
          .map(([k, v]) => h("option", { value: k, selected: k === c.state }, v))),
      h("input", { name: "authorisation_ref", value: c.authorisation_ref || "", "aria-label": "Réf. autorisation" }),
      h("input", { name: "rtsp_url", type: "password", placeholder: c.has_source ? "nouvelle adresse RTSP (facultatif)" : "adresse RTSP", "aria-label": "Adresse RTSP", autocomplete: "off" }),
      h("button", { type: "submit" }, "Enregistrer"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const v = fields(form);
      const body = { name: v.name, location: v.location };
      if (v.authorisation_ref !== (c.authorisation_ref || "")) body.authorisation_ref = v.authorisation_ref || null;
      if (v.state !== c.state) body.state = v.state;
      if (v.rtsp_url) body.rtsp_url = v.rtsp_url;
      // A new source films something else: the camera goes back to commissioning and shows and
      // records nothing until masks drawn on its new picture are approved (fail closed). Said
      // before saving, not discovered on the wall (issue 38).
      if (body.rtsp_url && c.state === "active" && !(await ask(`Nouvelle source pour ${c.name}`,
        h("p", {}, "La caméra repassera en mise en service : plus aucune image, en direct comme en enregistrement, tant qu'un administrateur des masques n'aura pas approuvé des masques dessinés sur sa nouvelle image (écran Masques)."),
        { submit: "Changer la source" }))) return;
      try {
        const after = await api.patch(`/api/cameras/${c.commune}/${c.slug}`, body);
        say(msg, after.state === "commissioning" && c.state === "active"
          ? `Caméra ${c.slug} enregistrée : repassée en mise en service, elle ne filme plus jusqu'à l'approbation de ses masques (écran Masques).`
          : `Caméra ${c.slug} enregistrée.`);
      } catch (err) { say(msg, err.message, false); }
    });
    return h("tr", {}, h("td", {}, `${c.commune}/${c.slug}`, h("br"), h("span", { class: "info" }, cameraState(c)[0]),
      c.authorisation_expired ? h("div", { class: "erreur" }, `autorisation expirée le ${frDate(c.authorisation_expires)}`)
        : c.authorisation !== "valid" ? h("div", { class: "erreur" }, "sans autorisation en vigueur : ne filme pas")
          : h("div", { class: "info" }, `autorisation jusqu'au ${frDate(c.authorisation_expires)}`)), h("td", {}, form));
  });
  clear(panel, h("h2", {}, "Ajouter une caméra"), add, msg, h("h2", {}, "Caméras"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Caméra"), h("th", {}, "Nom, emplacement, état, autorisation, source"))), h("tbody", {}, rows)));
}

/** The TOTP secret, shown once in a dialog that stays until closed: the QR code to scan, and the
 * secret as text for an app that cannot scan. */
function showEnrolment(t) {
  return ask(`Second facteur de ${t.username}`, [
    h("p", {}, "À scanner maintenant dans l'application d'authentification de l'agent (affiché une seule fois) :"),
    h("img", { class: "qr-totp", src: t.qr_code, alt: `Code QR du second facteur de ${t.username}`, width: 220, height: 220 }),
    h("p", {}, "Ou saisir ce secret :"), h("p", { class: "secret" }, t.secret)], { submit: "C'est enregistré" });
}

async function users(panel, ctx, msg = result()) {
  const list = await lists.users.get("/api/users");
  if (list === SUPERSEDED) return;
  // A deployment administrator is made on the server (vigie user create), not from a commune.
  const GRANTABLE = Object.entries(ROLES).filter(([k]) => k !== "deployment_admin");
  const roleBoxes = GRANTABLE.map(([k, v]) => h("label", {}, h("input", { type: "checkbox", name: `role-${k}` }), ` ${v}`));
  const communeBoxes = ctx.communes.map((c) => h("label", {}, h("input", { type: "checkbox", name: `commune-${c.slug}` }), ` ${c.name}`));
  const add = h("form", { class: "ligne", "aria-label": "Nouvel utilisateur" },
    h("label", {}, "Identifiant", h("input", { name: "username", required: true, pattern: "[a-z0-9][a-z0-9._\\-]+", title: "lettres minuscules, chiffres, « . », « - » ou « _ » (2 caractères au moins)" })),
    h("label", {}, "Nom complet", h("input", { name: "full_name", required: true })),
    h("label", {}, "Mot de passe initial (12 caractères au moins)", h("input", { name: "password", type: "password", minlength: 12, required: true, autocomplete: "new-password" })),
    h("fieldset", {}, h("legend", {}, "Rôles"), roleBoxes),
    h("fieldset", {}, h("legend", {}, "Communes"), communeBoxes),
    h("label", {}, "Désigné par (R8)", h("input", { name: "designated_by", required: true, placeholder: "ex. : le maire de Palaiseau" })),
    h("label", {}, "Acte de désignation (R8, obligatoire pour l'accès aux images)", h("input", { name: "designation_act", maxlength: 200, placeholder: "arrêté du maire n° …" })),
    h("label", {}, "Désignation jusqu'au", h("input", { name: "designation_expires", type: "date" })),
    h("label", {}, "Matricule", h("input", { name: "agent_number" })),
    h("label", {}, "Formation protection des données le (R11)", h("input", { name: "trained_on", type: "date" })),
    h("label", {}, h("input", { type: "checkbox", name: "with_totp" }), " Enrôler un second facteur (TOTP)"),
    h("button", { type: "submit", class: "principal" }, "Créer le compte"));
  add.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(add);
    const v = fields(add);
    const body = {
      username: v.username, full_name: v.full_name, password: data.get("password"), designated_by: v.designated_by,
      designation_expires: v.designation_expires || null, agent_number: v.agent_number || null, with_totp: data.has("with_totp"),
      trained_on: v.trained_on || null, designation_act: v.designation_act || null,
      roles: GRANTABLE.map(([k]) => k).filter((k) => data.has(`role-${k}`)),
      communes: ctx.communes.map((c) => c.slug).filter((s) => data.has(`commune-${s}`)),
    };
    if (!body.communes.length) return say(msg, "Cochez la ou les communes du compte (R9).", false);
    if (!body.roles.length) return say(msg, "Cochez au moins un rôle.", false);
    try {
      const created = await api.post("/api/users", body);
      const names = body.communes.map((s) => ctx.communes.find((c) => c.slug === s)?.name || s);
      say(msg, `Compte ${created.user.username} créé pour ${names.join(", ")}. À sa première connexion, l'agent choisira son propre mot de passe.`);
      // The second factor chosen at creation, shown this once (it was never shown: locked out).
      if (created.totp) await showEnrolment(created.totp);
      users(panel, ctx, msg);
    } catch (err) { say(msg, err.message, false); }
  });
  const rows = list.map((u) => h("tr", { dataset: { user: u.username } },
    h("td", {}, u.username, h("br"), h("span", { class: "info" }, u.full_name)),
    h("td", {}, u.roles.map((r) => ROLES[r] || r).join(", ")),
    h("td", {}, u.communes.join(", ")),
    h("td", { class: u.designation_expired ? "erreur" : "" }, `par ${u.designation.designated_by || "—"}, jusqu'au ${frDate(u.designation.expires)}${u.verbalisation ? ` · vidéo-verbalisation (${u.verbalisation.power === "asvp" ? "ASVP" : "police municipale"})` : ""}`),
    h("td", { class: u.trained_on ? "" : "erreur" }, u.trained_on ? `formé le ${frDate(u.trained_on)}` : "sans formation (R11) : ni image, ni extraction, ni verbalisation"),
    h("td", {}, u.totp_enabled ? "TOTP actif" : "sans TOTP"),
    h("td", {}, u.disabled ? "désactivé" : "actif"),
    h("td", {},
      h("button", { type: "button", onclick: async () => {
        // Replacing a working second factor locks the agent out until the new one is scanned.
        if (u.totp_enabled && !(await ask(`Remplacer le second facteur de ${u.username} ?`,
          h("p", {}, "Son application d'authentification actuelle cessera de fonctionner : l'agent devra scanner le nouveau code avant sa prochaine connexion."),
          { submit: "Remplacer" }))) return;
        try {
          await showEnrolment(await api.post(`/api/users/${u.username}/totp`));
          users(panel, ctx, msg);
        } catch (err) { say(msg, err.message, false); }
      } }, u.totp_enabled ? "Remplacer le TOTP…" : "Enrôler le TOTP"), " ",
      h("button", { type: "button", onclick: async () => {
        try {
          await api.patch(`/api/users/${u.username}`, { disabled: !u.disabled });
          say(msg, `Compte ${u.username} ${u.disabled ? "réactivé" : "désactivé"}.`);
          users(panel, ctx, msg);
        } catch (err) { say(msg, err.message, false); }
      } }, u.disabled ? "Réactiver" : "Désactiver"), " ",
      h("button", { type: "button", onclick: () => edit(u) }, "Modifier…"))));

  /** Roles, communes and the designation's end (its renewal, R8) of an existing account. */
  async function edit(u) {
    const changed = await ask(`Compte ${u.username}`, [
      h("fieldset", {}, h("legend", {}, "Rôles"), GRANTABLE.map(([k, v]) =>
        h("label", {}, h("input", { type: "checkbox", name: `role-${k}`, checked: u.roles.includes(k) }), ` ${v}`))),
      h("fieldset", {}, h("legend", {}, "Communes"), ctx.communes.map((c) =>
        h("label", {}, h("input", { type: "checkbox", name: `commune-${c.slug}`, checked: u.communes.includes(c.slug) }), ` ${c.name}`))),
      h("label", {}, "Désigné par (R8)", h("input", { name: "designated_by", required: true, value: u.designation.designated_by || "" })),
      h("label", {}, "Acte de désignation (obligatoire si l'accès aux images s'élargit)", h("input", { name: "designation_act", maxlength: 200, placeholder: "arrêté du maire n° …" })),
      h("label", {}, "Désignation jusqu'au (renouvellement)", h("input", { name: "designation_expires", type: "date", value: u.designation.expires || "" })),
      h("label", {}, "Formation protection des données le (R11)", h("input", { name: "trained_on", type: "date", value: u.trained_on || "" })),
      h("fieldset", {}, h("legend", {}, "Vidéo-verbalisation (R32)"),
        h("label", {}, "Habilitation", h("select", { name: "verbalisation_power" },
          h("option", { value: "" }, "non habilité"),
          h("option", { value: "police_municipale", selected: u.verbalisation?.power === "police_municipale" }, "agent de police municipale"),
          h("option", { value: "asvp", selected: u.verbalisation?.power === "asvp" }, "ASVP (stationnement seulement)"))),
        h("label", {}, "Acte de désignation", h("input", { name: "verbalisation_designation", maxlength: 200, value: u.verbalisation?.designation || "", placeholder: "arrêté du maire n°…" }))),
    ], {
      submit: "Enregistrer",
      onsubmit: (v) => api.patch(`/api/users/${u.username}`, {
        roles: GRANTABLE.map(([k]) => k).filter((k) => v[`role-${k}`]),
        communes: ctx.communes.map((c) => c.slug).filter((s) => v[`commune-${s}`]),
        designated_by: v.designated_by, designation_expires: v.designation_expires || null,
        ...(v.designation_act ? { designation_act: v.designation_act } : {}),
        ...(v.trained_on !== (u.trained_on || "") ? { trained_on: v.trained_on || null } : {}),
        verbalisation: v.verbalisation_power ? { power: v.verbalisation_power, designation: v.verbalisation_designation } : null,
      }),
    });
    if (changed) {
      say(msg, `Compte ${u.username} modifié.`);
      users(panel, ctx, msg);
    }
  }
  clear(panel, h("h2", {}, "Créer un compte nominatif"), add, msg, h("h2", {}, "Comptes"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Compte", "Rôles", "Communes", "Désignation", "Formation (R11)", "Second facteur", "État", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows)),
    h("p", { class: "info" }, `Mis à jour ${frDateTime(new Date())}.`));
}
