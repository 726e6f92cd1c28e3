// Vidéo-verbalisation from the full-screen live view (R31–R34): stills taken at the instant the
// picture shows (the live image only: never in DIFFÉRÉ), the offence picked from the list the
// agent's powers allow, the plate typed (no plate reading: R29), then « prête », the hand-over
// file for the PVe tool, or a cancellation with its reason. The day's offences below.
import { api, latest, SUPERSEDED } from "./api.js";
import { h, clear, ask, frDateTime, frDateTimeTenths } from "./dom.js";

export const TRAFFIC_PURPOSE = "constatation des infractions aux règles de la circulation";
const STATES = { draft: "brouillon", ready: "prête", handed_over: "remise à l'outil PVe", closed: "close", cancelled: "annulée" };
const CATEGORIES = { traffic: "Circulation (R121-6)", parking: "Stationnement", parking_dangerous: "Stationnement dangereux", waste: "Dépôts d'ordures" };
const COUNTRIES = ["FR", "BE", "DE", "ES", "IT", "LU", "NL", "CH", "GB", "PT", "PL", "RO"];
const MAX_STILLS = 3;

/** Whether the mode is offered: the account listed (R32), the camera authorised for it. */
export function mayVerbalise(ctx, camera) {
  return Boolean(ctx.me.verbalisation_power) && ctx.can("verbalisation") &&
    (camera.purposes || []).includes(TRAFFIC_PURPOSE) && camera.state === "active";
}

export function verbalisationPanel(ctx, camera, pane) {
  const base = `/api/cameras/${camera.commune}/${camera.slug}/offences`;
  const status = h("p", { role: "status", class: "info" });
  const error = h("p", { role: "alert", class: "erreur" });
  const strip = h("ol", { class: "cliches", "aria-label": "Clichés" });
  const take = h("button", { type: "button", class: "principal", onclick: () => capture() }, "Prendre un cliché");
  const code = h("select", { name: "offence_code", "aria-label": "Infraction" }, h("option", { value: "" }, "— infraction —"));
  const plate = h("input", { name: "plate", "aria-label": "Plaque d'immatriculation", placeholder: "AB-123-CD", maxlength: 20, autocomplete: "off" });
  const country = h("select", { name: "plate_country", "aria-label": "Pays de la plaque" }, COUNTRIES.map((c) => h("option", { value: c }, c)));
  const save = h("button", { type: "button", onclick: () => update({ offence_code: code.value || undefined, plate: plate.value.trim() || undefined, plate_country: country.value }) }, "Enregistrer");
  const ready = h("button", { type: "button", onclick: () => update({ offence_code: code.value || undefined, plate: plate.value.trim() || undefined, plate_country: country.value, state: "ready" }) }, "Prête");
  const handover = h("a", { class: "bouton", hidden: true, download: "", onclick: () => setTimeout(reload, 1500) }, "Remettre à l'outil PVe");
  const cancel = h("button", { type: "button", onclick: () => cancelIt() }, "Annuler l'infraction");
  const fresh = h("button", { type: "button", hidden: true, onclick: () => { current = null; render(); } }, "Nouvelle infraction");
  const day = h("tbody");
  const element = h("section", { class: "verbalisation", "aria-label": "Vidéo-verbalisation" },
    h("h2", {}, "Vidéo-verbalisation"),
    h("p", { class: "info" }, "Clichés pris sur l'image en direct seulement (R31) : 2 ou 3, véhicule et plaque. La plaque est saisie par l'agent."),
    h("div", { class: "outils" }, take, fresh), strip,
    h("div", { class: "ligne" }, h("label", {}, "Infraction", code), h("label", {}, "Plaque", plate), h("label", {}, "Pays", country)),
    h("div", { class: "outils" }, save, ready, handover, cancel), status, error,
    h("h3", {}, "Infractions du jour"),
    h("table", { class: "infractions" }, h("thead", {}, h("tr", {}, ["N°", "Notée le", "Caméra", "Infraction", "Plaque", "État"].map((t) => h("th", {}, t)))), day));

  let current = null; // the offence being noted
  const stills = new Map(); // n -> blob URL
  const dayAsked = latest();

  api.get("/api/offences/catalogue").then((list) => {
    const groups = {};
    for (const o of list.offences) (groups[o.category] ||= []).push(o);
    code.append(...Object.entries(groups).map(([cat, offences]) => h("optgroup", { label: CATEGORIES[cat] || cat },
      offences.map((o) => h("option", { value: o.code, title: o.article }, o.label)))));
  }).catch((err) => { error.textContent = err.message; });

  /** The instant the picture on screen was filmed: what the still is taken of. */
  function shownAt() {
    if (pane.replaying || pane.element.dataset.mode !== "direct") return null;
    const iso = pane.element.dataset.captureTime;
    return iso ? iso : null;
  }

  async function capture() {
    error.textContent = "";
    const at = shownAt();
    if (!at) { error.textContent = "Pas d'image en direct : un cliché se prend sur le direct seulement (R31)."; return; }
    take.disabled = true;
    try {
      current = current
        ? await api.post(`/api/offences/${current.id}/stills`, { capture_time: at })
        : await api.post(base, { capture_times: [at] });
      status.textContent = `Cliché ${current.stills.length} pris (${frDateTimeTenths(new Date(at))}).`;
      await render();
      loadDay();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      take.disabled = Boolean(current && (current.state !== "draft" || current.stills.length >= MAX_STILLS));
    }
  }

  async function update(body) {
    if (!current) { error.textContent = "Prenez d'abord un cliché."; return; }
    error.textContent = "";
    try {
      current = await api.patch(`/api/offences/${current.id}`, body);
      status.textContent = body.state === "ready" ? `Infraction n° ${current.id} prête pour l'outil PVe.` : "Enregistré.";
      await render();
      loadDay();
    } catch (err) {
      error.textContent = err.message;
    }
  }

  /** After the hand-over file was fetched: its new state. */
  async function reload() {
    if (!current) return;
    try {
      current = await api.get(`/api/offences/${current.id}`);
      status.textContent = `Infraction n° ${current.id} : ${STATES[current.state] || current.state}.`;
      await render();
      loadDay();
    } catch (err) {
      error.textContent = err.message;
    }
  }

  async function cancelIt() {
    if (!current) return;
    const done = await ask(`Annuler l'infraction n° ${current.id}`, h("label", {}, "Motif", h("textarea", { name: "reason", required: true })), {
      submit: "Annuler l'infraction",
      onsubmit: (v) => api.patch(`/api/offences/${current.id}`, { state: "cancelled", cancel_reason: v.reason }),
    });
    if (done) {
      current = done;
      status.textContent = `Infraction n° ${current.id} annulée : ses clichés sont effacés.`;
      await render();
      loadDay();
    }
  }

  async function render() {
    const editable = current && current.state === "draft";
    take.disabled = Boolean(current && (!editable || current.stills.length >= MAX_STILLS));
    for (const el of [save, ready, code, plate, country]) el.disabled = !editable;
    cancel.hidden = !current || !["draft", "ready"].includes(current.state);
    fresh.hidden = !current || current.state === "draft";
    handover.hidden = !current || !["ready", "handed_over", "closed"].includes(current.state) || Boolean(current.stills_erased_at);
    if (current) {
      handover.href = `/api/offences/${current.id}/handover`;
      handover.setAttribute("download", `infraction-${current.id}.zip`);
      if (current.offence_code) code.value = current.offence_code;
      if (current.plate) plate.value = current.plate;
      if (current.plate_country) country.value = current.plate_country;
    } else {
      code.value = ""; plate.value = ""; country.value = "FR";
    }
    const items = [];
    for (const still of current?.stills || []) {
      if (!stills.has(`${current.id}/${still.n}`) && !still.erased) {
        try {
          const response = await fetch(`/api/offences/${current.id}/stills/${still.n}`, { credentials: "same-origin" });
          if (response.ok) stills.set(`${current.id}/${still.n}`, URL.createObjectURL(await response.blob()));
        } catch { /* shown without its picture */ }
      }
      const url = stills.get(`${current.id}/${still.n}`);
      items.push(h("li", { dataset: { n: still.n } },
        url ? h("img", { src: url, alt: `Cliché ${still.n}` }) : h("span", {}, still.erased ? "effacé" : "…"),
        h("span", { class: "info" }, frDateTimeTenths(new Date(still.capture_time)))));
    }
    clear(strip, items);
  }

  async function loadDay() {
    try {
      const list = await dayAsked.get("/api/offences");
      if (list === SUPERSEDED) return;
      clear(day, list.map((o) => h("tr", { dataset: { id: o.id, state: o.state } },
        h("td", {}, String(o.id)), h("td", {}, frDateTime(o.created_at)), h("td", {}, o.camera_name),
        h("td", {}, o.offence_label || "—"), h("td", {}, o.plate || "—"), h("td", {}, STATES[o.state] || o.state))));
    } catch (err) {
      error.textContent = err.message;
    }
  }

  render();
  loadDay();
  return {
    element,
    destroy() {
      dayAsked.cancel();
      for (const url of stills.values()) URL.revokeObjectURL(url);
    },
  };
}
