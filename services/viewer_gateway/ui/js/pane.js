// One live pane: a camera over the gateway's WebSocket (fMP4 into MSE), in the full screen and in
// each pane of a layout. It says « DIRECT » or « DIFFÉRÉ », the time each image was filmed to the
// tenth of a second (R36, and as ISO 8601 in data-capture-time), and covers the picture with the
// reason whenever it is not live: a frozen image must never pass for a live one (issue 18).
import { h, frDateTimeTenths } from "./dom.js";
import { LIVE_STATES, fr } from "./fr.js";
import { Feed } from "./mse.js";

const LIVE_EDGE_S = 1.0;
const SILENT_S = 5;
const RETRY_MS = 3000; // no bytes for this long while the socket is open: the picture is frozen

export class LivePane {
  constructor(ctx, camera, { compact = false } = {}) {
    this.ctx = ctx;
    this.camera = camera;
    this.video = h("video", { muted: true, autoplay: true, playsinline: true, "aria-label": `Direct ${camera.name}` });
    this.clock = h("span", { class: "horodatage" }, "—");
    this.mode = h("span", { class: "mode mode-direct" }, "DIRECT");
    this.version = h("span", { class: "version-masques" }, "");
    this.notice = h("div", { class: "avis", hidden: true, role: "alert" });
    this.banner = h("div", { class: "bandeau-etat", hidden: true, role: "status" });
    this.overlay = h("div", { class: "surimpression" }, h("strong", {}, camera.name), " ", this.mode, " ", this.clock,
      compact ? "" : h("span", {}, " · ", this.version));
    this.element = h("div", { class: compact ? "lecteur case-lecteur" : "lecteur", dataset: { camera: camera.slug, mode: "direct" } },
      this.video, this.overlay, this.banner, this.notice);
    this.socket = null;
    this.feed = null;
    this.origin = null; // capture time (ms) of media time 0
    this.closedBy = null;
    this.replaying = false;
    this.lastBytes = 0;
    this.state = null; // the gateway's last word on the camera, null when live
    this.raf = requestAnimationFrame(() => this.tick());
  }

  /** Live (replaySeconds = 0) or an instant replay of the last seconds, with its reason (R13). */
  start(replaySeconds = 0, reason = "") {
    this.stop();
    this.closedBy = null;
    this.state = null;
    this.replaying = replaySeconds > 0;
    this.mode.textContent = this.replaying ? "DIFFÉRÉ" : "DIRECT";
    this.mode.className = `mode ${this.replaying ? "mode-differe" : "mode-direct"}`;
    this.element.dataset.mode = this.replaying ? "differe" : "direct";
    this.origin = null;
    this.clock.textContent = "—";
    this.show("Connexion…");
    this.lastBytes = performance.now();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({ post: this.ctx.me.post || "" });
    if (replaySeconds) {
      params.set("replay_s", replaySeconds);
      params.set("reason", reason);
    }
    const { commune, slug } = this.camera;
    const socket = new WebSocket(`${scheme}://${location.host}/api/cameras/${commune}/${slug}/live?${params}`);
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      if (typeof message.data !== "string") {
        this.lastBytes = performance.now();
        this.feed?.append(message.data).catch(() => {});
        return;
      }
      this.onEvent(JSON.parse(message.data));
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      if (!this.closedBy && event.code >= 4000) this.closed(fr(event.reason));
      else if (!this.closedBy && event.code !== 1000) {
        // A gateway restarted or a network cut: the picture goes, and the live view comes back
        // by itself (a wall left dark until someone notices is no wall). A replay is not resumed.
        this.feed?.close();
        this.feed = null;
        this.show(this.replaying ? "Connexion perdue avec la passerelle." : "Connexion perdue avec la passerelle : nouvelle tentative…");
        if (!this.replaying) this.retry = setTimeout(() => this.start(0), RETRY_MS);
      }
    };
  }

  onEvent(event) {
    if (event.type === "init") {
      this.feed?.close();
      this.feed = new Feed(this.video);
      this.feed.onappended = () => this.keepLive();
      this.origin = event.capture_time_ns / 1e6;
      this.setVersion(event.mask_version);
      this.state = null;
      this.show("");
    } else if (event.type === "mask_version") {
      this.setVersion(event.mask_version);
    } else if (event.type === "state") {
      this.state = event.state === "live" ? null : event.state;
      this.showState();
    } else if (event.type === "closed") {
      this.closed(fr(event.reason));
    }
  }

  closed(reason) {
    this.closedBy = reason;
    this.feed?.close(); // the right is gone: not even the last picture stays on screen
    this.feed = null;
    this.show(`Vue fermée : ${reason}`);
    this.element.dataset.ferme = "1";
  }

  /** The camera's state, as the gateway says it when no picture comes. Live: it covers the last
   * picture. Replay: what was recorded before still plays, with the state in a banner. */
  showState() {
    const text = this.state ? LIVE_STATES[this.state] || this.state : "";
    this.element.dataset.statut = this.state || "live";
    if (this.replaying && this.origin !== null) {
      this.banner.hidden = !text;
      this.banner.textContent = text ? `${text} : la relecture montre ce qui a été filmé avant.` : "";
    } else {
      this.show(text);
    }
  }

  show(text) {
    this.notice.hidden = !text;
    this.notice.textContent = text || "";
    this.element.dataset.avis = text || "";
  }

  setVersion(v) {
    this.version.textContent = `masques v${v}`;
    this.element.dataset.maskVersion = v;
  }

  keepLive() {
    // Stay near the live edge: a tab in the background must not come back minutes late.
    const end = this.feed.bufferedEnd();
    const video = this.video;
    if (!this.replaying && end - video.currentTime > LIVE_EDGE_S * 2) video.currentTime = Math.max(0, end - LIVE_EDGE_S / 2);
    this.feed.trim();
    if (video.paused) video.play().catch(() => {});
  }

  tick() {
    const video = this.video;
    if (this.origin !== null && video.currentTime > 0) {
      const t = new Date(this.origin + video.currentTime * 1000);
      this.clock.textContent = frDateTimeTenths(t);
      this.element.dataset.captureTime = t.toISOString();
    }
    // Fail closed on the client too: a gateway that froze sends neither bytes nor a state.
    if (this.socket && !this.closedBy && !this.state && this.origin !== null && !this.replaying) {
      const silent = (performance.now() - this.lastBytes) / 1000;
      if (silent > SILENT_S) this.show(`Aucune image reçue depuis ${Math.round(silent)} s : image figée masquée.`);
      else if (this.notice.textContent.startsWith("Aucune image reçue")) this.show("");
    }
    if (this.replaying && this.state && this.origin !== null && this.feed &&
        video.currentTime >= this.feed.bufferedEnd() - 0.2) {
      this.show(`${LIVE_STATES[this.state] || this.state} : fin de ce qui a été filmé.`);
    }
    this.raf = requestAnimationFrame(() => this.tick());
  }

  stop() {
    clearTimeout(this.retry);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000);
    this.feed?.close();
    this.feed = null;
    this.banner.hidden = true;
  }

  destroy() {
    cancelAnimationFrame(this.raf);
    this.stop();
  }
}
