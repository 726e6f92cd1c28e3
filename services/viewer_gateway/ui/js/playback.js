// Relecture: camera and period, the recorded timeline (segments and gaps), then the reason form
// (R13) before anything plays; seek by clicking the timeline, speeds ×1 ×2 ×4. Segments come one
// at a time from the gateway and are appended to MSE at their place in time.
import { api, request } from "./api.js";
import { h, clear, fields, frDateTime, localInput } from "./dom.js";
import { CATEGORIES, fr } from "./fr.js";
import { Feed } from "./mse.js";

export function mount(main, ctx, [preset]) {
  const cameras = ctx.cameras.filter((c) => c.commune === ctx.commune && c.state !== "commissioning");
  const now = new Date();
  const picker = h("form", { class: "ligne", "aria-label": "Période" },
    h("label", {}, "Caméra", h("select", { name: "camera", required: true },
      cameras.map((c) => h("option", { value: c.slug, selected: c.slug === preset }, c.name)))),
    h("label", {}, "Du", h("input", { type: "datetime-local", name: "start", step: 1, value: localInput(new Date(now - 3600e3)) })),
    h("label", {}, "Au", h("input", { type: "datetime-local", name: "end", step: 1, value: localInput(now) })),
    h("button", { type: "submit" }, "Afficher la frise"));
  const error = h("p", { class: "erreur", role: "alert" });
  const timeline = h("div", { class: "frise", role: "slider", tabindex: 0, "aria-label": "Frise des enregistrements", hidden: true });
  const legend = h("div", { class: "frise-legende" });
  const chosen = h("p", { class: "info" });
  const reasonBox = h("section", { hidden: true });
  const player = h("section", { hidden: true, "aria-label": "Lecteur" });
  clear(main, h("h1", {}, "Relecture"), picker, error, timeline, legend, chosen, reasonBox, player);

  let period = null; // { camera, start, end, segments }
  let at = null; // the time chosen on the timeline
  let view = null; // { id, media }
  let playing = null; // { feed, video, origin(ms), loaded: Set(segment start), next }

  let asked = 0; // only the latest period asked for is drawn, whatever order the answers come in
  picker.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = fields(picker);
    error.textContent = "";
    const start = new Date(v.start), end = new Date(v.end);
    const mine = ++asked;
    try {
      const t = await api.get(`/api/cameras/${ctx.commune}/${v.camera}/timeline?start=${encodeURIComponent(start.toISOString())}&end=${encodeURIComponent(end.toISOString())}`);
      if (mine !== asked) return;
      period = { camera: v.camera, start, end, segments: t.segments, gaps: t.gaps };
      drawTimeline();
    } catch (err) {
      error.textContent = err.message;
    }
  });

  function drawTimeline() {
    const span = period.end - period.start;
    const x = (t) => `${(100 * (new Date(t) - period.start)) / span}%`;
    const w = (a, b) => `${(100 * (new Date(b) - new Date(a))) / span}%`;
    clear(timeline, period.segments.map((s) => h("div", {
      class: "segment", title: `${frDateTime(s.start)} → ${frDateTime(s.end)}`,
      style: `left:${x(s.start)};width:${w(s.start, s.end)}`,
    })), h("div", { class: "curseur", hidden: true }));
    timeline.hidden = false;
    clear(legend, h("span", {}, frDateTime(period.start)),
      h("span", {}, `${period.segments.length} segment(s), ${period.gaps.length} trou(s)`), h("span", {}, frDateTime(period.end)));
    chosen.textContent = period.segments.length ? "Cliquez sur la frise pour choisir l'instant." : "Aucun enregistrement sur cette période.";
  }

  timeline.addEventListener("click", (event) => {
    const box = timeline.getBoundingClientRect();
    const t = new Date(period.start.getTime() + ((event.clientX - box.left) / box.width) * (period.end - period.start));
    choose(t);
  });
  timeline.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 10e3, ArrowLeft: -10e3 }[event.key];
    if (step && at) { event.preventDefault(); choose(new Date(at.getTime() + step)); }
  });

  function choose(t) {
    at = t;
    timeline.dataset.at = t.toISOString();
    const cursor = timeline.querySelector(".curseur");
    cursor.hidden = false;
    cursor.style.left = `${(100 * (t - period.start)) / (period.end - period.start)}%`;
    chosen.textContent = `Instant choisi : ${frDateTime(t)}`;
    if (view && view.camera === period.camera) seek(t);
    else askReason();
  }

  function askReason() {
    const form = h("form", { class: "pile", "aria-label": "Motif de la consultation" },
      h("h2", {}, "Motif de la consultation (obligatoire, R13)"),
      h("p", { class: "info" }, "Rien n'est lu avant que le motif soit donné ; il est inscrit au registre avec la période visionnée."),
      h("label", {}, "Catégorie", h("select", { name: "category" }, Object.entries(CATEGORIES).map(([k, v]) => h("option", { value: k }, v)))),
      h("label", {}, "Motif", h("textarea", { name: "reason", rows: 2, required: true })),
      h("label", {}, "Référence (n° de réquisition, de procès-verbal…)", h("input", { name: "reference" })),
      h("p", { class: "erreur", role: "alert" }),
      h("button", { type: "submit", class: "principal" }, "Ouvrir l'enregistrement"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const v = fields(form);
      try {
        if (view) await endView();
        const opened = await api.post(`/api/cameras/${ctx.commune}/${period.camera}/playback`, {
          category: v.category, reason: v.reason, reference: v.reference || null, at: at.toISOString(),
        });
        view = { id: opened.id, media: opened.media, camera: period.camera };
        reasonBox.hidden = true;
        openPlayer();
        seek(at);
      } catch (err) {
        form.querySelector(".erreur").textContent = err.message;
      }
    });
    clear(reasonBox, form);
    reasonBox.hidden = false;
    player.hidden = true;
    form.querySelector("select").focus();
  }

  function openPlayer() {
    const video = h("video", { muted: true, playsinline: true, "aria-label": "Enregistrement" });
    const clock = h("span", { class: "horodatage" }, "—");
    const notice = h("div", { class: "avis", hidden: true });
    const speeds = [1, 2, 4].map((s) => h("button", {
      type: "button", "aria-pressed": String(s === 1),
      onclick: (e) => {
        video.playbackRate = s;
        for (const b of speeds) b.setAttribute("aria-pressed", String(b === e.target));
      },
    }, `×${s}`));
    clear(player, h("div", { class: "lecteur" }, video, h("div", { class: "surimpression" }, clock), notice),
      h("div", { class: "outils" },
        h("button", { type: "button", onclick: () => (video.paused ? video.play() : video.pause()) }, "Lecture / pause"),
        speeds, h("button", { type: "button", onclick: () => endView() }, "Fermer l'enregistrement")));
    player.hidden = false;
    playing = { feed: new Feed(video), video, clock, notice, origin: null, loaded: new Set(), next: null, fetching: false };
    video.addEventListener("timeupdate", () => {
      if (playing?.origin == null) return;
      const t = new Date(playing.origin + video.currentTime * 1000);
      clock.textContent = frDateTime(t);
      player.dataset.captureTime = t.toISOString();
      if (playing.next && playing.feed.bufferedEnd() - video.currentTime < 3) load(new Date(playing.next));
    });
  }

  /** Appends the segment holding t (if not there yet); returns its start. */
  async function load(t) {
    if (playing.fetching) return null;
    playing.fetching = true;
    try {
      const response = await request("GET", `${view.media}?at=${encodeURIComponent(t.toISOString())}`, undefined, { raw: true });
      const start = new Date(response.headers.get("X-Segment-Start"));
      playing.next = response.headers.get("X-Next-At");
      if (playing.origin === null) playing.origin = start.getTime();
      if (!playing.loaded.has(start.getTime())) {
        playing.loaded.add(start.getTime());
        await playing.feed.append(await response.arrayBuffer(), { offset: (start.getTime() - playing.origin) / 1000 });
      }
      playing.notice.hidden = true;
      return start;
    } catch (err) {
      playing.notice.hidden = false;
      playing.notice.textContent = fr(err.detail || err.message);
      if (err.status === 404) playing.next = null;
      return null;
    } finally {
      playing.fetching = false;
    }
  }

  async function seek(t) {
    const start = await load(t);
    if (start === null) return;
    const video = playing.video;
    const target = (t.getTime() - playing.origin) / 1000;
    const ready = () => {
      video.currentTime = target;
      video.play().catch(() => {});
    };
    if (video.readyState >= 1) ready();
    else video.addEventListener("loadedmetadata", ready, { once: true });
  }

  async function endView() {
    if (!view) return;
    const ending = view;
    view = null;
    playing?.feed.close();
    playing = null;
    player.hidden = true;
    await fetch(`/api/playback/${ending.id}/end`, { method: "POST", keepalive: true }).catch(() => {});
  }

  if (preset) picker.requestSubmit();
  return () => { endView(); };
}
