// Plein écran: one camera live (LivePane), enlarged to the player; instant replay with its reason
// (R13) marked « DIFFÉRÉ »; digital zoom on the masked picture (wheel, drag, « 1:1 »); Échap goes
// back to the wall with the focus on the tile that was opened.
import { h, clear, fitToWindow } from "./dom.js";
import { cameraState } from "./fr.js";
import { LivePane } from "./pane.js";
import { mayVerbalise, verbalisationPanel } from "./verbalisation.js";

const MAX_ZOOM = 8;

export async function mount(main, ctx, [commune, slug]) {
  const camera = ctx.cameras.find((c) => c.commune === commune && c.slug === slug);
  if (!camera) {
    clear(main, h("p", { class: "erreur" }, `Aucune caméra ${commune}/${slug} dans vos communes.`));
    return null;
  }
  const pane = new LivePane(ctx, camera);
  const stage = pane.element;
  const back = h("button", { type: "button", onclick: () => goBack() }, "← Mur d'images (Échap)");
  const full = h("button", { type: "button", onclick: () => stage.requestFullscreen?.() }, "Plein écran");
  const zoomLabel = h("span", { class: "info", "aria-live": "polite" }, "zoom ×1");
  const unzoom = h("button", { type: "button", onclick: () => zoom.reset() }, "1:1");
  // Going back is consulting a recording (R13): the agent types why before anything plays.
  const replayReason = h("input", { type: "text", required: true, maxlength: "2000", placeholder: "Motif (obligatoire)",
                                    "aria-label": "Motif de la relecture instantanée" });
  const replayForm = h("form", { class: "motif-relecture", hidden: true, onsubmit: (e) => {
    e.preventDefault();
    if (!replayReason.value.trim()) return;
    replayForm.hidden = true;
    relive.hidden = false;
    pane.start(30, replayReason.value.trim());
  } }, replayReason, h("button", { type: "submit" }, "Lancer la relecture"));
  const replay = ctx.can("playback") && h("button", { type: "button", onclick: () => {
    replayForm.hidden = false;
    replayReason.focus();
  } }, "Relecture instantanée (30 s)");
  const relive = h("button", { type: "button", hidden: true, onclick: () => { relive.hidden = true; pane.start(0); } }, "Revenir au direct");
  // Vidéo-verbalisation (R31, R32): only where the agent is listed and the camera authorised.
  let panel = null;
  const verbalise = mayVerbalise(ctx, camera) && h("button", { type: "button", "aria-pressed": "false", onclick: () => {
    if (panel) {
      panel.destroy(); panel.element.remove(); panel = null;
      verbalise.setAttribute("aria-pressed", "false");
      return;
    }
    panel = verbalisationPanel(ctx, camera, pane);
    main.append(panel.element);
    verbalise.setAttribute("aria-pressed", "true");
  } }, "Verbalisation");
  clear(main, h("div", { class: "outils" }, back, h("h1", {}, camera.location ? `${camera.name} — ${camera.location}` : camera.name), full, replay,
    relive, replayForm, verbalise, zoomLabel, unzoom), stage);

  const unfit = fitToWindow(stage);
  const zoom = digitalZoom(stage, pane.video, (k) => {
    zoomLabel.textContent = `zoom ×${k.toFixed(1).replace(".", ",")}`;
    stage.dataset.zoom = k.toFixed(2);
  });

  function goBack() {
    sessionStorage.setItem("vigie.focus", `${commune}/${slug}`); // the wall puts the focus back here
    ctx.go("#/mur");
  }

  const onKey = (e) => { if (e.key === "Escape" && !document.fullscreenElement && !document.querySelector("dialog[open]")) goBack(); };
  document.addEventListener("keydown", onKey);
  if (camera.state !== "active") pane.show(cameraState(camera)[0]);
  pane.start(0);
  return () => {
    unfit();
    document.removeEventListener("keydown", onKey);
    panel?.destroy();
    pane.destroy();
  };
}

/** Wheel zooms around the pointer, a drag pans; the transform is set through the CSSOM (the page's
 * Content-Security-Policy forbids inline style attributes, not this). Only the masked picture the
 * gateway sent is enlarged: nothing here can show more than it. */
function digitalZoom(stage, video, onchange) {
  let k = 1, x = 0, y = 0, drag = null;
  const apply = () => {
    const box = stage.getBoundingClientRect();
    x = Math.min(0, Math.max(box.width * (1 - k), x));
    y = Math.min(0, Math.max(box.height * (1 - k), y));
    video.style.transformOrigin = "0 0";
    video.style.transform = k === 1 ? "" : `translate(${x}px, ${y}px) scale(${k})`;
    onchange(k);
  };
  stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    const box = stage.getBoundingClientRect();
    const px = e.clientX - box.left, py = e.clientY - box.top;
    const next = Math.min(MAX_ZOOM, Math.max(1, k * (e.deltaY < 0 ? 1.25 : 0.8)));
    x = px - ((px - x) * next) / k;
    y = py - ((py - y) * next) / k;
    k = next;
    apply();
  }, { passive: false });
  stage.addEventListener("pointerdown", (e) => { if (k > 1) drag = { sx: e.clientX, sy: e.clientY, x, y }; });
  window.addEventListener("pointerup", () => { drag = null; });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    x = drag.x + e.clientX - drag.sx;
    y = drag.y + e.clientY - drag.sy;
    apply();
  });
  return { reset() { k = 1; x = 0; y = 0; apply(); } };
}
