"""The « Réquisitions » screen (issue 21; R17, R18): a supervisor answers a requisition from the
browser — cameras, period, references —, follows the build, downloads a package that verifies,
records its delivery, and sees the hold it placed with its review date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import expect
from vigie.custody.exports.create import create_export
from vigie.custody.exports.verify import verify_package
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.security.signing import SigningKey
from vigie.service import Runtime

from tests.exports.helpers import REQUISITION, recorded
from tests.ui.conftest import LATE_S, UiStack, answer_late, shoot
from tests.viewer_gateway.conftest import EXPORT_KEY
from tests.viewer_gateway.recordings import record_minute

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARIS = ZoneInfo("Europe/Paris")
LOCAL = "%Y-%m-%dT%H:%M:%S"


async def test_a_supervisor_answers_a_requisition_from_the_screen_R17_R18(
    ui: UiStack, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
    retention_service: Runtime,
) -> None:
    """As production runs it: the retention service's loops under its own identities build what
    the screen asked (issue 34: exports from the screen once stayed « 0 % » under `make run`)."""
    objects, buckets = store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await record_minute(db, objects, buckets.recordings, start_ns=int(start.timestamp() * 1e9),
                        seconds=20)
    page = await ui.login("supervisor", screen="requisitions")
    form = page.get_by_role("form", name="Nouvelle réquisition")
    await form.get_by_label("Du", exact=True).fill(
        (start - timedelta(seconds=5)).astimezone(PARIS).strftime(LOCAL))
    await form.get_by_label("Au", exact=True).fill(
        (start + timedelta(seconds=25)).astimezone(PARIS).strftime(LOCAL))
    await form.get_by_label("Réquisition (n° de PV ou de procédure)").fill("PV 2026/404")
    await form.get_by_label("OPJ et service").fill("OPJ Bernard, CSP Palaiseau")
    await form.get_by_label("Destinataire").fill("CSP Palaiseau")
    await form.get_by_label("Support ou n° de transfert").fill("clé USB 7")
    await form.get_by_label("Motif").fill("dégradation d'un abribus")
    await form.get_by_role("button", name="Geler et préparer l'extraction").click()
    await expect(form.get_by_role("alert")).to_contain_text("Cochez au moins une caméra")
    await form.get_by_label("Gare").check()
    await form.get_by_role("button", name="Geler et préparer l'extraction").click()
    await expect(form.get_by_role("status")).to_contain_text("seront gelées")
    row = page.locator("table.extractions tbody tr").first
    # Built by the retention service (it holds the export key); the screen follows by itself.
    await expect(row).to_have_attribute("data-state", "ready", timeout=30_000)
    key = EXPORT_KEY
    async with page.expect_download() as downloading:
        await row.get_by_role("link", name="Télécharger").click()
    archive = tmp_path / "paquet.zip"
    await (await downloading.value).save_as(archive)
    verdict = verify_package(archive, trusted_fingerprint=key.fingerprint())
    assert verdict.ok, verdict.problems

    await row.get_by_role("button", name="Enregistrer la remise").click()
    dialog = page.locator("dialog")
    await dialog.get_by_label("Remise à").fill("Brigadier Morel")
    await dialog.get_by_role("button", name="Enregistrer").click()
    await expect(row.locator(".remise")).to_contain_text("remise à Brigadier Morel")
    holds = page.locator("table.gels tbody tr")
    await expect(holds).to_have_count(1)
    await expect(holds.first).to_contain_text("PV 2026/404")
    await shoot(page, "requisitions")
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'export.delivered'") == 1
    # R18 (issue 40): a hold past its review date says so on the screen.
    await db.execute("UPDATE holds SET review_on = current_date - 1")
    await page.reload()
    overdue = page.locator("table.gels tbody tr").first.locator(".reexamen")
    await expect(overdue).to_contain_text("date dépassée")
    await expect(overdue).to_have_attribute("data-due", "overdue")


async def test_a_requisition_started_from_the_playback_timeline_is_prefilled_with_its_window(
    ui: UiStack, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    await record_minute(db, objects, buckets.recordings, start_ns=int(start.timestamp() * 1e9),
                        seconds=20)
    page = await ui.login("supervisor", screen="relecture/gare")
    picker = page.get_by_role("form", name="Période")
    await picker.get_by_label("Du", exact=True).fill(
        (start - timedelta(minutes=1)).astimezone(PARIS).strftime(LOCAL))
    await picker.get_by_label("Au", exact=True).fill(
        (start + timedelta(minutes=1)).astimezone(PARIS).strftime(LOCAL))
    await picker.get_by_role("button", name="Afficher la frise").click()
    extract = page.get_by_role("button", name="Extraire pour une réquisition…")
    await expect(extract).to_be_visible()
    canvas = page.locator("canvas[data-from]")
    asked_from = (start - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    await expect(canvas).to_have_attribute("data-from", asked_from)  # not the preset's hour
    shown = [datetime.fromisoformat((await canvas.get_attribute(a) or "").replace("Z", "+00:00"))
             for a in ("data-from", "data-to")]
    await extract.click()
    await page.locator("body[data-ecran='requisitions']").wait_for()
    form = page.get_by_role("form", name="Nouvelle réquisition")
    await expect(form.get_by_label("Gare")).to_be_checked()
    for label, moment in zip(("Du", "Au"), shown, strict=True):
        value = await form.get_by_label(label, exact=True).input_value()
        local = moment.astimezone(PARIS).replace(microsecond=0, tzinfo=None)
        assert abs((datetime.fromisoformat(value) - local).total_seconds()) <= 1, (label, value)


async def test_the_latest_answer_wins_and_the_superseded_request_is_aborted(ui: UiStack) -> None:
    page = await ui.login("supervisor")
    aborted: list[str] = []
    page.on("requestfailed", lambda r: aborted.append(r.url) if "late=1" in r.url else None)

    await page.route("**/api/cameras?late=1", answer_late)
    outcome = await page.evaluate("""async () => {
        const { latest, SUPERSEDED } = await import("/ui/js/api.js");
        const cameras = latest();
        const older = cameras.get("/api/cameras?late=1");
        await new Promise((r) => setTimeout(r, 200));
        const newer = await cameras.get("/api/cameras?late=0");
        return { older: (await older) === SUPERSEDED, newer: Array.isArray(newer) && newer.length };
    }""")
    assert outcome == {"older": True, "newer": outcome["newer"]} and outcome["newer"] > 0
    await page.wait_for_timeout(LATE_S * 1000 + 300)
    assert aborted and all("late=1" in url for url in aborted), "the older request was aborted"


async def test_a_package_plays_offline_in_chromium_from_player_html_with_its_time_track(
    ui: UiStack, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    """Done-when of issue 21: an investigator opens player.html from the package (file://, no
    network): the video plays, seeks, and shows the capture time each second."""
    objects, buckets = store
    cid = await db.fetchval("SELECT id FROM cameras WHERE commune = 'palaiseau' AND slug = 'gare'")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await recorded(db, objects, buckets.recordings, cid, start=t0, seconds=12)
    result = await create_export(db, objects, buckets, key=SigningKey.generate(),
                                 cameras=["palaiseau/gare"], start=t0,
                                 end=t0 + timedelta(seconds=12), requisition=REQUISITION,
                                 out_dir=tmp_path / "out")
    page = await ui.page()
    await page.route("http*://**", lambda route: route.abort())  # offline: nothing but the files
    await page.goto((result.folder / "player.html").as_uri())
    video = page.locator("video").first
    await expect(video).to_have_js_property("readyState", 4, timeout=15_000)
    state = await video.evaluate("""async (v) => {
        v.muted = true;
        await v.play();
        await new Promise((r) => setTimeout(r, 1500));
        const played = v.currentTime;
        v.pause();
        v.currentTime = 8.5;
        await new Promise((r) => v.addEventListener("seeked", r, { once: true }));
        const track = v.textTracks[0];
        track.mode = "showing";
        await new Promise((r) => setTimeout(r, 500));
        const cue = track.activeCues && track.activeCues[0];
        return { duration: v.duration, played, at: v.currentTime, cues: track.cues ? track.cues.length : 0,
                 cue: cue ? cue.text : null, width: v.videoWidth };
    }""")
    assert state["duration"] == pytest.approx(12, abs=0.6) and state["width"] == 160
    assert state["played"] > 0.5, "it plays"
    assert state["at"] == pytest.approx(8.5, abs=0.1), "it seeks"
    assert state["cues"] >= 12, "the time track is there"
    moment = (t0 + timedelta(seconds=8)).astimezone(PARIS)
    assert state["cue"] is not None and f"{moment:%d/%m/%Y %H:%M:%S}" in state["cue"]
    await shoot(page, "paquet-lecteur")
