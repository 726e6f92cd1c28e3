// The playback timeline, drawn on a canvas (the page's Content-Security-Policy refuses inline
// styles, which left the old one hatched from end to end): recorded segments, gaps, bookmarks and
// the time being played; zoom from the whole period down to a minute (wheel or buttons), drag to
// pan, click to choose an instant. The window shown is in data-from / data-to (ISO 8601).
import { h, frTime, frDateTime } from "./dom.js";

const ZOOMS = [["Période", null], ["1 h", 3600e3], ["10 min", 600e3], ["1 min", 60e3]];
const MIN_SPAN = 30e3;

export class Timeline {
  constructor({ onpick }) {
    this.onpick = onpick;
    this.canvas = h("canvas", { class: "frise", tabindex: 0, role: "slider", "aria-label": "Frise des enregistrements" });
    this.legend = h("div", { class: "frise-legende" });
    const zoomButtons = ZOOMS.map(([label, span]) => h("button", { type: "button", onclick: () => this.zoomTo(span) }, label));
    this.element = h("div", { class: "frise-bloc", hidden: true },
      h("div", { class: "outils", role: "group", "aria-label": "Zoom de la frise" }, "Zoom :", zoomButtons,
        h("button", { type: "button", "aria-label": "Plus tôt", onclick: () => this.pan(-0.5) }, "◀"),
        h("button", { type: "button", "aria-label": "Plus tard", onclick: () => this.pan(0.5) }, "▶")),
      this.canvas, this.legend);
    this.period = null; // { start, end } in ms
    this.view = null; // { from, to } in ms
    this.segments = [];
    this.gaps = [];
    this.recording = null;
    this.bookmarks = [];
    this.cursor = null;
    this.drag = null;
    this.canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const t = this.timeAt(e.clientX);
      this.zoomAround(t, e.deltaY < 0 ? 0.6 : 1 / 0.6);
    }, { passive: false });
    this.canvas.addEventListener("pointerdown", (e) => { this.drag = { x: e.clientX, view: { ...this.view }, moved: false }; });
    this.canvas.addEventListener("pointermove", (e) => {
      if (!this.drag) return;
      const dx = e.clientX - this.drag.x;
      if (Math.abs(dx) > 4) this.drag.moved = true;
      if (!this.drag.moved) return;
      const per = (this.drag.view.to - this.drag.view.from) / this.canvas.clientWidth;
      this.setView(this.drag.view.from - dx * per, this.drag.view.to - dx * per);
    });
    this.canvas.addEventListener("pointerup", (e) => {
      const drag = this.drag;
      this.drag = null;
      if (drag && !drag.moved) this.onpick(new Date(this.timeAt(e.clientX)));
    });
    this.canvas.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 10e3, ArrowLeft: -10e3 }[e.key];
      if (step && this.cursor !== null) { e.preventDefault(); this.onpick(new Date(this.cursor + step)); }
    });
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  set(start, end, segments, gaps, recording = null) {
    this.period = { start: start.getTime(), end: end.getTime() };
    this.segments = segments.map((s) => [Date.parse(s.start), Date.parse(s.end)]);
    this.gaps = gaps.map((g) => [Date.parse(g.start), Date.parse(g.end)]);
    // The minute being recorded: not a gap, not playable until its segment is stored (issue 38).
    this.recording = recording ? [Date.parse(recording.start), Date.parse(recording.end)] : null;
    this.canvas.dataset.enregistrement = recording ? recording.start : "";
    this.element.hidden = false;
    this.setView(this.period.start, this.period.end);
  }

  setBookmarks(bookmarks) {
    this.bookmarks = bookmarks.map((b) => ({ ...b, t: Date.parse(b.at) }));
    this.draw();
  }

  setCursor(t) {
    this.cursor = t === null ? null : t.getTime();
    if (this.cursor !== null) {
      this.canvas.dataset.at = new Date(this.cursor).toISOString();
      this.canvas.setAttribute("aria-valuetext", frDateTime(this.cursor));
      // Follow the time being played when it leaves a zoomed window.
      if (this.view && (this.cursor < this.view.from || this.cursor > this.view.to)) {
        const span = this.view.to - this.view.from;
        this.setView(this.cursor - span * 0.1, this.cursor + span * 0.9);
        return;
      }
    }
    this.draw();
  }

  zoomTo(span) {
    if (!this.period) return;
    if (span === null) return this.setView(this.period.start, this.period.end);
    const centre = this.cursor ?? this.nearestRecorded((this.view.from + this.view.to) / 2);
    this.setView(centre - span / 2, centre + span / 2);
  }

  /** The recorded instant nearest to t (t itself when recorded): a zoom with nothing chosen
   * lands on footage, not on the empty middle of a period (issue 38). */
  nearestRecorded(t) {
    let best = t, distance = Infinity;
    for (const [a, b] of this.recording ? [...this.segments, this.recording] : this.segments) {
      const inside = Math.min(Math.max(t, a), b);
      if (Math.abs(inside - t) < distance) { best = inside; distance = Math.abs(inside - t); }
    }
    return best;
  }

  zoomAround(t, factor) {
    const span = Math.max(MIN_SPAN, (this.view.to - this.view.from) * factor);
    const ratio = (t - this.view.from) / (this.view.to - this.view.from);
    this.setView(t - ratio * span, t + (1 - ratio) * span);
  }

  pan(fraction) {
    const shift = (this.view.to - this.view.from) * fraction;
    this.setView(this.view.from + shift, this.view.to + shift);
  }

  setView(from, to) {
    const { start, end } = this.period;
    let span = Math.min(end - start, Math.max(MIN_SPAN, to - from));
    from = Math.max(start, Math.min(from, end - span));
    this.view = { from, to: from + span };
    this.canvas.dataset.from = new Date(this.view.from).toISOString();
    this.canvas.dataset.to = new Date(this.view.to).toISOString();
    this.legend.replaceChildren(h("span", {}, frDateTime(this.view.from)),
      h("span", {}, `${this.segments.length} segment(s), ${this.gaps.length} trou(s) sur la période` +
        (this.recording ? ", enregistrement en cours" : "")),
      h("span", {}, frDateTime(this.view.to)));
    this.draw();
  }

  timeAt(clientX) {
    const box = this.canvas.getBoundingClientRect();
    return this.view.from + ((clientX - box.left) / box.width) * (this.view.to - this.view.from);
  }

  draw() {
    if (!this.view) return;
    const c = this.canvas, ratio = window.devicePixelRatio || 1;
    const W = Math.max(1, Math.round(c.clientWidth * ratio)), H = Math.max(1, Math.round(c.clientHeight * ratio));
    if (c.width !== W || c.height !== H) { c.width = W; c.height = H; }
    const g = c.getContext("2d");
    const x = (t) => ((t - this.view.from) / (this.view.to - this.view.from)) * W;
    const band = H * 0.62; // the recordings band; ticks and labels below it
    g.fillStyle = "#22262b";
    g.fillRect(0, 0, W, H);
    // Nothing recorded: hatched.
    g.strokeStyle = "#3a4048";
    g.lineWidth = 1;
    for (let i = -band; i < W; i += 10 * ratio) { g.beginPath(); g.moveTo(i, band); g.lineTo(i + band, 0); g.stroke(); }
    g.fillStyle = "#2fae5b";
    for (const [a, b] of this.segments) {
      if (b < this.view.from || a > this.view.to) continue;
      g.fillRect(x(a), 0, Math.max(1, x(b) - x(a)), band);
    }
    if (this.recording) {
      const [a, b] = this.recording;
      g.fillStyle = "#1d5c35";
      g.fillRect(x(a), 0, Math.max(1, x(b) - x(a)), band);
    }
    // Ticks: a step that gives a label every 100 px or so.
    const steps = [1e3, 5e3, 10e3, 30e3, 60e3, 300e3, 600e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 86400e3];
    const per = (this.view.to - this.view.from) / (W / ratio);
    const step = steps.find((s) => s / per >= 100) || steps[steps.length - 1];
    g.fillStyle = "#9fb0c0";
    g.font = `${12 * ratio}px system-ui, sans-serif`;
    for (let t = Math.ceil(this.view.from / step) * step; t <= this.view.to; t += step) {
      g.fillRect(x(t), band, ratio, 5 * ratio);
      g.fillText(frTime(t, step < 60e3), x(t) + 3 * ratio, H - 4 * ratio);
    }
    g.fillStyle = "#ffd24a";
    for (const b of this.bookmarks) {
      if (b.t < this.view.from || b.t > this.view.to) continue;
      g.beginPath(); g.moveTo(x(b.t), 0); g.lineTo(x(b.t) - 6 * ratio, -1); g.lineTo(x(b.t), 10 * ratio); g.lineTo(x(b.t) + 6 * ratio, -1); g.fill();
      g.fillRect(x(b.t) - ratio / 2, 0, ratio, band);
    }
    if (this.cursor !== null && this.cursor >= this.view.from && this.cursor <= this.view.to) {
      g.fillStyle = "#ffffff";
      g.fillRect(x(this.cursor) - ratio, 0, 3 * ratio, H);
    }
  }
}
