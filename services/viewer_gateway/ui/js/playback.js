// Relecture: camera and period, the recorded timeline (segments, gaps, bookmarks; zoom and pan),
// then the reason form (R13) before anything plays. Playback runs across segment boundaries and
// gaps, at speeds from ×0.5 to ×8, frame by frame; the time being played is shown to the tenth of a
// second and kept as ISO 8601 in data-capture-time. Bookmarks are posed while watching (journaled)
// and searched here.
import { api, query, latest, SUPERSEDED } from "./api.js";
import { h, clear, ask, fields, frDateTime, frDateTimeTenths, fromLocalInput, localInput } from "./dom.js";
import { CATEGORIES } from "./fr.js";
import { Feed } from "./mse.js";
import { Timeline } from "./timeline.js";

const PREFETCH_S = 15; // the next segment is fetched when what is buffered ends sooner than this
const FRAME_S = 0.04; // one frame at 25 fps: the step of « image suivante »
const SPEEDS = [0.5, 1, 2, 4, 8];

export function mount(main, ctx, [preset, presetAt]) {
  const cameras = ctx.cameras.filter((c) => c.commune === ctx.commune && c.state !== "commissioning");
  const now = new Date();
  const picker = h("form", { class: "ligne", "aria-label": "Période" },
    h("label", {}, "Caméra", h("select", { name: "camera", required: true },
      cameras.map((c) => h("option", { value: c.slug, selected: c.slug === preset }, c.name)))),
    h("label", {}, "Du", h("input", { type: "datetime-local", name: "start", step: 1, required: true, value: localInput(new Date(now - 3600e3)) })),
    h("label", {}, "Au", h("input", { type: "datetime-local", name: "end", step: 1, required: true, value: localInput(now) })),
    h("button", { type: "submit" }, "Afficher la frise"));
  const goto = h("form", { class: "ligne", "aria-label": "Aller à" },
    h("label", {}, "Aller à", h("input", { type: "datetime-local", name: "at", step: 1, required: true })),
    h("button", { type: "submit" }, "Aller"));
  const finder = h("form", { class: "ligne", "aria-label": "Recherche de signets" },
    h("label", {}, "Signets", h("input", { type: "search", name: "q", placeholder: "mot du libellé, agent…" })),
    h("button", { type: "submit" }, "Rechercher"));
  const found = h("ul", { class: "signets", "aria-label": "Signets trouvés" });
  const error = h("p", { class: "erreur", role: "alert" });
  const timeline = new Timeline({ onpick: (t) => choose(t) });
  const chosen = h("p", { class: "info" });
  // A requisition answered from what the timeline shows (issue 21): the window in view, this camera.
  const extract = h("button", { type: "button", hidden: true, class: "extraire",
    title: "Préparer l'extraction des images de la frise affichée (réquisition)",
    onclick: () => {
      if (!period || !timeline.view) return;
      const to = Math.min(timeline.view.to, Date.now());
      ctx.go(`#/requisitions/${encodeURIComponent(period.camera)}/${new Date(timeline.view.from).toISOString()}/${new Date(to).toISOString()}`);
    } }, "Extraire pour une réquisition…");
  const marks = h("ul", { class: "signets", "aria-label": "Signets de la période" });
  const reasonBox = h("section", { hidden: true });
  const player = h("section", { hidden: true, "aria-label": "Lecteur", class: "lecteur-relecture" });
  clear(main, h("h1", {}, "Relecture"), picker, h("div", { class: "outils" }, goto, finder, extract), found, error,
    timeline.element, chosen, marks, reasonBox, player);

  let period = null; // { camera, start, end }
  let at = null; // the time chosen on the timeline
  let view = null; // { id, media, camera }
  let play = null; // { video, feed, origin, nextAt, loading, clock, notice, banner }
  let keys = null; // the player's keyboard listener, while it is open
  // Latest answer wins (api.js): a newer period, search or seek outdates the older ones' answers.
  const periods = latest();
  const marksAsked = latest();
  const finds = latest();
  const seeks = latest();

  picker.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = fields(picker);
    await showPeriod(v.camera, fromLocalInput(v.start), fromLocalInput(v.end));
  });

  // A new camera or period ends what was open: the reason form and the player belonged to it.
  picker.elements.camera.addEventListener("change", () => { endView(); reasonBox.hidden = true; });

  async function showPeriod(camera, start, end) {
    error.textContent = "";
    if (!view || view.camera !== camera) {
      await endView();
      reasonBox.hidden = true;
    }
    try {
      const t = await periods.get(`/api/cameras/${ctx.commune}/${camera}/timeline${query({ start: start.toISOString(), end: end.toISOString() })}`);
      if (t === SUPERSEDED) return;
      period = { camera, start, end };
      timeline.set(start, end, t.segments, t.gaps, t.recording);
      extract.hidden = !ctx.can("export") || !t.segments.length;
      chosen.textContent = t.segments.length ? "Cliquez sur la frise pour choisir l'instant (molette : zoom, glisser : déplacer)." : "Aucun enregistrement sur cette période.";
      await loadBookmarks();
    } catch (err) {
      error.textContent = err.message;
    }
  }

  async function loadBookmarks() {
    if (!period) return;
    try {
      const list = await marksAsked.get(`/api/bookmarks${query({ commune: ctx.commune, camera: period.camera, start: period.start.toISOString(), end: period.end.toISOString() })}`);
      if (list === SUPERSEDED) return;
      timeline.setBookmarks(list);
      clear(marks, list.map((b) => h("li", {}, h("button", { type: "button", onclick: () => choose(new Date(b.at)) },
        `${frDateTime(b.at)} — ${b.label}`), h("span", { class: "info" }, ` (${b.author})`))));
    } catch { /* no playback right on bookmarks: the timeline still works */ }
  }

  goto.addEventListener("submit", async (event) => {
    event.preventDefault();
    const t = fromLocalInput(fields(goto).at);
    if (Number.isNaN(t.getTime())) return;
    if (!period || t < period.start || t > period.end) {
      picker.elements.start.value = localInput(new Date(t - 1800e3));
      picker.elements.end.value = localInput(new Date(Math.min(Date.now(), t.getTime() + 1800e3)));
      await showPeriod(picker.elements.camera.value, new Date(t - 1800e3), new Date(Math.min(Date.now(), t.getTime() + 1800e3)));
    }
    if (period) choose(t);
  });

  finder.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const list = await finds.get(`/api/bookmarks${query({ commune: ctx.commune, q: fields(finder).q })}`);
      if (list === SUPERSEDED) return;
      clear(found, list.length ? list.map((b) => h("li", {}, h("button", { type: "button", onclick: () => openBookmark(b) },
        `${b.camera_name} — ${frDateTime(b.at)} — ${b.label}`), h("span", { class: "info" }, ` (${b.author})`)))
        : [h("li", { class: "info" }, "Aucun signet ne correspond.")]);
    } catch (err) { error.textContent = err.message; }
  });

  async function openBookmark(b) {
    const t = new Date(b.at);
    picker.elements.camera.value = b.camera;
    picker.elements.start.value = localInput(new Date(t - 1800e3));
    picker.elements.end.value = localInput(new Date(Math.min(Date.now(), t.getTime() + 1800e3)));
    await showPeriod(b.camera, new Date(t - 1800e3), new Date(Math.min(Date.now(), t.getTime() + 1800e3)));
    choose(t);
  }

  function choose(t) {
    at = t;
    timeline.setCursor(t);
    chosen.textContent = `Instant choisi : ${frDateTime(t)}`;
    if (view && view.camera === period.camera) seek(t);
    else askReason();
  }

  function askReason() {
    const form = h("form", { class: "pile", "aria-label": "Motif de la consultation" },
      h("h2", {}, "Motif de la consultation (obligatoire)"),
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
    const notice = h("div", { class: "avis", hidden: true, role: "alert" });
    const banner = h("div", { class: "bandeau-etat", hidden: true, role: "status" });
    const speeds = SPEEDS.map((s) => h("button", {
      type: "button", "aria-pressed": String(s === 1),
      onclick: (e) => {
        video.playbackRate = s;
        if (play) play.rate = s; // a fresh buffer (a seek) reloads the element, which forgets it
        for (const b of speeds) b.setAttribute("aria-pressed", String(b === e.target));
      },
    }, `×${String(s).replace(".", ",")}`));
    const step = (frames) => { video.pause(); video.currentTime = Math.max(0, video.currentTime + frames * FRAME_S); };
    const toggle = () => (video.paused ? video.play() : video.pause());
    const speed = (by) => {
      const at = speeds.findIndex((b) => b.getAttribute("aria-pressed") === "true");
      speeds[Math.min(speeds.length - 1, Math.max(0, at + by))]?.click();
    };
    clear(player, h("div", { class: "lecteur" }, video, h("div", { class: "surimpression" }, h("span", { class: "mode mode-differe" }, "ENREGISTREMENT"), " ", clock), banner, notice),
      h("div", { class: "outils" },
        h("button", { type: "button", onclick: toggle, "aria-keyshortcuts": "Space K", title: "Espace ou K" }, "Lecture / pause"),
        h("button", { type: "button", onclick: () => step(-1), "aria-label": "Image précédente", "aria-keyshortcuts": "ArrowLeft", title: "←" }, "◀ image"),
        h("button", { type: "button", onclick: () => step(1), "aria-label": "Image suivante", "aria-keyshortcuts": "ArrowRight", title: "→" }, "image ▶"),
        speeds,
        h("button", { type: "button", onclick: () => bookmark() }, "Marquer cet instant…"),
        h("button", { type: "button", onclick: () => endView() }, "Fermer l'enregistrement")));
    player.hidden = false;
    // The picture and its controls in view together (issue 38: at 1080 px the controls were below
    // the fold, under the timeline): the player's bottom at the window's.
    player.scrollIntoView({ block: "end" });
    // The keyboard, as in the anchors' clients (issue 38): Space or K plays and pauses, ← and →
    // step one image, Shift+← / Shift+→ ten seconds, J and L slower and faster — except while
    // typing in a field.
    keys = (event) => {
      if (!play || event.target.closest?.("input, select, textarea, dialog") || event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
      const actions = {
        " ": toggle, k: toggle, j: () => speed(-1), l: () => speed(1),
        ArrowLeft: () => (event.shiftKey ? seekBy(-10) : step(-1)),
        ArrowRight: () => (event.shiftKey ? seekBy(10) : step(1)),
      };
      if (!actions[key]) return;
      event.preventDefault();
      actions[key]();
    };
    document.addEventListener("keydown", keys);
    play = { video, feed: new Feed(video), origin: null, nextAt: null, loading: false, clock, notice, banner, lastCursor: 0, rate: 1 };
    play.raf = requestAnimationFrame(tick);
  }

  /** Ten seconds on or back: within what is buffered at once, else from the recording; a paused
   * picture stays paused. */
  function seekBy(seconds) {
    const t = playedAt();
    if (t !== null) seek(new Date(t + seconds * 1000), { resume: !play.video.paused });
  }

  function playedAt() {
    return play && play.origin !== null ? play.origin + play.video.currentTime * 1000 : null;
  }

  function tick() {
    if (!play) return;
    const p = play, video = p.video, t = playedAt();
    if (t !== null && video.readyState >= 2 && !p.settling) {
      p.clock.textContent = frDateTimeTenths(new Date(t));
      player.dataset.captureTime = new Date(t).toISOString();
      if (performance.now() - p.lastCursor > 250) { timeline.setCursor(new Date(t)); p.lastCursor = performance.now(); }
      const end = bufferedEndAround(video.currentTime);
      if (end !== null && p.nextAt && !p.loading && end - video.currentTime < PREFETCH_S) loadNext();
      jumpGap(end);
      p.feed.trim(60);
    }
    p.raf = requestAnimationFrame(tick);
  }

  /** End of the buffered range holding s (null when s is not buffered). */
  function bufferedEndAround(s) {
    const r = play.video.buffered;
    for (let i = 0; i < r.length; i++) if (r.start(i) - 0.1 <= s && s <= r.end(i) + 0.1) return r.end(i);
    return null;
  }

  /** At the end of a recorded stretch, go on after the gap, and say so. */
  function jumpGap(end) {
    const video = play.video, r = video.buffered;
    // Chrome stops a few frames before the end of a range (readyState drops to HAVE_CURRENT_DATA).
    const left = end === null ? Infinity : end - video.currentTime;
    if (!(left <= 0.15 || (video.readyState <= 2 && left < 1))) return;
    for (let i = 0; i < r.length; i++) {
      if (r.start(i) > end + 0.05) {
        const from = new Date(play.origin + end * 1000), to = new Date(play.origin + r.start(i) * 1000);
        video.currentTime = r.start(i) + 0.001;
        showBanner(`Trou d'enregistrement : rien de ${frDateTime(from)} à ${frDateTime(to)}.`);
        return;
      }
    }
    if (!play.nextAt && !play.loading) showBanner("Fin des enregistrements disponibles.");
  }

  function showBanner(text) {
    play.banner.hidden = false;
    play.banner.textContent = text;
    clearTimeout(play.bannerTimer);
    play.bannerTimer = setTimeout(() => { if (play) play.banner.hidden = true; }, 4000);
  }

  async function fetchSegment(t, turn) {
    const response = await turn.request("GET", `${view.media}?at=${encodeURIComponent(new Date(t).toISOString())}`, undefined, { raw: true });
    return {
      start: Date.parse(response.headers.get("X-Segment-Start")),
      end: Date.parse(response.headers.get("X-Segment-End")),
      next: response.headers.get("X-Next-At"),
      bytes: await response.arrayBuffer(),
    };
  }

  /** Plays from t: at once when t is buffered; otherwise a fresh buffer from the segment holding
   * t, the picture shown only once it is appended (never one seconds away). */
  async function seek(t, { resume = true } = {}) {
    const p = play, ms = t.getTime(), turn = seeks.turn();
    p.notice.hidden = true;
    if (p.origin !== null && bufferedEndAround((ms - p.origin) / 1000) !== null) {
      p.video.currentTime = (ms - p.origin) / 1000;
      if (resume) p.video.play().catch(() => {});
      return;
    }
    p.feed.close();
    p.feed = new Feed(p.video);
    p.origin = null;
    p.nextAt = null;
    p.loading = true;
    let segment;
    try {
      segment = await fetchSegment(ms, turn);
    } catch (err) {
      if (turn.current) failed(err);
      return;
    } finally {
      if (turn.current) p.loading = false;
    }
    if (!turn.current || play !== p) return;
    p.nextAt = segment.next;
    // Nothing is shown or timed until the picture of t is: the segment's first picture, seconds
    // before t, flashed and was reported as the time played (issue 18).
    p.settling = true;
    p.video.classList.add("en-recherche");
    await p.feed.append(segment.bytes, { offset: 0 });
    if (!turn.current || play !== p) return;
    p.origin = segment.start;
    await settle(p.video, (ms - p.origin) / 1000);
    if (!turn.current || play !== p) return;
    p.settling = false;
    p.video.classList.remove("en-recherche");
    p.video.playbackRate = p.rate;
    if (resume) p.video.play().catch(() => {});
  }

  /** Sets the playhead and resolves once the picture there is decoded (or after 3 s). */
  function settle(video, seconds) {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); video.removeEventListener("seeked", done); resolve(); };
      const timer = setTimeout(done, 3000);
      video.addEventListener("seeked", done);
      video.currentTime = seconds;
    });
  }

  async function loadNext() {
    const p = play, turn = seeks.active; // the next segment belongs to the seek that began it
    if (!turn) return;
    p.loading = true;
    try {
      const segment = await fetchSegment(Date.parse(p.nextAt), turn);
      if (!turn.current || play !== p) return;
      p.nextAt = segment.next;
      await p.feed.append(segment.bytes, { offset: (segment.start - p.origin) / 1000 });
    } catch (err) {
      if (turn.current && play === p) { p.nextAt = null; failed(err); }
    } finally {
      if (turn.current && play === p) p.loading = false;
    }
  }

  function failed(err) {
    const next = String(err.detail || "").match(/the next recording starts at (\S+)/);
    clear(play.notice, h("p", {}, err.message),
      next && h("button", { type: "button", onclick: () => choose(new Date(next[1])) }, `Aller au prochain enregistrement (${frDateTime(next[1])})`));
    play.notice.hidden = false;
  }

  async function bookmark() {
    const t = playedAt();
    if (t === null) return;
    play.video.pause();
    const made = await ask("Marquer cet instant", [
      h("p", {}, `${period.camera} — ${frDateTimeTenths(new Date(t))}`),
      h("label", {}, "Libellé (obligatoire)", h("input", { name: "label", required: true, maxlength: 200 })),
    ], {
      submit: "Poser le signet",
      onsubmit: (v) => api.post(`/api/cameras/${ctx.commune}/${period.camera}/bookmarks`, { at: new Date(t).toISOString(), label: v.label }),
    });
    if (made) await loadBookmarks();
  }

  async function endView() {
    if (!view) return;
    const ending = view;
    view = null;
    seeks.cancel(); // what was on its way belonged to the view that ends
    if (play) { cancelAnimationFrame(play.raf); play.feed.close(); }
    play = null;
    if (keys) document.removeEventListener("keydown", keys);
    keys = null;
    player.hidden = true;
    await fetch(`/api/playback/${ending.id}/end`, { method: "POST", keepalive: true }).catch(() => {});
  }

  // #/relecture/<camera>/<instant> (an alarm's link, issue 38): the half hour around that instant
  // on the timeline, « Aller à » filled in; the agent gives the reason before anything plays (R13).
  const alarmAt = presetAt ? new Date(presetAt) : null;
  if (alarmAt && !Number.isNaN(alarmAt.getTime()) && cameras.some((c) => c.slug === preset)) {
    picker.elements.start.value = localInput(new Date(alarmAt.getTime() - 1800e3));
    picker.elements.end.value = localInput(new Date(Math.min(Date.now(), alarmAt.getTime() + 1800e3)));
    goto.elements.at.value = localInput(alarmAt);
  }
  if (preset) picker.requestSubmit();

  return () => { for (const c of [periods, marksAsked, finds, seeks]) c.cancel(); endView(); };
}
