// Masques: the commissioning snapshot (with its reason), polygons drawn, moved and deleted with the
// mouse, a mode per polygon, a masked preview, saving as a new version, approval (including
// « aucun espace privé dans le champ ») and the version history (R1, R2: every step is journaled).
import { api, request, latest, SUPERSEDED } from "./api.js";
import { h, clear, ask, frDateTime } from "./dom.js";
import { MODES } from "./fr.js";

const GRAB_PX = 10;

export async function mount(main, ctx, [preset]) {
  const cameras = ctx.cameras.filter((c) => c.commune === ctx.commune);
  const cameraSelect = h("select", { name: "camera", "aria-label": "Caméra" },
    cameras.map((c) => h("option", { value: c.slug, selected: c.slug === preset }, `${c.name} (${c.slug})`)));
  const canvas = h("canvas", { width: 640, height: 360, tabindex: 0, "aria-label": "Éditeur de masques" });
  const g = canvas.getContext("2d");
  const status = h("p", { class: "info", role: "status" });
  const error = h("p", { class: "erreur", role: "alert" });
  const list = h("ol", { class: "polygones" });
  const history = h("tbody");
  const preview = h("input", { type: "checkbox", name: "apercu" });
  const noPrivate = h("input", { type: "checkbox", name: "aucun" });
  const drawBtn = h("button", { type: "button", onclick: () => startDrawing() }, "Nouveau polygone");
  const finishBtn = h("button", { type: "button", hidden: true, onclick: () => finishDrawing() }, "Terminer le polygone");
  const saveBtn = h("button", { type: "button", class: "principal", onclick: () => save() }, "Enregistrer une nouvelle version");
  const approveBtn = h("button", { type: "button", onclick: () => approve() }, "Approuver");

  clear(main, h("h1", {}, "Masques des espaces privés"),
    h("div", { class: "outils" }, cameraSelect,
      h("button", { type: "button", onclick: () => takeSnapshot() }, "Instantané de mise en service…"),
      drawBtn, finishBtn, h("label", {}, preview, " Aperçu masqué")),
    status, error,
    h("div", { class: "masques" },
      h("div", {}, canvas, h("p", { class: "info" },
        "Cliquez pour poser les points ; cliquez sur le premier point (ou « Terminer ») pour fermer. ",
        "Glissez un point pour le déplacer, l'intérieur pour déplacer le polygone ; Suppr efface le polygone choisi.")),
      h("div", {}, h("h2", {}, "Polygones"), list,
        h("div", { class: "outils" }, saveBtn),
        h("h2", {}, "Approbation"),
        h("label", {}, noPrivate, " Aucun espace privé dans le champ"),
        h("div", { class: "outils" }, approveBtn),
        h("h2", {}, "Historique des versions"),
        h("table", {}, h("thead", {}, h("tr", {}, ["Version", "Auteur", "Créée", "Approuvée", "Polygones", ""].map((t) => h("th", {}, t)))), history))));

  let image = null; // the snapshot, in memory only (never stored)
  let polygons = []; // [{ label, mode, points: [[x, y], …] }] normalised
  let selected = -1;
  let drawing = null; // points of the polygon being drawn
  let drag = null; // { poly, vertex | null, from: [x, y], points }
  let versions = [];

  const slug = () => cameraSelect.value;
  const base = () => `/api/cameras/${ctx.commune}/${slug()}`;

  const versionsAsked = latest(); // another camera chosen meanwhile: its answer is the one shown

  async function loadVersions(pick = true) {
    error.textContent = "";
    let answer = [];
    try {
      answer = await versionsAsked.get(`${base()}/masks`);
    } catch (err) {
      error.textContent = err.message;
    }
    if (answer === SUPERSEDED) return;
    versions = answer;
    clear(history, versions.map((v) => h("tr", { dataset: { version: v.version } },
      h("td", {}, `v${v.version}`, v.applied ? h("strong", {}, " (appliquée)") : ""),
      h("td", {}, v.author), h("td", {}, frDateTime(v.created_at)),
      h("td", {}, v.approved_at ? `${v.approved_by}, ${frDateTime(v.approved_at)}${v.approved_by === v.author ? " (auto-approbation)" : ""}` : "non approuvée"),
      h("td", {}, String(v.document.masks.length)),
      h("td", {}, h("button", { type: "button", onclick: () => use(v) }, "Charger")))));
    if (pick && versions.length) use(versions[0]);
    else if (pick) { polygons = []; renderList(); draw(); }
    updateApproval();
  }

  function use(v) {
    polygons = structuredClone(v.document.masks);
    selected = -1;
    status.textContent = `Version ${v.version} chargée${v.approved_at ? "" : " (non approuvée)"}.`;
    renderList();
    draw();
  }

  function updateApproval() {
    // Newest first: only the newest version, if not approved yet, can be approved.
    const pending = versions[0] && !versions[0].approved_at ? versions[0] : null;
    approveBtn.disabled = !pending;
    approveBtn.textContent = pending ? `Approuver la version ${pending.version}` : "Aucune version à approuver";
    approveBtn.dataset.version = pending?.version ?? "";
  }

  async function takeSnapshot() {
    const camera = ctx.cameras.find((c) => c.commune === ctx.commune && c.slug === slug());
    // No picture comes from a camera that is offline or has no source: say it rather than promise
    // a keyframe that will never come (issue 18).
    if (camera && (!camera.has_source || camera.online === false)) {
      error.textContent = camera.has_source
        ? `${camera.name} est hors ligne : pas d'image à photographier. Vérifiez la caméra et son réseau, puis réessayez.`
        : `${camera.name} n'a pas d'adresse RTSP : renseignez-la dans Administration › Caméras.`;
      return;
    }
    error.textContent = "";
    // A camera in service is re-surveyed: allowed a few times an hour, and journaled as such.
    const resurvey = camera?.state === "active";
    const result = await ask(resurvey ? "Instantané de révision du champ" : "Instantané de mise en service", [
      h("p", { class: "info" }, "L'instantané montre l'image non masquée : il n'est ni enregistré ni conservé, sa consultation est inscrite au registre."),
      resurvey && h("p", { class: "info" }, "Caméra en service : cet instantané est une révision du champ, limitée à trois par heure."),
      h("label", {}, "Motif (obligatoire)", h("textarea", { name: "reason", rows: 2, required: true })),
    ], {
      submit: "Prendre l'instantané",
      onsubmit: async (v) => {
        const response = await request("POST", `${base()}/snapshot`, { reason: v.reason, resurvey }, { raw: true });
        return response.blob();
      },
    });
    if (!result) return;
    const url = URL.createObjectURL(result);
    const img = new Image();
    img.onload = () => {
      image = img;
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      canvas.dataset.snapshot = "1";
      URL.revokeObjectURL(url);
      draw();
    };
    img.src = url;
  }

  // --- geometry -------------------------------------------------------------------------------
  function toNorm(event) {
    const box = canvas.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((event.clientX - box.left) / box.width), clamp((event.clientY - box.top) / box.height)];
  }
  function pixelsApart(a, b) {
    const box = canvas.getBoundingClientRect();
    return Math.hypot((a[0] - b[0]) * box.width, (a[1] - b[1]) * box.height);
  }
  function inside(p, points) {
    let hit = false;
    for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
      const [xi, yi] = points[i], [xj, yj] = points[j];
      if ((yi > p[1]) !== (yj > p[1]) && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) hit = !hit;
    }
    return hit;
  }

  // --- drawing --------------------------------------------------------------------------------
  function path(points) {
    g.beginPath();
    points.forEach(([x, y], i) => (i ? g.lineTo(x * canvas.width, y * canvas.height) : g.moveTo(x * canvas.width, y * canvas.height)));
    g.closePath();
  }

  function draw() {
    const W = canvas.width, H = canvas.height;
    g.save();
    g.filter = "none";
    if (image) g.drawImage(image, 0, 0, W, H);
    else {
      g.fillStyle = "#2a2f35";
      g.fillRect(0, 0, W, H);
      g.fillStyle = "#9fb0c0";
      g.font = `${Math.round(H / 18)}px sans-serif`;
      g.fillText("Pas d'instantané : prenez-en un pour dessiner sur l'image", W * 0.05, H * 0.5);
    }
    g.restore();
    polygons.forEach((poly, i) => {
      if (preview.checked) return masked(poly);
      path(poly.points);
      g.fillStyle = i === selected ? "rgba(255,210,74,.35)" : "rgba(61,127,217,.35)";
      g.fill();
      g.lineWidth = Math.max(2, canvas.width / 320);
      g.strokeStyle = i === selected ? "#ffd24a" : "#3d7fd9";
      g.stroke();
      for (const [x, y] of poly.points) g.fillRect(x * canvas.width - 3, y * canvas.height - 3, 7, 7);
    });
    if (drawing?.length) {
      g.beginPath();
      drawing.forEach(([x, y], i) => (i ? g.lineTo(x * W, y * H) : g.moveTo(x * W, y * H)));
      g.strokeStyle = "#ff5a5a";
      g.lineWidth = Math.max(2, W / 320);
      g.stroke();
      for (const [x, y] of drawing) { g.fillStyle = "#ff5a5a"; g.fillRect(x * W - 4, y * H - 4, 9, 9); }
    }
  }

  /** The preview of what masking will burn in: opaque, pixelated or blurred. */
  function masked(poly) {
    g.save();
    path(poly.points);
    g.clip();
    if (poly.mode === "fill" || !image) {
      g.fillStyle = "#000";
      g.fillRect(0, 0, canvas.width, canvas.height);
    } else if (poly.mode === "pixelate") {
      const small = document.createElement("canvas");
      small.width = Math.max(1, Math.round(canvas.width / 16));
      small.height = Math.max(1, Math.round(canvas.height / 16));
      small.getContext("2d").drawImage(image, 0, 0, small.width, small.height);
      g.imageSmoothingEnabled = false;
      g.drawImage(small, 0, 0, canvas.width, canvas.height);
    } else {
      g.filter = `blur(${Math.round(canvas.width / 40)}px)`;
      g.drawImage(image, 0, 0, canvas.width, canvas.height);
    }
    g.restore();
  }

  function renderList() {
    clear(list, polygons.map((poly, i) => h("li", { class: i === selected ? "choisi" : "", dataset: { index: i } },
      h("input", { value: poly.label, placeholder: "libellé (ex. fenêtres n°12)", "aria-label": `Libellé du polygone ${i + 1}`,
        oninput: (e) => { poly.label = e.target.value; } }),
      h("select", { "aria-label": `Mode du polygone ${i + 1}`, onchange: (e) => { poly.mode = e.target.value; draw(); } },
        Object.entries(MODES).map(([k, v]) => h("option", { value: k, selected: k === poly.mode }, v))),
      h("button", { type: "button", class: "danger", onclick: () => remove(i) }, "Supprimer"))));
    noPrivate.disabled = polygons.length > 0;
    if (polygons.length) noPrivate.checked = false;
  }

  function remove(i) {
    polygons.splice(i, 1);
    selected = -1;
    renderList();
    draw();
  }

  function startDrawing() {
    drawing = [];
    selected = -1;
    finishBtn.hidden = false;
    status.textContent = "Dessin : cliquez pour poser les points du polygone.";
    canvas.focus();
    draw();
  }

  function finishDrawing() {
    if (drawing && drawing.length >= 3) {
      polygons.push({ label: "", mode: "fill", points: drawing });
      selected = polygons.length - 1;
      status.textContent = `Polygone ${polygons.length} ajouté : enregistrez une nouvelle version pour le garder.`;
    } else if (drawing) {
      status.textContent = "Un polygone a au moins 3 points.";
    }
    drawing = null;
    finishBtn.hidden = true;
    renderList();
    draw();
  }

  canvas.addEventListener("mousedown", (event) => {
    const p = toNorm(event);
    if (drawing) {
      if (drawing.length >= 3 && pixelsApart(p, drawing[0]) <= GRAB_PX) return finishDrawing();
      drawing.push(p);
      return draw();
    }
    for (let i = polygons.length - 1; i >= 0; i--) {
      const vertex = polygons[i].points.findIndex((q) => pixelsApart(p, q) <= GRAB_PX);
      if (vertex >= 0 || inside(p, polygons[i].points)) {
        selected = i;
        drag = { poly: polygons[i], vertex: vertex >= 0 ? vertex : null, from: p, points: structuredClone(polygons[i].points) };
        renderList();
        return draw();
      }
    }
    selected = -1;
    renderList();
    draw();
  });
  canvas.addEventListener("mousemove", (event) => {
    if (!drag) return;
    const p = toNorm(event);
    const dx = p[0] - drag.from[0], dy = p[1] - drag.from[1];
    const clamp = (v) => Math.min(1, Math.max(0, v));
    if (drag.vertex !== null) drag.poly.points[drag.vertex] = p;
    else drag.poly.points = drag.points.map(([x, y]) => [clamp(x + dx), clamp(y + dy)]);
    draw();
  });
  window.addEventListener("mouseup", onUp);
  function onUp() { drag = null; }
  canvas.addEventListener("dblclick", () => drawing && finishDrawing());
  canvas.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && drawing) { drawing = null; finishBtn.hidden = true; draw(); }
    if ((event.key === "Delete" || event.key === "Backspace") && selected >= 0 && !drawing) remove(selected);
  });
  preview.addEventListener("change", draw);

  async function save() {
    error.textContent = "";
    try {
      const saved = await api.post(`${base()}/masks`, {
        masks: polygons.map((p) => ({ label: p.label, mode: p.mode, points: p.points.map(([x, y]) => [+x.toFixed(5), +y.toFixed(5)]) })),
      });
      status.textContent = `Version ${saved.version} enregistrée (${saved.document.masks.length} polygone(s)) : elle s'appliquera une fois approuvée.`;
      await loadVersions(false);
    } catch (err) {
      error.textContent = err.message;
    }
  }

  async function approve() {
    error.textContent = "";
    const version = approveBtn.dataset.version;
    const pending = versions.find((v) => String(v.version) === version);
    if (pending && pending.author === ctx.me.username) {
      // Four eyes are better: ask for a second person, and say plainly what approving alone means.
      const alone = await ask(`Approuver votre propre version ${version} ?`, [
        h("p", {}, "Vous avez dessiné cette version. Il est préférable qu'un second administrateur des masques la vérifie et l'approuve."),
        h("p", { class: "info" }, "Si vous l'approuvez vous-même, le registre l'inscrit comme auto-approbation."),
      ], { submit: "Approuver quand même" });
      if (!alone) return;
    }
    try {
      const done = await api.post(`${base()}/masks/${version}/approve`, { no_private_space: noPrivate.checked });
      status.textContent = `Version ${done.version} approuvée : le masquage l'applique dès la prochaine image clé.`;
      await loadVersions(false);
    } catch (err) {
      error.textContent = err.message;
    }
  }

  cameraSelect.addEventListener("change", () => {
    status.textContent = ""; // the previous camera's news is not this one's
    error.textContent = "";
    drawing = null;
    finishBtn.hidden = true;
    image = null;
    delete canvas.dataset.snapshot;
    canvas.width = 640;
    canvas.height = 360;
    loadVersions();
  });
  await loadVersions();
  return () => { versionsAsked.cancel(); window.removeEventListener("mouseup", onUp); };
}
