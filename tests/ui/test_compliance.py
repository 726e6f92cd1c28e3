"""« Conformité » in Chromium (issue 24): an administrator records a prefectoral order that has
ended and attaches a camera to it — the camera says it films nothing on every screen and the
agent's wall stops showing it (R3) — then a sign, which then comes down (R26); the public register
is previewed and its controller changed (R25);
the data-protection officer declares a breach and sees its 72 hours (R39)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import asyncpg
import pytest
from playwright.async_api import expect

from tests.harness import eventually
from tests.ui.conftest import UiStack, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_an_order_recorded_as_ended_stops_its_camera_on_every_screen_R3_R25_R26(
    ui: UiStack, db: asyncpg.Pool,
) -> None:
    operator = await ui.login("operator")
    tile = operator.locator(".tuile[data-camera='m1']")
    await expect(tile).to_have_attribute("data-etat", "en ligne", timeout=20_000)

    admin = await ui.login("admin", screen="conformite")
    await expect(admin.get_by_role("tab", name="Autorisations préfectorales")).to_have_attribute(
        "aria-selected", "true")
    form = admin.get_by_role("form", name="Nouvelle autorisation")
    await form.get_by_label("Référence de l'arrêté préfectoral").fill("AP 2020-091-0007")
    await form.get_by_label("Accordée le").fill("2020-03-01")
    await form.get_by_label("Valable jusqu'au (cinq ans au plus)").fill("2025-02-28")
    await form.get_by_label("protection des bâtiments publics").check()
    await form.get_by_label("m1 (m1)").check()
    await form.get_by_role("button", name="Enregistrer l'autorisation").click()
    await expect(admin.locator("main [role=status]")).to_contain_text(
        "Autorisation AP 2020-091-0007 enregistrée")
    row = admin.locator("tr[data-autorisation='AP 2020-091-0007']")
    await expect(row).to_contain_text("expirée")
    await expect(row).to_contain_text("m1")
    stopped = admin.get_by_role("alert").filter(has_text="Caméras sans autorisation valide")
    await expect(stopped).to_contain_text("m1 (expirée : AP 2020-091-0007)")
    await shoot(admin, "conformite-autorisations")

    # Every screen says the same: the operator's tile, and masking stops the camera (R3).
    await expect(tile).to_have_attribute("data-etat", "sans autorisation", timeout=10_000)
    await expect(operator.locator("#mise-en-garde")).to_contain_text(
        "Autorisation préfectorale expirée")
    await eventually(lambda: db.fetchval(
        "SELECT h.masking_detail LIKE 'unauthorised: authorisation AP 2020-091-0007 expired%' "
        "FROM camera_health h JOIN cameras c ON c.id = h.camera_id WHERE c.slug = 'm1'"),
        timeout_s=10, message="masking did not stop m1")

    # A bad order is refused with the reason, in French (issue 37: it was shown in English),
    # nothing recorded.
    await form.get_by_label("Référence de l'arrêté préfectoral").fill("AP trop long")
    await form.get_by_label("Accordée le").fill("2024-01-01")
    await form.get_by_label("Valable jusqu'au (cinq ans au plus)").fill("2031-01-01")
    await form.get_by_label("protection des bâtiments publics").check()
    await form.get_by_role("button", name="Enregistrer l'autorisation").click()
    await expect(admin.locator("main [role=status]")).to_have_text(
        "Une autorisation dure cinq ans au plus (CSI L252-4) : elle prend fin le 01/01/2029 au "
        "plus tard.")
    assert not await db.fetchval("SELECT true FROM authorisations WHERE reference = "
                                 "'AP trop long'")

    # R26: a sign with every mention covering the cameras in service.
    await admin.get_by_role("tab", name="Panneaux d'information").click()
    await expect(admin.locator("main").get_by_role("alert")).to_contain_text(
        "Caméras sans panneau complet")
    sign = admin.get_by_role("form", name="Nouveau panneau")
    await sign.get_by_label("Emplacement").fill("Parvis de la mairie, côté rue")
    await sign.get_by_label("Installé le").fill("2026-03-02")
    for box in await sign.locator("fieldset:has(legend:text('Caméras couvertes')) input").all():
        await box.check()
    await sign.get_by_role("button", name="Enregistrer le panneau").click()
    await expect(admin.get_by_text("Chaque caméra est signalée par un panneau complet")).to_be_visible()
    # The sign comes down: its cameras are flagged again, the row stays, dated.
    taken = admin.get_by_role("form", name="Panneau retiré")
    await taken.get_by_label("Retiré le").fill(datetime.now().strftime("%Y-%m-%d"))
    await taken.get_by_label("Motif").fill("arraché lors d'un accident")
    await taken.get_by_role("button", name="Enregistrer le retrait").click()
    await expect(admin.locator("main").get_by_role("alert")).to_contain_text(
        "Caméras sans panneau complet")
    await expect(admin.locator("tr.retire")).to_contain_text("arraché lors d'un accident")
    await shoot(admin, "conformite-panneaux")

    # R25: the public register as the public sees it, nothing internal; a new mayor recorded
    # shows there at once.
    await admin.get_by_role("tab", name="Registre public").click()
    frame = admin.frame_locator("iframe[title='Registre public']")
    await expect(frame.locator("body")).to_contain_text("AP 2020-091-0007")
    await expect(frame.locator("body")).not_to_contain_text("rtsp")
    who = admin.get_by_role("form", name="Responsable et contact")
    await who.get_by_label("Responsable du traitement").fill("la maire de Palaiseau, Mme Durand")
    await who.get_by_label("Motif (journalisé)").fill("élection du 30 mars")
    await who.get_by_role("button", name="Enregistrer").click()
    await expect(admin.get_by_role("status").filter(has_text="Enregistré : le registre public")
                 ).to_be_visible()
    await expect(frame.locator("body")).to_contain_text("Mme Durand")
    await shoot(admin, "conformite-registre-public")


async def test_the_data_protection_officer_declares_a_breach_and_sees_its_deadline_R39(
    ui: UiStack, db: asyncpg.Pool,
) -> None:
    auditor = await ui.login("auditor", screen="conformite")
    await auditor.get_by_role("tab", name="Violations de données").click()
    form = auditor.get_by_role("form", name="Déclarer une violation")
    await form.get_by_label("Ce qui s'est passé").fill("Clé USB d'extraction perdue")
    found = datetime.now() - timedelta(hours=60)
    await form.get_by_label("Découverte le").fill(found.strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_label("Données concernées (catégories, nombre approximatif)").fill(
        "une séquence de 10 minutes")
    await form.get_by_label("Personnes concernées (catégories, nombre approximatif)").fill(
        "passants filmés")
    await form.get_by_label("Mesures prises ou envisagées").fill("clé révoquée, plainte déposée")
    await form.get_by_role("button", name="Déclarer").click()
    await expect(auditor.locator("main [role=status]")).to_contain_text("72 heures")
    await expect(auditor.locator("tr.alerte")).to_contain_text("à notifier sous 24 h")
    assert await db.fetchval("SELECT count(*) FROM incidents") == 1
    await shoot(auditor, "conformite-violations")


async def test_a_camera_below_the_technical_norms_is_named_on_the_compliance_screen_R35(
    ui: UiStack, db: asyncpg.Pool,
) -> None:
    """Issue 40: `masking.below_norms` reached no screen. What masking measured is named, in
    French, where the commune's administrator keeps the authorisations. The stack's cameras send
    320×240, under the 352×288 floor, so masking's own verdict is the one on screen (writing one
    by hand raced with it: masking writes its first verdict after 100 flowing frames)."""
    measured = "SELECT below_norms FROM camera_health WHERE camera_id = " \
               "(SELECT id FROM cameras WHERE slug = 'm2')"

    async def masking_measured_m2() -> bool:
        return bool(await db.fetchval(measured))

    await eventually(masking_measured_m2, timeout_s=60,
                     message="masking never measured m2 against the R35 floors")
    assert (await db.fetchval(measured)).startswith("320x240 at ")
    admin = await ui.login("admin", screen="conformite")
    banner = admin.get_by_role("alert").filter(has_text="normes techniques")
    await expect(banner).to_contain_text(re.compile(
        r"m2 \(320×240 à [0-9]+(,[0-9]+)? images/s, sous le minimum de 352×288 à 6 images/s\)"))
