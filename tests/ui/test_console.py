"""The operator's console in a real browser under the demo's conditions (issue 18): recordings cut in
60-s segments that do not start on whole seconds, with a gap; a 2×2 layout of live cameras, one of
which is unplugged; the alarm list; instant replay; the full screen enlarged and zoomed. What is
asserted is what the agent sees (REGULATION.md R1, R12, R13, R36)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, expect
from vigie.local import servers
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from tests.harness import eventually
from tests.ui.conftest import UiStack, shoot
from tests.viewer_gateway.conftest import GatewayUnderTest
from tests.viewer_gateway.recordings import record_minute

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PARIS = ZoneInfo("Europe/Paris")
LOCAL = "%Y-%m-%dT%H:%M:%S"

# Whether the timeline's canvas shows a recording (green) at a time: x from the window shown.
RECORDED_AT_JS = """(iso) => {
  const c = document.querySelector("canvas.frise");
  const from = Date.parse(c.dataset.from), to = Date.parse(c.dataset.to);
  const x = Math.round(((Date.parse(iso) - from) / (to - from)) * c.width);
  const [r, g, b] = c.getContext("2d").getImageData(Math.min(c.width - 1, Math.max(0, x)),
                                                     Math.round(c.height * 0.3), 1, 1).data;
  return g > 150 && r < 100 && b < 150;
}"""


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def played(page: Page) -> datetime | None:
    shown = await page.locator("section[data-capture-time]").get_attribute("data-capture-time")
    return datetime.fromisoformat(shown.replace("Z", "+00:00")) if shown else None


async def test_relecture_plays_60_s_off_second_segments_across_boundaries_and_a_gap_R13_R36(
    ui: UiStack, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    first_ns = (int(datetime.now(UTC).timestamp()) - 2 * 3600) * 10**9 + 254_318_123
    await record_minute(db, objects, buckets.recordings, start_ns=first_ns, seconds=150,
                        segment_s=60)
    await record_minute(db, objects, buckets.recordings, start_ns=first_ns + 190 * 10**9,
                        seconds=90, segment_s=60)
    segments = [(r["start_time"], r["end_time"]) for r in await db.fetch(
        "SELECT start_time, end_time FROM segments ORDER BY start_time")]
    assert len(segments) == 5 and all(s.microsecond for s, _ in segments)
    gaps = [(a[1], b[0]) for a, b in zip(segments, segments[1:], strict=False) if b[0] > a[1]]
    assert len(gaps) == 1
    start, end = segments[0][0] - timedelta(seconds=60), segments[-1][1] + timedelta(seconds=60)

    operator = await ui.login("operator", screen="relecture")
    await operator.get_by_label("Caméra").select_option("gare")
    await operator.get_by_label("Du", exact=True).fill(start.astimezone(PARIS).strftime(LOCAL))
    await operator.get_by_label("Au", exact=True).fill(end.astimezone(PARIS).strftime(LOCAL))
    await operator.get_by_role("button", name="Afficher la frise").click()
    await expect(operator.locator(".frise-legende")).to_contain_text("5 segment(s), 3 trou(s)")
    # Every segment drawn where it is, every gap left hatched (the page's CSP once hid them all).
    for a, b in segments:
        assert await operator.evaluate(RECORDED_AT_JS, iso(a + (b - a) / 2)), (a, b)
    for a, b in [(start, segments[0][0]), *gaps, (segments[-1][1], end)]:
        assert not await operator.evaluate(RECORDED_AT_JS, iso(a + (b - a) / 2)), (a, b)

    # Zoom to a minute and back: the window follows, the drawing too.
    await operator.get_by_role("button", name="1 min", exact=True).click()
    window = await operator.locator("canvas.frise").evaluate(
        "c => Date.parse(c.dataset.to) - Date.parse(c.dataset.from)")
    assert window == 60_000
    await operator.get_by_role("button", name="Période", exact=True).click()

    # Five seconds before the first boundary.
    chosen = segments[0][1] - timedelta(seconds=5)
    box = await operator.locator("canvas.frise").bounding_box()
    assert box is not None
    fraction = (chosen - start) / (end - start)
    await operator.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
    reason = operator.get_by_role("form", name="Motif de la consultation")
    await reason.get_by_label("Motif", exact=True).fill("rayure sur un véhicule")
    await reason.get_by_role("button", name="Ouvrir l'enregistrement").click()
    aimed = datetime.fromisoformat((await operator.locator("canvas.frise").get_attribute("data-at")
                                    or "").replace("Z", "+00:00"))
    first = await eventually(lambda: played(operator), timeout_s=15, interval_s=0.1,
                             message="nothing played")
    assert abs(first - aimed) < timedelta(seconds=1), (first, aimed)  # not 6–34 s before
    # The picture and its controls in the window together (issue 38: below the fold at 1080 px).
    seen = await operator.evaluate("""() => {
      const v = document.querySelector("section[aria-label='Lecteur'] .lecteur").getBoundingClientRect();
      const b = [...document.querySelectorAll("section[aria-label='Lecteur'] button")]
        .find((x) => x.textContent === "Lecture / pause").getBoundingClientRect();
      return { top: v.top, controls: b.bottom, height: innerHeight };
    }""")
    assert seen["top"] >= 0 and seen["controls"] <= seen["height"], seen

    # ×1 across the first boundary: the time played advances with the wall clock (±1 s).
    t0, wall0 = await played(operator), time.monotonic()
    assert t0 is not None

    async def past(t: datetime) -> bool:
        now = await played(operator)
        return bool(now and now > t)

    await eventually(lambda: past(segments[1][0] + timedelta(seconds=2)), timeout_s=15,
                     interval_s=0.1, message="playback froze at the first boundary")
    t1, wall1 = await played(operator), time.monotonic()
    assert t1 is not None
    drift = (t1 - t0).total_seconds() - (wall1 - wall0)
    assert abs(drift) <= 1.0, f"played {(t1 - t0).total_seconds():.1f} s in {wall1 - wall0:.1f} s"
    clock = await operator.locator(".lecteur .horodatage").inner_text()
    assert clock.count(",") == 1 and clock.split(",")[1].isdigit(), clock  # the tenth (R36)
    await shoot(operator, "relecture-60s")

    # ×8 across the second boundary and the gap: it goes on after the gap, and says so.
    await operator.get_by_role("button", name="×8").click()
    await eventually(lambda: past(segments[2][0] + timedelta(seconds=1)), timeout_s=20,
                     interval_s=0.1, message="playback froze at the second boundary")
    await expect(operator.locator(".bandeau-etat")).to_contain_text("Trou d'enregistrement",
                                                                    timeout=20_000)
    await eventually(lambda: past(segments[3][0] + timedelta(seconds=1)), timeout_s=10,
                     interval_s=0.1, message="playback did not go on after the gap")

    # The keyboard (issue 38): L and J change the speed, K pauses, → steps one image, Shift+→
    # goes ten seconds on (back would fall in the gap just behind).
    await operator.get_by_role("button", name="×1", exact=True).click()
    await operator.keyboard.press("l")
    await expect(operator.get_by_role("button", name="×2")).to_have_attribute("aria-pressed",
                                                                            "true")
    await operator.keyboard.press("j")
    await expect(operator.get_by_role("button", name="×1", exact=True)).to_have_attribute(
        "aria-pressed", "true")
    video = operator.locator("section[aria-label='Lecteur'] video")
    await operator.keyboard.press("k")
    await eventually(lambda: video.evaluate("v => v.paused"), timeout_s=5, message="K did not pause")
    await asyncio.sleep(0.3)  # the paused picture's time settles
    before = await played(operator)
    assert before is not None
    await operator.keyboard.press("ArrowRight")

    async def stepped_one_image() -> bool:
        now = await played(operator)
        return bool(now and timedelta(milliseconds=20) < now - before < timedelta(milliseconds=60))

    await eventually(stepped_one_image, timeout_s=5, message="→ did not step one image")
    await operator.keyboard.press("Shift+ArrowRight")

    async def ten_seconds_on() -> bool:
        now = await played(operator)
        return bool(now and abs((now - before).total_seconds() - 10) < 1)

    await eventually(ten_seconds_on, timeout_s=10, message="Shift+→ did not go 10 s on")
    await operator.keyboard.press("k")
    await eventually(lambda: video.evaluate("v => !v.paused"), timeout_s=5,
                     message="K did not play again")

    # A bookmark where the agent paused: journaled, listed, on the timeline.
    await operator.get_by_role("button", name="Marquer cet instant…").click()
    await operator.get_by_label("Libellé (obligatoire)").fill("portière rayée")
    await operator.get_by_role("button", name="Poser le signet").click()
    await expect(operator.get_by_role("list", name="Signets de la période")).to_contain_text(
        "portière rayée")
    mark = await db.fetchrow("SELECT * FROM bookmarks")
    assert mark["author"] == "operator" and segments[3][0] < mark["at"] < segments[3][1]
    await operator.get_by_label("Signets", exact=True).fill("portière")
    await operator.get_by_role("button", name="Rechercher").click()
    await expect(operator.get_by_role("list", name="Signets trouvés")).to_contain_text("portière")
    await shoot(operator, "relecture-signet")

    # A click on a part not loaded yet (the last segment) plays from there, no stall, at the
    # speed chosen (a fresh buffer reloads the element, which forgot it).
    await operator.get_by_role("button", name="×2", exact=True).click()
    far = segments[4][0] + timedelta(seconds=10)
    await operator.get_by_role("button", name="Période", exact=True).click()
    box = await operator.locator("canvas.frise").bounding_box()
    assert box is not None
    await operator.mouse.click(box["x"] + box["width"] * ((far - start) / (end - start)),
                               box["y"] + box["height"] / 2)
    aimed = datetime.fromisoformat((await operator.locator("canvas.frise").get_attribute("data-at")
                                    or "").replace("Z", "+00:00"))

    async def near_aimed() -> bool:
        now = await played(operator)
        return bool(now and abs(now - aimed) < timedelta(seconds=1.5))

    await eventually(near_aimed, timeout_s=10, interval_s=0.1,
                     message="a click on a part not loaded yet did not play there")
    assert await operator.evaluate("document.querySelector('section video').playbackRate") == 2

    # Another camera: the view ends, no reason form stays behind with the old instant.
    await operator.get_by_label("Caméra").select_option("rue")
    await expect(operator.get_by_role("region", name="Lecteur")).to_be_hidden()
    await expect(reason).to_be_hidden()
    ended = await eventually(lambda: db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'playback'"), timeout_s=5,
        message="the view was not closed into the register")
    assert ended == 1


async def test_a_2x2_layout_plays_four_cameras_and_an_unplugged_one_says_so_with_an_alarm_R12(
    ui: UiStack, stoppable_camera: servers.RtspCameras, db: asyncpg.Pool,
) -> None:
    await ui.masking.add_camera("p1", stoppable_camera.url("p1"), masks=[])
    operator = await ui.login("operator", screen="direct")
    await operator.get_by_role("button", name="2×2").click()
    for slug in ("m1", "m2", "rue", "p1"):
        await expect(operator.locator(f".liste-cameras li[data-camera='{slug}']")).to_contain_text(
            "en ligne", timeout=20_000)
        await operator.locator(f".liste-cameras li[data-camera='{slug}']").click()
    panes = operator.locator(".case .lecteur")
    await expect(panes).to_have_count(4)

    async def times() -> list[float]:
        return await panes.evaluate_all("els => els.map(e => e.querySelector('video').currentTime)")

    await eventually(lambda: _all_playing(times), timeout_s=20, interval_s=0.2,
                     message="not every pane plays")
    before = await times()
    await asyncio.sleep(3)
    after = await times()
    assert all(b - a > 2 for a, b in zip(before, after, strict=True)), (before, after)
    await shoot(operator, "direct-2x2")

    # Kept per post: the next agent at this post finds the same four cameras.
    await operator.reload()
    await expect(operator.locator(".case[data-camera]")).to_have_count(4)
    assert await operator.locator(".case").evaluate_all(
        "cs => cs.map(c => c.dataset.camera)") == ["m1", "m2", "rue", "p1"]

    # gare (active, no approved masks) has its « masquage en échec » alarm already.
    await expect(operator.locator("#alarmes")).to_have_attribute("data-nombre", "1")
    stoppable_camera.process.stop()
    unplugged = time.monotonic()
    pane = operator.locator(".lecteur[data-camera='p1']")
    await expect(pane).to_have_attribute("data-avis", "Caméra hors ligne", timeout=10_000)
    assert time.monotonic() - unplugged < 10
    await expect(pane.locator(".avis")).to_be_visible()  # the last picture is covered
    await shoot(operator, "direct-hors-ligne")

    # The alarm: counted in the header, acknowledged by name, journaled.
    await expect(operator.locator("#alarmes")).to_have_attribute("data-nombre", "2",
                                                                 timeout=10_000)
    await operator.locator("#alarmes").click()
    row = operator.locator("tr[data-type='camera_lost']")
    await expect(row).to_contain_text("p1")
    # Issue 38: the camera is a link to its live picture; the detail reads in French, its time
    # in Paris time, not the server's UTC text.
    await expect(row.get_by_role("link", name="p1")).to_have_attribute(
        "href", "#/camera/palaiseau/p1")
    await expect(row).to_contain_text("aucune image depuis le")
    assert "no image" not in (await row.text_content() or "")
    masking = operator.locator("tr[data-type='masking_failed']")
    await expect(masking).to_contain_text("aucun masque approuvé")
    await shoot(operator, "alarmes")
    # … and to its recording from a minute before the alarm (issue 38).
    replay = row.get_by_role("link", name="relecture")
    raised = await db.fetchval("SELECT raised_at FROM alarms WHERE kind = 'camera_lost'")
    href = await replay.get_attribute("href") or ""
    assert href.startswith("#/relecture/p1/")
    assert abs((datetime.fromisoformat(href.rsplit("/", 1)[1].replace("Z", "+00:00"))
                - (raised - timedelta(minutes=1))).total_seconds()) < 1
    # Acknowledged with what the agent says, kept and journaled (issue 38).
    await row.get_by_role("button", name="Acquitter").click()
    await operator.get_by_label("Commentaire (facultatif, journalisé)").fill("patrouille envoyée")
    await operator.locator("#dialogue").get_by_role("button", name="Acquitter").click()
    await expect(row).to_contain_text("operator")
    await expect(row).to_contain_text("patrouille envoyée")
    await expect(operator.locator("#alarmes")).to_have_attribute("data-nombre", "1")
    lost = await db.fetch("SELECT c.slug, a.acknowledged_by, a.ack_comment FROM alarms a "
                          "JOIN cameras c ON c.id = a.camera_id WHERE a.kind = 'camera_lost'")
    assert [tuple(r) for r in lost] == [("p1", "operator", "patrouille envoyée")], lost
    await replay.click()
    await expect(operator.locator("body[data-ecran='relecture']")).to_be_attached()
    aller = operator.get_by_role("form", name="Aller à").get_by_label("Aller à")
    await expect(aller).not_to_have_value("")
    await expect(operator.get_by_role("form", name="Période").get_by_label("Caméra")).to_have_value("p1")

    # The wall: the tile's last picture is dimmed and says how old it is.
    await operator.goto(f"{ui.gateway.url}/ui/#/mur")
    age = operator.locator(".tuile[data-camera='p1'] .age")
    await expect(age).to_contain_text("HORS LIGNE — image de", timeout=10_000)

    # Instant replay of the unplugged camera: « DIFFÉRÉ », and it says the camera is offline.
    await operator.goto(f"{ui.gateway.url}/ui/#/camera/palaiseau/p1")
    await operator.get_by_role("button", name="Relecture instantanée (30 s)").click()
    await operator.get_by_label("Motif de la relecture instantanée").fill("dernier passage")
    await operator.get_by_role("button", name="Lancer la relecture").click()
    stage = operator.locator(".lecteur")
    await expect(stage).to_have_attribute("data-mode", "differe")
    await expect(stage.locator(".mode")).to_have_text("DIFFÉRÉ")
    await expect(stage).to_contain_text("Caméra hors ligne", timeout=10_000)
    await shoot(operator, "relecture-instantanee-hors-ligne")


async def test_a_live_view_cut_or_frozen_covers_its_picture_and_comes_back_by_itself(
    ui: UiStack,
) -> None:
    """Found by kill -9 and SIGSTOP of the gateway under `make run`: a pane kept its last picture
    (frozen) or went dark for good. Now a frozen stream is covered within 5 s, and a cut one says so
    and reconnects."""
    routes: list[WebSocketRoute] = []
    frozen = False

    def through(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda message: None if frozen else ws.send(message))
        routes.append(ws)

    operator = await ui.login("operator")
    await operator.route_web_socket(re.compile(r".*/live\?.*"), through)
    await operator.goto(f"{ui.gateway.url}/ui/#/camera/palaiseau/rue")
    stage = operator.locator(".lecteur")
    await operator.wait_for_function(
        "() => document.querySelector('.lecteur video')?.currentTime > 0.5", timeout=20_000)
    frozen = True
    await expect(stage).to_have_attribute("data-avis", re.compile("^Aucune image reçue"),
                                          timeout=8_000)
    await expect(stage.locator(".avis")).to_be_visible()
    await shoot(operator, "plein-ecran-fige")
    frozen = False
    await expect(stage).to_have_attribute("data-avis", "", timeout=8_000)
    await routes[-1].close(code=1011, reason="coupure")
    await expect(stage).to_have_attribute("data-avis", re.compile("nouvelle tentative"))
    await expect(stage).to_have_attribute("data-avis", "", timeout=15_000)
    assert len(routes) == 2, "the view did not reconnect"
    before = await operator.evaluate("document.querySelector('.lecteur video').currentTime")
    await asyncio.sleep(1.5)
    assert await operator.evaluate("document.querySelector('.lecteur video').currentTime") > \
        before + 0.5


async def _all_playing(times) -> bool:  # type: ignore[no-untyped-def]
    return min(await times()) > 0.5


async def test_the_full_screen_is_enlarged_zoomed_and_escape_returns_to_the_tile_opened(
    ui: UiStack,
) -> None:
    operator = await ui.login("operator")
    await operator.locator(".tuile[data-camera='rue']").click()
    video = operator.locator(".lecteur video")
    await operator.wait_for_function("() => document.querySelector('.lecteur video')?.videoWidth")
    # The 640×360 clip is drawn at the player's size, not at 640 px.
    shown = await video.evaluate(
        "v => Math.min(v.clientWidth, v.clientHeight * v.videoWidth / v.videoHeight)")
    assert shown >= 1.5 * 640, shown
    stage = operator.locator(".lecteur")
    box = await stage.bounding_box()
    assert box is not None
    await operator.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        await operator.mouse.wheel(0, -120)
    assert float(await stage.get_attribute("data-zoom") or "1") > 1.9
    assert "scale" in await video.evaluate("v => v.style.transform")
    await shoot(operator, "plein-ecran-zoom")
    await operator.get_by_role("button", name="1:1").click()
    await expect(stage).to_have_attribute("data-zoom", "1.00")
    await operator.keyboard.press("Escape")
    await expect(operator.locator("body[data-ecran='mur']")).to_be_attached()
    await expect(operator.locator(".tuile[data-camera='rue']")).to_be_focused()


async def test_every_form_error_an_agent_can_meet_reads_in_french(ui: UiStack) -> None:
    """FastAPI's validation errors (regexes, English) and the gateway's reasons, as shown."""
    admin = await ui.login("admin", screen="administration")
    said = await admin.evaluate("""async () => {
      const { frValidation, fr, frProblem } = await import('/ui/js/fr.js');
      return [
        frValidation([{ type: 'string_pattern_mismatch', loc: ['body', 'username'],
                        msg: "String should match pattern '^[a-z0-9][a-z0-9._-]{1,62}$'" }]),
        frValidation([{ type: 'missing', loc: ['body', 'reason'], msg: 'Field required' }]),
        frProblem({ detail: 'the period ends before it starts', code: 'period.ends_before_start' }),
        fr('the national police hold palaiseau\\'s cameras now (R27)'),
      ];
    }""")
    assert said[0] == ("Identifiant : lettres minuscules, chiffres, « - » ou « _ », sans espace "
                       "ni accent.")
    assert said[1] == "Motif : obligatoire."
    assert said[2] == "La fin est avant le début : corrigez les dates."
    assert said[3].startswith("La police nationale a la main sur les caméras de palaiseau")
    for text in said:
        assert "pattern" not in text and "^" not in text and "is taken" not in text


async def test_a_refusal_reads_in_french_from_its_code_whatever_its_english(ui: UiStack) -> None:
    """Issue 37: the UI translated the gateway's English with regular expressions, so rewording a
    message showed English. A refusal's sentence now comes from its code: the gateway's real
    answer to a taken username, then the same code with its English reworded."""
    admin = await ui.login("admin", screen="administration")
    said = await admin.evaluate("""async () => {
      const { request } = await import('/ui/js/api.js');
      const { frProblem } = await import('/ui/js/fr.js');
      let refused = null;
      try {
        await request('POST', '/api/users', { username: 'operator', full_name: 'Doublon',
          password: 'un mot de passe assez long', roles: ['auditor'], communes: ['palaiseau'],
          designated_by: 'le maire' });
      } catch (err) { refused = err; }
      return [refused.status, refused.body.code, refused.message,
              frProblem({ detail: 'this name belongs to someone else', code: 'account.username_taken',
                          params: { username: 'operator' } })];
    }""")
    assert said[:2] == [409, "account.username_taken"]
    assert said[2] == said[3] == ("L'identifiant operator est déjà pris : choisissez-en un "
                                  "autre.")


PICTURE_INSIDE = """v => {
  const r = v.getBoundingClientRect(), player = v.closest('.lecteur').getBoundingClientRect();
  const ratio = v.videoWidth / v.videoHeight;
  const w = Math.min(r.width, r.height * ratio), h = w / ratio;   // object-fit: contain
  const top = r.top + (r.height - h) / 2, left = r.left + (r.width - w) / 2;
  return {shown: h * w, top, bottom: top + h, left, right: left + w,
          limit: Math.min(player.bottom, innerHeight), playerTop: player.top,
          playerRight: Math.min(player.right, innerWidth), playerLeft: player.left};
}"""


def _whole(box: dict[str, float]) -> bool:
    return (box["shown"] > 0 and box["top"] >= box["playerTop"] - 1
            and box["bottom"] <= box["limit"] + 1 and box["left"] >= box["playerLeft"] - 1
            and box["right"] <= box["playerRight"] + 1)


@pytest.mark.parametrize("viewport", [(1920, 1080), (1366, 768), (1024, 768), (2560, 1440)])
async def test_the_whole_picture_is_shown_at_every_screen_size_R1(
    ui: UiStack, stoppable_camera: servers.RtspCameras, viewport: tuple[int, int],
) -> None:
    """Issue 38: a 4:3 camera at 1920×1080 lost 35 % of its picture at the bottom (19 % for 16:9
    at 1366 px, 15 % in 2×2 panes): an agent missed what happened there. The whole picture,
    letterboxed, inside the player and the window — full screen, and each pane of a 2×2 wall."""
    await ui.masking.add_camera("p1", stoppable_camera.url("p1"), masks=[])
    operator = await ui.login("operator")
    await operator.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    for slug in ("rue", "p1"):  # 16:9 (640×360) and 4:3 (320×240)
        await operator.goto(f"{ui.gateway.url}/ui/#/camera/palaiseau/{slug}")
        await operator.wait_for_function(
            "() => document.querySelector('.lecteur video')?.videoWidth")
        box = await operator.locator(".lecteur video").evaluate(PICTURE_INSIDE)
        assert _whole(box), (slug, viewport, box)
    await operator.goto(f"{ui.gateway.url}/ui/#/direct")
    await operator.get_by_role("button", name="2×2").click()
    for slug in ("rue", "p1"):
        await expect(operator.locator(f".liste-cameras li[data-camera='{slug}']")).to_contain_text(
            "en ligne", timeout=20_000)
        await operator.locator(f".liste-cameras li[data-camera='{slug}']").click()
    await operator.wait_for_function(
        "() => [...document.querySelectorAll('.case .lecteur video')].filter(v => v.videoWidth)"
        ".length >= 2")
    boxes = await operator.locator(".case .lecteur video").evaluate_all(
        f"vs => vs.filter(v => v.videoWidth).map({PICTURE_INSIDE})")
    assert boxes and all(_whole(b) for b in boxes), (viewport, boxes)
    await shoot(operator, f"direct-2x2-{viewport[0]}")

    # The wall fills the screen (issue 38: tiles of about 365 px left most of a 1920×1080 screen
    # empty, three quarters of a 2560×1440 one), every tile above the fold.
    await operator.goto(f"{ui.gateway.url}/ui/#/mur")
    await expect(operator.locator(".tuile")).to_have_count(7)
    await expect(operator.locator(".mur")).to_have_attribute("data-colonnes", re.compile(r"\d"))
    wall = await operator.locator(".tuile").evaluate_all("""ts => ({
      area: ts.reduce((a, t) => a + t.getBoundingClientRect().width * t.getBoundingClientRect().height, 0),
      bottom: Math.max(...ts.map(t => t.getBoundingClientRect().bottom)),
      right: Math.max(...ts.map(t => t.getBoundingClientRect().right)),
      screen: innerWidth * innerHeight, height: innerHeight, width: innerWidth })""")
    assert wall["bottom"] <= wall["height"] and wall["right"] <= wall["width"], (viewport, wall)
    assert wall["area"] / wall["screen"] >= 0.45, (viewport, wall)
    await shoot(operator, f"mur-{viewport[0]}")


async def test_a_commune_overseas_reads_and_types_its_own_legal_time(
    ui: UiStack, db: asyncpg.Pool,
) -> None:
    """Issue 37: screens wrote Paris's time whatever the commune. A commune in French Guiana
    (America/Cayenne, UTC−3 all year) reads the register in its own hours, and a time typed in a
    form is its own too, whatever the zone of the agent's browser (Paris here)."""
    await db.execute("UPDATE communes SET time_zone = 'America/Cayenne' WHERE slug = 'palaiseau'")
    auditor = await ui.login("auditor", screen="registre")
    await expect(auditor.locator("body")).to_have_attribute("data-fuseau", "America/Cayenne")
    await auditor.get_by_label("Action").fill("login")
    await auditor.get_by_role("button", name="Rechercher").click()
    first = auditor.locator("tbody tr").first
    await expect(first).to_contain_text("auditor")
    row_id = int(await first.locator("td").first.inner_text())
    at = await db.fetchval("SELECT at FROM audit_log WHERE id = $1", row_id)
    shown = await first.locator("td").nth(1).inner_text()
    assert shown == at.astimezone(ZoneInfo("America/Cayenne")).strftime("%d/%m/%Y %H:%M:%S")
    assert shown != at.astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y %H:%M:%S")
    typed = await auditor.evaluate("""async () => {
      const { fromLocalInput, localInput, frDate, setTimeZone, timeZone } =
        await import('/ui/js/dom.js');
      const cayenne = [fromLocalInput('2026-03-01T09:00').toISOString(),
                       localInput(new Date('2026-03-01T12:00:00Z')), frDate('2026-03-01'),
                       frDate('2026-03-01T02:00:00Z')];
      const chosen = timeZone();
      setTimeZone('Europe/Paris');  // the morning clocks go forward: 03:30 is CEST
      const paris = [fromLocalInput('2026-03-29T03:30').toISOString(),
                     fromLocalInput('2026-03-29T01:30').toISOString()];
      setTimeZone(chosen);
      return [...cayenne, ...paris];
    }""")
    assert typed == ["2026-03-01T12:00:00.000Z", "2026-03-01T09:00:00", "01/03/2026",
                     "28/02/2026",  # 02:00 UTC is still the 28th in Cayenne
                     "2026-03-29T01:30:00.000Z", "2026-03-29T00:30:00.000Z"]
    await shoot(auditor, "registre-cayenne")


async def test_a_zoom_with_nothing_chosen_lands_on_footage_not_the_empty_middle(
    gateway: GatewayUnderTest, browser: Browser,
) -> None:
    """Issue 38: « 10 min » on a period recorded only at its start showed the empty middle. With
    no instant chosen, the zoom centres on the recorded instant nearest the middle."""
    context = await browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    try:
        page = await context.new_page()
        await page.goto(f"{gateway.url}/ui/")
        shown = await page.evaluate("""async () => {
          const { Timeline } = await import('/ui/js/timeline.js');
          const t = new Timeline({ onpick: () => {} });
          document.body.append(t.element);
          const start = Date.parse('2026-03-01T10:00:00Z'), hour = 3600e3;
          const iso = (ms) => new Date(ms).toISOString();
          t.set(new Date(start), new Date(start + 2 * hour),
                [{ start: iso(start), end: iso(start + 600e3) }],
                [{ start: iso(start + 600e3), end: iso(start + 2 * hour) }]);
          t.zoomTo(600e3);
          return [t.canvas.dataset.from, t.canvas.dataset.to];
        }""")
    finally:
        await context.close()
    assert shown == ["2026-03-01T10:05:00.000Z", "2026-03-01T10:15:00.000Z"]
