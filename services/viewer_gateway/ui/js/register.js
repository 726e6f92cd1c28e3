// Registre: the auditor's search of every access and change, CSV export for the CNIL, and the
// state of the hash chain and its signed checkpoints (R12, R14).
import { api, query, latest, SUPERSEDED } from "./api.js";
import { h, clear, fields, frDateTime, fromLocalInput } from "./dom.js";
import { ACTIONS, frReason } from "./fr.js";

const OUTCOMES = {
  ok: "accepté", throttled: "refusé (trop de tentatives)", wrong_password: "refusé (mot de passe)",
  wrong_totp: "refusé (code)", totp_replayed: "refusé (code déjà utilisé)", disabled: "refusé (compte désactivé)",
  designation_expired: "refusé (désignation expirée)", totp_not_enrolled: "refusé (second facteur absent)",
};

export function mount(main, ctx) {
  const cameraList = h("datalist", { id: "registre-cameras" },
    ctx.cameras.map((c) => h("option", { value: `${c.commune}/${c.slug}` }, c.name)));
  const actionList = h("datalist", { id: "registre-actions" },
    Object.entries(ACTIONS).map(([k, v]) => h("option", { value: k }, v)));
  const chain = h("p", { role: "status" }, "Vérification de la chaîne…");
  const form = h("form", { class: "ligne", "aria-label": "Recherche dans le registre" },
    h("label", {}, "Agent", h("input", { name: "actor" })),
    h("label", {}, "Caméra", h("input", { name: "camera", list: "registre-cameras", placeholder: "choisir dans la liste" })),
    h("label", {}, "Action", h("input", { name: "action", list: "registre-actions", placeholder: "choisir dans la liste" })),
    h("label", {}, "Du", h("input", { type: "datetime-local", name: "start" })),
    h("label", {}, "Au", h("input", { type: "datetime-local", name: "end" })),
    h("button", { type: "submit", class: "principal" }, "Rechercher"));
  const csv = h("a", { href: "/api/register/export.csv", download: "registre.csv" }, "Exporter en CSV");
  const csvFr = h("a", { href: "/api/register/export.csv?format=fr", download: "registre.csv" }, "Exporter pour un tableur français");
  const error = h("p", { class: "erreur", role: "alert" });
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Entrées plus anciennes");
  clear(main, h("h1", {}, "Registre des accès"), chain, form, cameraList, actionList,
    h("div", { class: "outils" }, csv, csvFr, h("span", { class: "info" }, "(CSV standard : virgules, heure UTC ; tableur français : points-virgules, heure légale de chaque commune)")), error,
    h("table", {}, h("thead", {}, h("tr", {}, ["N°", "Date", "Agent", "Action", "Commune", "Caméras", "Période", "Motif", "Référence", "Résultat"].map((t) => h("th", {}, t)))), body), more);

  /** A period with its end, or from its start only (a tile seen on the wall has no end). */
  function period(r) {
    if (!r.period_start) return "";
    return r.period_end ? `${frDateTime(r.period_start)} → ${frDateTime(r.period_end)}` : `à partir du ${frDateTime(r.period_start)}`;
  }

  let params = {};
  let lastId = null;

  function criteria() {
    const v = fields(form);
    return {
      actor: v.actor, camera: v.camera, action: v.action,
      start: v.start ? fromLocalInput(v.start).toISOString() : "", end: v.end ? fromLocalInput(v.end).toISOString() : "",
    };
  }

  const pages = latest(); // a new search outdates the pages of the previous one still on their way

  async function search(append = false) {
    error.textContent = "";
    if (!append) more.hidden = true; // « more » belongs to the results shown, not to those on their way
    try {
      const page = await pages.get(`/api/register${query({ ...params, before_id: append ? lastId : "" })}`);
      // An auditor's results must hold only rows that match the criteria shown.
      if (page === SUPERSEDED) return;
      const rows = page.rows.map((r) => h("tr", { dataset: { id: r.id } },
        h("td", {}, String(r.id)), h("td", {}, frDateTime(r.at)), h("td", {}, r.actor),
        h("td", { title: r.action, dataset: { action: r.action } }, ACTIONS[r.action] || r.action),
        h("td", {}, r.commune || "—"), h("td", {}, r.cameras.join(", ")),
        h("td", {}, period(r)), h("td", {}, frReason(r.reason)), h("td", {}, r.details?.reference || ""),
        h("td", {}, OUTCOMES[r.outcome] || r.outcome)));
      if (append) body.append(...rows);
      else clear(body, rows);
      lastId = page.rows.length ? page.rows[page.rows.length - 1].id : lastId;
      more.hidden = !page.more;
    } catch (err) {
      error.textContent = err.message;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    params = criteria();
    csv.href = `/api/register/export.csv${query(params)}`;
    csvFr.href = `/api/register/export.csv${query({ ...params, format: "fr" })}`;
    search();
  });
  more.addEventListener("click", () => search(true));

  api.get("/api/register/verify").then((v) => {
    chain.className = v.ok ? "ok" : "erreur";
    chain.dataset.ok = String(v.ok);
    chain.textContent = v.ok
      ? `Chaîne intègre : ${v.rows} entrées, ${v.checkpoints} points de contrôle signés.`
      : `Chaîne rompue à l'entrée n° ${v.first_broken_id} : ${v.problem}`;
  }).catch((err) => { chain.className = "erreur"; chain.textContent = err.message; });
  search();
}
