// The redaction editor of a right-of-access request (R22): scrub the held recording of one of the
// request's cameras, draw the requester's box on the picture and mark it at that time (the box is
// interpolated between marks, nothing is kept before the first or after the last), see what the
// detectors propose, choose the copy's start and end, then ask for the copy; the copies follow with
// their progress, a preview to watch, approval or rejection, and the package once approved.
import { api, latest, SUPERSEDED, superseded } from "./api.js";
import { h, clear, ask, frDateTime, frDateTimeTenths } from "./dom.js";

const STATES = { pending: "zone large : à approuver par une seconde personne", queued: "en attente", building: "en préparation", preview: "à vérifier", approved: "approuvée", rejected: "rejetée", failed: "échec" };
const POLL_MS = 2000;
const MAX_COPY_S = 30 * 60;

/** The kept box at `t` seconds (linear between marks), or null outside them. */
export function boxAt(marks, t) {
  if (!marks.length || t < marks[0].t || t > marks[marks.length - 1].t) return null;
  let i = 0;
  while (i < marks.length - 1 && marks[i + 1].t <= t) i += 1;
  if (i === marks.length - 1) return marks[i].box;
  const a = marks[i], b = marks[i + 1], f = (t - a.t) / (b.t - a.t);
  return a.box.map((v, k) => Math.round(v + (b.box[k] - v) * f));
}

export function mountEditor(section, req, { onanswer, me }) {
  const error = h("p", { class: "erreur", role: "alert" });
  const info = h("p", { class: "info", role: "status" });
  const cameraSelect = h("select", { name: "camera", "aria-label": "Caméra" }, req.cameras.map((c) => h("option", { value: c }, c)));
  const slider = h("input", { type: "range", min: 0, max: 0, step: 0.04, value: 0, "aria-label": "Position dans l'enregistrement" });
  const when = h("output", { class: "horodatage" }, "—");
  const canvas = h("canvas", { width: 640, height: 360, class: "redaction", "aria-label": "Image de l'enregistrement gelé : tracez la zone du demandeur" });
  const g = canvas.getContext("2d");
  const assist = h("input", { type: "checkbox", name: "assist", checked: true });
  const marksList = h("ol", { class: "reperes" });
  const windowText = h("p", { class: "info" });
  const copies = h("tbody");
  let stretches = [], origin = 0, end = 0, image = null, drawn = null, drag = null, proposals = null;
  let marks = []; // {at: ms since epoch, box}
  let from = null, to = null; // the copy's window (ms)
  const stills = latest(), lists = latest();
  let poll = null;

  const now = () => origin + Number(slider.value) * 1000;
  const step = (s) => () => { slider.value = String(Math.min(Number(slider.max), Math.max(0, Number(slider.value) + s))); show(); };

  clear(section,
    h("h2", {}, `Copie floutée — demande n° ${req.id}`),
    h("p", { class: "info" }, "Tout est flouté sauf la zone du demandeur, que vous tracez sur quelques images : elle est interpolée entre vos repères. Les détections ne font que proposer : vérifiez l'aperçu avant d'approuver."),
    h("div", { class: "ligne" }, h("label", {}, "Caméra", cameraSelect), h("label", { class: "case" }, assist, " Détection des visages et véhicules dans la zone conservée (floutés aussi)")),
    h("div", { class: "ligne curseur" },
      h("button", { type: "button", onclick: step(-1) }, "−1 s"), slider, h("button", { type: "button", onclick: step(1) }, "+1 s"), when),
    canvas,
    h("div", { class: "outils" },
      h("button", { type: "button", class: "principal", onclick: mark }, "Repère : le demandeur est ici"),
      h("button", { type: "button", onclick: propose }, "Voir les détections"),
      h("button", { type: "button", onclick: () => { from = now(); describe(); } }, "Début de la copie ici"),
      h("button", { type: "button", onclick: () => { to = now(); describe(); } }, "Fin de la copie ici")),
    windowText, marksList,
    h("div", { class: "outils" }, h("button", { type: "button", class: "principal", onclick: submit }, "Préparer la copie floutée")),
    error, info,
    h("h3", {}, "Copies de la demande"),
    h("table", { class: "copies" }, h("thead", {}, h("tr", {}, ["N°", "Période", "État", "Aperçu", ""].map((t) => h("th", {}, t)))), copies));

  cameraSelect.addEventListener("change", load);
  slider.addEventListener("change", show); // on release: a picture per position chosen, not per pixel dragged
  slider.addEventListener("input", () => { when.textContent = frDateTimeTenths(new Date(now())); draw(); });

  async function load() {
    error.textContent = "";
    const held = await api.get(`/api/access-requests/${req.id}/held`).catch((err) => { error.textContent = err.message; return []; });
    stretches = held.filter((s) => s.camera === cameraSelect.value);
    marks = []; from = to = null; image = null; proposals = null;
    if (!stretches.length) {
      slider.max = "0";
      error.textContent = "Rien n'est gelé pour cette caméra : la période avait été effacée à la réception de la demande (voir l'attestation d'effacement).";
      draw(); describe();
      return;
    }
    origin = Date.parse(stretches[0].start);
    end = Date.parse(stretches[stretches.length - 1].end);
    slider.max = String(Math.max(0, (end - origin) / 1000 - 0.04));
    slider.value = "0";
    describe();
    await show();
  }

  async function show() {
    when.textContent = frDateTimeTenths(new Date(now()));
    proposals = null;
    const turn = stills.turn();
    try {
      const at = new Date(now()).toISOString();
      const response = await turn.request("GET", `/api/access-requests/${req.id}/still?camera=${cameraSelect.value}&at=${encodeURIComponent(at)}`, undefined, { raw: true });
      const blob = await response.blob();
      if (!turn.current) return;
      const img = new Image();
      img.src = URL.createObjectURL(blob);
      await img.decode();
      URL.revokeObjectURL(img.src);
      if (!turn.current) return;
      image = img;
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      canvas.dataset.pictureTime = response.headers.get("X-Picture-Time") || "";
      error.textContent = "";
      draw();
    } catch (err) {
      if (superseded(err, turn)) return;
      image = null;
      error.textContent = err.message;
      draw();
    }
  }

  async function propose() {
    const turn = stills.turn();
    try {
      const at = new Date(now()).toISOString();
      const found = await turn.request("GET", `/api/access-requests/${req.id}/proposals?camera=${cameraSelect.value}&at=${encodeURIComponent(at)}`);
      if (!turn.current) return;
      proposals = found;
      info.textContent = `${found.faces.length} visage(s), ${found.vehicles.length} véhicule(s) en mouvement proposés : ceux qui touchent la zone conservée seront floutés.`;
      draw();
    } catch (err) {
      if (!superseded(err, turn)) error.textContent = err.message;
    }
  }

  // --- drawing the requester's box ----------------------------------------------------------
  function toPicture(event) {
    const r = canvas.getBoundingClientRect();
    const x = ((event.clientX - r.left) / r.width) * canvas.width;
    const y = ((event.clientY - r.top) / r.height) * canvas.height;
    return [Math.min(canvas.width, Math.max(0, Math.round(x))), Math.min(canvas.height, Math.max(0, Math.round(y)))];
  }
  canvas.addEventListener("pointerdown", (event) => { if (image) { drag = toPicture(event); canvas.setPointerCapture(event.pointerId); } });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const [x, y] = toPicture(event);
    drawn = [Math.min(x, drag[0]), Math.min(y, drag[1]), Math.abs(x - drag[0]), Math.abs(y - drag[1])];
    draw();
  });
  canvas.addEventListener("pointerup", () => { drag = null; if (drawn && (drawn[2] < 2 || drawn[3] < 2)) drawn = null; draw(); });

  function mark() {
    // Without a new rectangle, the box where the track puts it now, else the nearest mark's.
    const nearest = [...marks].sort((a, b) => Math.abs(a.at - now()) - Math.abs(b.at - now()))[0];
    const box = drawn || boxAt(marks.map((m) => ({ t: m.at, box: m.box })), now()) || nearest?.box;
    if (!box) { error.textContent = "Tracez d'abord sur l'image le rectangle où se trouve le demandeur."; return; }
    const at = now();
    marks = [...marks.filter((m) => Math.abs(m.at - at) > 20), { at, box }].sort((a, b) => a.at - b.at);
    drawn = null;
    error.textContent = "";
    describe(); draw();
  }

  function describe() {
    const first = marks[0]?.at, last = marks[marks.length - 1]?.at;
    // By default the copy spans the marks (one mark alone: a second either side).
    const single = first !== undefined && first === last ? 1000 : 0;
    const start = from ?? (first !== undefined ? Math.max(origin, first - single) : null);
    const stop = to ?? (last !== undefined ? Math.min(end, last + single) : null);
    windowText.textContent = start !== null && stop !== null
      ? `Copie du ${frDateTimeTenths(new Date(start))} au ${frDateTimeTenths(new Date(stop))} (${Math.round((stop - start) / 1000)} s ; 30 min au plus).`
      : "Placez au moins deux repères : la copie va du premier au dernier, sauf si vous fixez son début et sa fin (hors des repères, tout est flouté).";
    clear(marksList, marks.map((m) => h("li", {},
      `${frDateTimeTenths(new Date(m.at))} — zone ${m.box.join(" × ")} `,
      h("button", { type: "button", onclick: () => { slider.value = String((m.at - origin) / 1000); show(); } }, "Voir"),
      h("button", { type: "button", onclick: () => { marks = marks.filter((x) => x !== m); describe(); draw(); } }, "Retirer"))));
    return [start, stop];
  }

  function rect(box, color, width = 2) {
    g.strokeStyle = color; g.lineWidth = width;
    g.strokeRect(box[0] + 0.5, box[1] + 0.5, box[2], box[3]);
  }

  function draw() {
    g.clearRect(0, 0, canvas.width, canvas.height);
    if (image) g.drawImage(image, 0, 0);
    else { g.fillStyle = "#2a2f35"; g.fillRect(0, 0, canvas.width, canvas.height); }
    const kept = boxAt(marks.map((m) => ({ t: m.at, box: m.box })), now());
    if (kept && image) {
      // What the copy will show: the rest darkened here (blurred in the copy).
      g.save(); g.fillStyle = "rgba(0, 0, 0, 0.6)";
      g.beginPath(); g.rect(0, 0, canvas.width, canvas.height); g.rect(kept[0], kept[1], kept[2], kept[3]); g.fill("evenodd"); g.restore();
      rect(kept, "#3ddc84", 3);
    }
    if (drawn) rect(drawn, "#ffd400", 3);
    if (proposals) {
      proposals.faces.forEach((b) => rect(b, "#ff4d4d"));
      proposals.vehicles.forEach((b) => rect(b, "#ff9f1a"));
    }
  }

  async function submit() {
    error.textContent = ""; info.textContent = "";
    const [start, stop] = describe();
    if (start === null || stop === null || !marks.length) { error.textContent = "Placez au moins un repère sur le demandeur."; return; }
    if (stop <= start) { error.textContent = "La fin de la copie doit suivre son début."; return; }
    if ((stop - start) / 1000 > MAX_COPY_S) { error.textContent = "Une copie couvre 30 minutes au plus : faites-en une par moment où la personne apparaît."; return; }
    const inside = marks.filter((m) => m.at >= start && m.at <= stop);
    if (!inside.length) { error.textContent = "Aucun repère dans la période de la copie."; return; }
    try {
      const made = await api.post(`/api/access-requests/${req.id}/copies`, {
        camera: cameraSelect.value, period_start: new Date(start).toISOString(), period_end: new Date(stop).toISOString(),
        keep: inside.map((m) => ({ t: Math.round((m.at - start)) / 1000, box: m.box })), assist: assist.checked,
      });
      info.textContent = made.state === "pending"
        ? `Copie n° ${made.id} demandée : la zone laissée nette couvre plus d'un tiers de l'image, une seconde personne doit l'approuver avant qu'elle ne se prépare.`
        : `Copie n° ${made.id} demandée : elle se prépare (suivez sa progression ci-dessous).`;
      await refresh();
    } catch (err) {
      error.textContent = err.message;
    }
  }

  // --- the request's copies ------------------------------------------------------------------
  function row(c) {
    const base = `/api/access-requests/${req.id}/copies/${c.id}`;
    const viewable = (c.state === "preview" || c.state === "approved") && !c.erased_at;
    const acts = [];
    const mine = c.created_by === me; // four eyes: who asked does not approve
    if (c.state === "pending" && !mine) {
      acts.push(h("button", { type: "button", class: "principal", onclick: async () => {
        try { await api.post(`${base}/approve-box`); await refresh(); } catch (err) { error.textContent = err.message; }
      } }, "Approuver la zone"));
    }
    if (c.state === "preview" && !c.erased_at && !mine) {
      acts.push(h("button", { type: "button", class: "principal", onclick: async () => {
        try { await api.post(`${base}/approve`); await refresh(); } catch (err) { error.textContent = err.message; }
      } }, "Approuver"));
    }
    if ((c.state === "preview" || c.state === "pending") && !c.erased_at) {
      acts.push(h("button", { type: "button", onclick: async () => {
        const done = await ask(`Rejeter la copie n° ${c.id}`, h("label", {}, "Ce qui ne va pas (zone manquée, tiers reconnaissable…)", h("textarea", { name: "reason", required: true })),
          { submit: "Rejeter", onsubmit: (v) => api.post(`${base}/reject`, { reason: v.reason }) });
        if (done) await refresh();
      } }, "Rejeter"));
    }
    if (c.state === "approved" && !c.erased_at) {
      acts.push(h("a", { href: `${base}/download`, download: "", class: "bouton" }, "Télécharger le dossier"));
      if (req.state === "open") acts.push(h("button", { type: "button", onclick: async () => {
        try { await api.post(`/api/access-requests/${req.id}/answer`, { kind: "copy" }); req.state = "answered"; onanswer?.(); } catch (err) { error.textContent = err.message; }
      } }, "Répondre par cette copie"));
    }
    const state = c.state === "building" ? `${STATES[c.state]} (${c.percent} %)` : STATES[c.state];
    return h("tr", { dataset: { id: c.id, state: c.state } },
      h("td", {}, String(c.id)),
      h("td", {}, `${c.camera} : ${frDateTime(c.period_start)} → ${frDateTime(c.period_end)}`),
      h("td", {}, c.erased_at ? `${state}, effacée le ${frDateTime(c.erased_at)}` : state,
        c.error ? h("div", { class: "erreur" }, c.error) : "",
        c.rejected_reason ? h("div", { class: "info" }, c.rejected_reason) : "",
        c.approved_by ? h("div", { class: "info" }, `approuvée par ${c.approved_by} le ${frDateTime(c.approved_at)}`) : "",
        (c.state === "preview" || c.state === "pending") && mine ? h("div", { class: "info" }, "à approuver par une autre personne que vous") : ""),
      h("td", {}, viewable ? h("video", { controls: true, preload: "metadata", src: `${base}/video`, width: 320 }) : ""),
      h("td", { class: "outils" }, acts));
  }

  async function refresh() {
    clearTimeout(poll);
    try {
      const all = await lists.get(`/api/access-requests/${req.id}/copies`);
      if (all === SUPERSEDED) return;
      // Rows whose state did not change are kept: a preview being watched is not reloaded.
      const shown = new Map([...copies.children].map((tr) => [tr.dataset.id, tr]));
      clear(copies, all.map((c) => {
        const old = shown.get(String(c.id));
        return old && old.dataset.state === c.state && c.state !== "building" ? old : row(c);
      }));
      if (all.some((c) => c.state === "queued" || c.state === "building")) poll = setTimeout(refresh, POLL_MS);
    } catch (err) {
      error.textContent = err.message;
    }
  }

  load();
  refresh();
  return () => { clearTimeout(poll); stills.cancel(); lists.cancel(); };
}
