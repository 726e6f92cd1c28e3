// Mur d'images: the commune's cameras as tiles (latest keyframe, masked), their state, keyboard
// navigation (arrows, Entrée for full screen).
import { h, clear, frAge, frTime } from "./dom.js";
import { cameraState, frProblem } from "./fr.js";

const TILE_MS = 2000;
const STALE_MS = 10_000; // a tile older than this says its age, dimmed, whatever the camera's state

export function mount(main, ctx) {
  const grid = h("div", { class: "mur", role: "grid", "aria-label": "Mur d'images" });
  const tiles = new Map(); // slug -> { figure, img, state, url }
  clear(main, h("h1", {}, `Mur d'images — ${ctx.communeView()?.name ?? ""}`), grid,
    h("p", { class: "info" }, "Flèches pour se déplacer, Entrée pour le plein écran. Les images sont masquées avant d'arriver ici."));

  function open(camera) {
    sessionStorage.setItem("vigie.focus", `${camera.commune}/${camera.slug}`);
    ctx.go(`#/camera/${camera.commune}/${camera.slug}`);
  }

  function render() {
    const cameras = ctx.cameras.filter((c) => c.commune === ctx.commune);
    for (const camera of cameras) {
      let tile = tiles.get(camera.slug);
      if (!tile) {
        const img = h("img", { alt: `Image de ${camera.name}`, hidden: true }); // no broken-image icon before the first picture
        const age = h("div", { class: "age", hidden: true, role: "status" });
        const picture = h("div", { class: "image" }, img, age);
        const state = h("span", { class: "etat" });
        const figure = h("figure", {
          class: "tuile", tabindex: 0, role: "gridcell", dataset: { camera: camera.slug },
          onclick: () => open(camera),
          onkeydown: (e) => { if (e.key === "Enter") open(camera); },
        }, picture, h("figcaption", {}, h("span", { class: "nom" }, camera.name), state,
          h("span", { class: "lieu" }, camera.location || "—")));
        tile = { figure, img, picture, state, age, url: null, captured: null };
        tiles.set(camera.slug, tile);
        grid.append(figure);
      }
      const [label, css] = cameraState(camera);
      tile.state.textContent = label;
      tile.state.className = `etat ${css}`;
      tile.figure.dataset.etat = label;
      tile.camera = camera;
      showAge(tile);
    }
  }

  /** A picture that is not live says so: dimmed, with when it was filmed (issue 18: an offline
   * camera's last picture, minutes old, looked live). */
  function showAge(tile) {
    const old = tile.captured ? Date.now() - tile.captured : 0;
    const offline = tile.camera.status !== "online";
    const stale = !tile.img.hidden && (offline || old > STALE_MS);
    tile.picture.classList.toggle("perimee", stale);
    tile.age.hidden = !stale;
    tile.figure.dataset.perimee = stale ? "1" : "";
    if (stale) {
      tile.age.textContent = `${cameraState(tile.camera)[0].toUpperCase()} — image de ${frTime(tile.captured, true)} (${frAge(old)})`;
    }
  }

  async function loadTile(tile) {
    const c = tile.camera;
    if (c.state !== "active") return showNoImage(tile, cameraState(c)[0]);
    try {
      const response = await fetch(`/api/cameras/${c.commune}/${c.slug}/tile.jpg`, { cache: "no-store" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        return showNoImage(tile, frProblem(body, response.status));
      }
      const url = URL.createObjectURL(await response.blob());
      tile.img.onload = () => { if (tile.url) URL.revokeObjectURL(tile.url); tile.url = url; };
      tile.img.src = url;
      tile.img.hidden = false;
      tile.picture.querySelector(".avis")?.remove();
      tile.figure.dataset.captured = response.headers.get("X-Capture-Time") || "";
      tile.captured = Date.parse(tile.figure.dataset.captured) || null;
      showAge(tile);
    } catch { /* the next round retries */ }
  }

  function showNoImage(tile, text) {
    tile.img.hidden = true;
    tile.age.hidden = true;
    tile.picture.classList.remove("perimee");
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

  /** As many columns as make the tiles largest while all of them fit the screen below the title
   * (issue 38: tiles of 20em left most of a 1920×1080 screen empty); past a minimum size the
   * wall scrolls instead (a 43-camera commune). A 4:3 picture and its two-line caption. */
  function fitColumns() {
    const count = grid.children.length;
    if (!count) return;
    const width = grid.clientWidth;
    const height = Math.max(200, window.innerHeight - grid.getBoundingClientRect().top - 48);
    const gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
    const caption = 56;
    const smallest = 220;
    let best = 1, bestWidth = 0;
    for (let columns = 1; columns <= count; columns++) {
      const rows = Math.ceil(count / columns);
      const byWidth = (width - gap * (columns - 1)) / columns;
      const byHeight = ((height - gap * (rows - 1)) / rows - caption) * 4 / 3;
      const tile = Math.min(byWidth, byHeight);
      if (tile > bestWidth) { best = columns; bestWidth = tile; }
    }
    if (bestWidth < smallest) best = Math.max(1, Math.floor((width + gap) / (smallest + gap)));
    grid.style.gridTemplateColumns = `repeat(${best}, minmax(0, 1fr))`;
    // Not wider than the screen's height allows: the whole picture stays in view.
    grid.style.maxWidth = bestWidth >= smallest ? `${Math.ceil(best * bestWidth + gap * (best - 1))}px` : "";
    grid.dataset.colonnes = String(best);
  }

  async function refreshTiles() {
    await Promise.all([...tiles.values()].map(loadTile));
  }

  render();
  fitColumns();
  const resized = new ResizeObserver(() => fitColumns());
  resized.observe(main);
  grid.addEventListener("keydown", move);
  // Back from a full screen: the focus returns to the tile that was opened.
  const back = sessionStorage.getItem("vigie.focus");
  sessionStorage.removeItem("vigie.focus");
  const opened = back && [...tiles.values()].find((t) => `${t.camera.commune}/${t.camera.slug}` === back);
  (opened?.figure || grid.firstElementChild)?.focus();
  const onRefresh = () => { render(); fitColumns(); };
  document.addEventListener("vigie:refresh", onRefresh);
  refreshTiles();
  const timer = setInterval(refreshTiles, TILE_MS);
  return () => {
    clearInterval(timer);
    resized.disconnect();
    document.removeEventListener("vigie:refresh", onRefresh);
    for (const t of tiles.values()) if (t.url) URL.revokeObjectURL(t.url);
  };
}
