// Plein écran: one camera live over the gateway's WebSocket (fMP4 into MSE), the time each image
// was filmed (R36), the mask version, the camera's state, and why a view was closed.
import { h, clear, frDateTime } from "./dom.js";
import { LIVE_STATES, cameraState, fr } from "./fr.js";
import { Feed } from "./mse.js";

const LIVE_EDGE_S = 1.0;

export async function mount(main, ctx, [commune, slug]) {
  const camera = ctx.cameras.find((c) => c.commune === commune && c.slug === slug);
  if (!camera) {
    clear(main, h("p", { class: "erreur" }, `Aucune caméra ${commune}/${slug} dans vos communes.`));
    return null;
  }
  const video = h("video", { muted: true, autoplay: true, playsinline: true, "aria-label": `Direct ${camera.name}` });
  const clock = h("span", { class: "horodatage" }, "—");
  const version = h("span", { class: "version-masques" }, "");
  const overlay = h("div", { class: "surimpression" }, h("strong", {}, camera.name), " · ", clock, " · ", version);
  const notice = h("div", { class: "avis", hidden: true, role: "alert" });
  const stage = h("div", { class: "lecteur" }, video, overlay, notice);
  const back = h("button", { type: "button", onclick: () => ctx.go("#/mur") }, "← Mur d'images (Échap)");
  const full = h("button", { type: "button", onclick: () => stage.requestFullscreen?.() }, "Plein écran");
  // Going back is consulting a recording (R13): the agent types why before anything plays.
  const replayReason = h("input", { type: "text", required: true, maxlength: "2000", placeholder: "Motif (obligatoire)",
                                    "aria-label": "Motif de la relecture instantanée" });
  const replayForm = h("form", { class: "motif-relecture", hidden: true, onsubmit: (e) => {
    e.preventDefault();
    if (!replayReason.value.trim()) return;
    replayForm.hidden = true;
    start(30, replayReason.value.trim());
  } }, replayReason, h("button", { type: "submit" }, "Lancer la relecture"));
  const replay = ctx.can("playback") && h("button", { type: "button", onclick: () => {
    replayForm.hidden = false;
    replayReason.focus();
  } }, "Relecture instantanée (30 s)");
  const relive = h("button", { type: "button", hidden: true, onclick: () => start(0) }, "Revenir au direct");
  clear(main, h("div", { class: "outils" }, back, h("h1", {}, `${camera.name} — ${camera.location || ""}`), full, replay, relive, replayForm), stage);

  let socket = null;
  let feed = null;
  let origin = null; // capture time (ms) of media time 0
  let closedBy = null;

  function show(text) {
    notice.hidden = !text;
    notice.textContent = text || "";
    stage.dataset.avis = text || "";
  }

  function start(replaySeconds, reason = "") {
    stop();
    closedBy = null;
    show("");
    relive.hidden = !replaySeconds;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({ post: ctx.me.post || "" });
    if (replaySeconds) {
      params.set("replay_s", replaySeconds);
      params.set("reason", reason);
    }
    socket = new WebSocket(`${scheme}://${location.host}/api/cameras/${commune}/${slug}/live?${params}`);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (message) => {
      if (typeof message.data !== "string") {
        feed.append(message.data);
        return;
      }
      const event = JSON.parse(message.data);
      if (event.type === "init") {
        feed?.close();
        feed = new Feed(video);
        feed.onappended = keepLive;
        origin = event.capture_time_ns / 1e6;
        setVersion(event.mask_version);
        show("");
      } else if (event.type === "mask_version") {
        setVersion(event.mask_version);
      } else if (event.type === "state") {
        show(event.state === "live" ? "" : LIVE_STATES[event.state] || event.state);
      } else if (event.type === "closed") {
        closedBy = fr(event.reason);
        feed?.close(); // the right is gone: not even the last picture stays on screen
        feed = null;
        show(`Vue fermée : ${closedBy}`);
        stage.dataset.ferme = "1";
      }
    };
    socket.onclose = (event) => {
      if (!closedBy && event.code >= 4000) show(`Vue fermée : ${fr(event.reason)}`);
      else if (!closedBy && event.code !== 1000) show("Connexion perdue avec la passerelle.");
    };
  }

  function setVersion(v) {
    version.textContent = `masques v${v}`;
    stage.dataset.maskVersion = v;
  }

  function keepLive() {
    // Stay near the live edge: a tab in the background must not come back minutes late.
    const end = feed.bufferedEnd();
    const replaying = !relive.hidden; // an instant replay plays at its own pace
    if (!replaying && end - video.currentTime > LIVE_EDGE_S * 2) video.currentTime = Math.max(0, end - LIVE_EDGE_S / 2);
    feed.trim();
    if (video.paused) video.play().catch(() => {});
  }

  function tick() {
    if (origin !== null && video.currentTime > 0) clock.textContent = frDateTime(new Date(origin + video.currentTime * 1000));
    raf = requestAnimationFrame(tick);
  }
  let raf = requestAnimationFrame(tick);

  function stop() {
    socket?.close(1000);
    socket = null;
    feed?.close();
    feed = null;
  }

  const onKey = (e) => { if (e.key === "Escape" && !document.fullscreenElement) ctx.go("#/mur"); };
  document.addEventListener("keydown", onKey);
  if (camera.state !== "active") show(cameraState(camera)[0]);
  start(0);
  return () => {
    cancelAnimationFrame(raf);
    document.removeEventListener("keydown", onKey);
    stop();
  };
}
