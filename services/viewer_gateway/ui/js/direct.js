// Direct: layouts of 1, 2×2, 3×3 or 4×4 panes with live video in each, a camera list with search;
// a camera is dragged (or clicked) into a pane; the view is kept on the server per post and commune,
// so the agent who takes the post, at any of its workstations, finds the screens as they were left.
import { api, latest, SUPERSEDED } from "./api.js";

const savedViews = latest(); // the commune switched while its layout loads: that one wins
import { h, clear, fitToWindow } from "./dom.js";
import { cameraState } from "./fr.js";
import { LivePane } from "./pane.js";

const LAYOUTS = [1, 2, 3, 4];

export async function mount(main, ctx) {
  const note = h("p", { class: "info", role: "status" });
  let saved = { size: 2, cameras: [] };
  try {
    const answer = await savedViews.get(`/api/views/${ctx.commune}`);
    if (answer === SUPERSEDED) return undefined;
    saved = answer;
  } catch (err) {
    note.textContent = `Disposition non conservée : ${err.message}`;
  }
  let size = LAYOUTS.includes(saved.size) ? saved.size : 2;
  let slugs = saved.cameras.map((s) => s || null);
  let chosen = 0; // the pane a click in the list fills
  const panes = new Map(); // index -> LivePane

  const search = h("input", { type: "search", placeholder: "Rechercher une caméra", "aria-label": "Rechercher une caméra" });
  const list = h("ul", { class: "liste-cameras", "aria-label": "Caméras" });
  const grid = h("div", { class: "cases", role: "grid", "aria-label": "Vidéo en direct" });
  const layoutButtons = LAYOUTS.map((n) => h("button", {
    type: "button", "aria-pressed": String(n === size), dataset: { taille: n },
    onclick: () => { size = n; save(); draw(); },
  }, n === 1 ? "1" : `${n}×${n}`));
  clear(main, h("div", { class: "ecran-direct" },
    h("aside", {}, h("h1", {}, "Direct"), h("div", { class: "outils", role: "group", "aria-label": "Disposition" }, layoutButtons),
      search, list, h("p", { class: "info" }, "Glissez une caméra dans une case, ou cliquez-la pour remplir la case choisie. Double-clic sur une case : plein écran."), note),
    grid));

  const unfit = fitToWindow(grid);

  function mine() { return ctx.cameras.filter((c) => c.commune === ctx.commune); }

  let saving = Promise.resolve();
  function save() {
    const view = { size, cameras: Array.from({ length: size * size }, (_, i) => slugs[i] || null) };
    // One after the other: the last layout chosen is the one kept.
    saving = saving.then(() => api.put(`/api/views/${ctx.commune}`, view))
      .then((kept) => { note.textContent = `Disposition du poste « ${kept.post} » conservée.`; },
            (err) => { note.textContent = `Disposition non conservée : ${err.message}`; });
  }

  function drawList() {
    const q = search.value.trim().toLowerCase();
    clear(list, mine().filter((c) => !q || `${c.name} ${c.slug} ${c.location}`.toLowerCase().includes(q)).map((c) => {
      const [label, css] = cameraState(c);
      return h("li", {
        draggable: "true", tabindex: 0, dataset: { camera: c.slug },
        ondragstart: (e) => e.dataTransfer.setData("text/plain", c.slug),
        onclick: () => put(chosen, c.slug),
        onkeydown: (e) => { if (e.key === "Enter") put(chosen, c.slug); },
      }, h("span", {}, c.name), h("span", { class: `etat ${css}` }, label));
    }));
  }

  function put(index, slug) {
    slugs[index] = slug;
    chosen = Math.min(size * size - 1, index + 1);
    save();
    draw();
  }

  function draw() {
    for (const b of layoutButtons) b.setAttribute("aria-pressed", String(Number(b.dataset.taille) === size));
    grid.dataset.taille = size;
    grid.className = `cases cases-${size}`;
    const wanted = size * size;
    // Panes beyond the layout, or whose camera changed, are closed (their view is journaled ended).
    for (const [i, pane] of panes) {
      if (i >= wanted || slugs[i] !== pane.camera.slug) { pane.destroy(); panes.delete(i); }
    }
    const cells = [];
    for (let i = 0; i < wanted; i++) {
      const camera = mine().find((c) => c.slug === slugs[i]);
      let body;
      if (camera) {
        let pane = panes.get(i);
        if (!pane) {
          pane = new LivePane(ctx, camera, { compact: true });
          panes.set(i, pane);
          pane.start(0);
        }
        body = pane.element;
      } else {
        body = h("div", { class: "case-vide" }, "Glissez une caméra ici");
      }
      const close = camera && h("button", { type: "button", class: "fermer", "aria-label": `Retirer ${camera.name}`,
        onclick: (e) => { e.stopPropagation(); slugs[i] = null; save(); draw(); } }, "×");
      cells.push(h("div", {
        class: i === chosen ? "case choisie" : "case", role: "gridcell", tabindex: 0, dataset: { index: i, camera: camera?.slug || "" },
        onclick: () => { chosen = i; markChosen(); },
        ondblclick: () => camera && ctx.go(`#/camera/${camera.commune}/${camera.slug}`),
        ondragover: (e) => e.preventDefault(),
        ondrop: (e) => { e.preventDefault(); const slug = e.dataTransfer.getData("text/plain"); if (slug) put(i, slug); },
      }, body, close));
    }
    clear(grid, cells);
  }

  function markChosen() {
    for (const cell of grid.children) cell.classList.toggle("choisie", Number(cell.dataset.index) === chosen);
  }

  search.addEventListener("input", drawList);
  const onRefresh = () => drawList();
  document.addEventListener("vigie:refresh", onRefresh);
  drawList();
  draw();
  return () => {
    unfit();
    document.removeEventListener("vigie:refresh", onRefresh);
    for (const pane of panes.values()) pane.destroy();
  };
}
