// Mur d'images: the commune's cameras as tiles (latest keyframe, masked), their state, keyboard
// navigation (arrows, Entrée for full screen).
import { h, clear } from "./dom.js";
import { cameraState, fr } from "./fr.js";

const TILE_MS = 2000;

export function mount(main, ctx) {
  const grid = h("div", { class: "mur", role: "grid", "aria-label": "Mur d'images" });
  const tiles = new Map(); // slug -> { figure, img, state, url }
  clear(main, h("h1", {}, `Mur d'images — ${ctx.communeView()?.name ?? ""}`), grid,
    h("p", { class: "info" }, "Flèches pour se déplacer, Entrée pour le plein écran. Les images sont masquées avant d'arriver ici."));

  function open(camera) { ctx.go(`#/camera/${camera.commune}/${camera.slug}`); }

  function render() {
    const cameras = ctx.cameras.filter((c) => c.commune === ctx.commune);
    for (const camera of cameras) {
      let tile = tiles.get(camera.slug);
      if (!tile) {
        const img = h("img", { alt: `Image de ${camera.name}` });
        const picture = h("div", { class: "image" }, img);
        const state = h("span", { class: "etat" });
        const figure = h("figure", {
          class: "tuile", tabindex: 0, role: "gridcell", dataset: { camera: camera.slug },
          onclick: () => open(camera),
          onkeydown: (e) => { if (e.key === "Enter") open(camera); },
        }, picture, h("figcaption", {}, h("span", { class: "nom" }, camera.name), state,
          h("span", { class: "lieu" }, camera.location || "—")));
        tile = { figure, img, picture, state, url: null };
        tiles.set(camera.slug, tile);
        grid.append(figure);
      }
      const [label, css] = cameraState(camera);
      tile.state.textContent = label;
      tile.state.className = `etat ${css}`;
      tile.figure.dataset.etat = label;
      tile.camera = camera;
    }
  }

  async function loadTile(tile) {
    const c = tile.camera;
    if (c.state !== "active") return showNoImage(tile, cameraState(c)[0]);
    try {
      const response = await fetch(`/api/cameras/${c.commune}/${c.slug}/tile.jpg`, { cache: "no-store" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        return showNoImage(tile, fr(body.detail || `erreur ${response.status}`));
      }
      const url = URL.createObjectURL(await response.blob());
      tile.img.onload = () => { if (tile.url) URL.revokeObjectURL(tile.url); tile.url = url; };
      tile.img.src = url;
      tile.img.hidden = false;
      tile.picture.querySelector(".avis")?.remove();
      tile.figure.dataset.captured = response.headers.get("X-Capture-Time") || "";
    } catch { /* the next round retries */ }
  }

  function showNoImage(tile, text) {
    tile.img.hidden = true;
    let note = tile.picture.querySelector(".avis");
    if (!note) tile.picture.append(note = h("div", { class: "avis" }));
    note.textContent = text;
  }

  function move(event) {
    const items = [...grid.children];
    const at = items.indexOf(document.activeElement);
    if (at < 0) return;
    const columns = getComputedStyle(grid).gridTemplateColumns.split(" ").length;
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns }[event.key];
    if (!step) return;
    event.preventDefault();
    items[Math.min(items.length - 1, Math.max(0, at + step))].focus();
  }

  async function refreshTiles() {
    await Promise.all([...tiles.values()].map(loadTile));
  }

  render();
  grid.addEventListener("keydown", move);
  grid.firstElementChild?.focus();
  const onRefresh = () => render();
  document.addEventListener("vigie:refresh", onRefresh);
  refreshTiles();
  const timer = setInterval(refreshTiles, TILE_MS);
  return () => {
    clearInterval(timer);
    document.removeEventListener("vigie:refresh", onRefresh);
    for (const t of tiles.values()) if (t.url) URL.revokeObjectURL(t.url);
  };
}
