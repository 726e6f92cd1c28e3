"""The vidéo-verbalisation mode in the browser (issue 22; R31–R34): a listed agent, in the full
screen live view of a camera authorised for traffic offences, takes stills of what the picture
shows, picks the offence, types the plate, marks it ready and fetches the hand-over file; in an
instant replay no still is taken; the mode is not offered where the law does not allow it."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import expect
from vigie.custody.exports.verify import verify_package
from vigie.verbalisation.messages import TRAFFIC_PURPOSE

from services.verbalisation.handlers import Verbalisation
from tests.ui.conftest import UiStack, shoot
from tests.viewer_gateway.conftest import VERBALISATION_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_an_agent_notes_and_hands_over_an_offence_from_the_live_view_R31_R32_R34(
    ui: UiStack, verbalisation_service: Verbalisation, db: asyncpg.Pool, tmp_path: Path,
) -> None:
    await db.execute("UPDATE cameras SET purposes = $1, location = 'Avenue de Stalingrad' "
                     "WHERE slug = 'm1'", [TRAFFIC_PURPOSE])
    await db.execute("UPDATE users SET verbalisation_power = 'police_municipale', "
                     "verbalisation_designation = 'arrêté n° 2026-42' WHERE username = 'operator'")
    # Not offered to an agent who is not listed, nor on a camera without the purpose (R32).
    supervisor = await ui.login("supervisor", screen="camera/palaiseau/m1")
    await expect(supervisor.locator("video")).to_be_visible()
    await expect(supervisor.get_by_role("button", name="Verbalisation")).to_have_count(0)
    page = await ui.login("operator", screen="camera/palaiseau/m2")
    await expect(page.get_by_role("button", name="Relecture instantanée (30 s)")).to_be_visible()
    await expect(page.get_by_role("button", name="Verbalisation")).to_have_count(0)

    await page.goto(f"{ui.gateway.url}/ui/#/camera/palaiseau/m1")
    stage = page.locator(".lecteur")
    await expect(stage).to_have_attribute("data-mode", "direct")
    await page.wait_for_function("() => document.querySelector('.lecteur').dataset.captureTime",
                                 timeout=20_000)
    await page.get_by_role("button", name="Verbalisation").click()
    panel = page.get_by_role("region", name="Vidéo-verbalisation")
    take = panel.get_by_role("button", name="Prendre un cliché")
    for n in (1, 2):
        await take.click()
        await expect(panel.locator(".cliches img")).to_have_count(n, timeout=15_000)
        await page.wait_for_timeout(400)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.cliches img')].every((i) => i.naturalWidth === 320)")
    await panel.get_by_label("Infraction").select_option("CR-R417-11-PIETONS")
    await panel.get_by_label("Plaque d'immatriculation").fill("gh 456 jk")
    await panel.get_by_role("button", name="Prête").click()
    await expect(panel.get_by_role("status")).to_contain_text("prête pour l'outil PVe")
    await expect(panel.get_by_label("Plaque d'immatriculation")).to_have_value("GH-456-JK")
    row = panel.locator("table.infractions tbody tr").first
    await expect(row).to_have_attribute("data-state", "ready")
    await shoot(page, "verbalisation")

    async with page.expect_download() as downloading:
        await panel.get_by_role("link", name="Remettre à l'outil PVe").click()
    archive = tmp_path / "remise.zip"
    await (await downloading.value).save_as(archive)
    verdict = verify_package(archive, trusted_fingerprint=VERBALISATION_KEY.fingerprint())
    assert verdict.ok, verdict.problems
    await expect(row).to_have_attribute("data-state", "handed_over", timeout=10_000)
    state = await db.fetchval("SELECT state FROM offences")
    assert state == "handed_over"

    # R31: in an instant replay, the picture is not the live image: no still.
    await panel.get_by_role("button", name="Nouvelle infraction").click()
    await page.get_by_role("button", name="Relecture instantanée (30 s)").click()
    await page.get_by_label("Motif de la relecture instantanée").fill("vérification d'un passage")
    await page.get_by_role("button", name="Lancer la relecture").click()
    await expect(stage).to_have_attribute("data-mode", "differe")
    await take.click()
    await expect(panel.get_by_role("alert")).to_contain_text("direct seulement (R31)")
    assert await db.fetchval("SELECT count(*) FROM offences") == 1
