"""« Demandes d'accès » in the browser (issue 23; R20, R21, R23, R24): a supervisor records a
filmed person's request (the identity check, never a copy), sees its deadline, refuses it with
grounds (the CNIL mention added), closes it (the hold released), and prints a proof of deletion."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import expect

from tests.ui.conftest import UiStack, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_a_supervisor_records_refuses_and_closes_a_request_R20_R21_R23_R24(
    ui: UiStack, db: asyncpg.Pool,
) -> None:
    page = await ui.login("supervisor", screen="acces")
    form = page.get_by_role("form", name="Nouvelle demande d'accès")
    await form.get_by_label("Demandeur").fill("M. Jean Martin")
    await form.get_by_label("Adresse de réponse").fill("3 allée des Tilleuls, Palaiseau")
    await form.get_by_label("Pièce d'identité présentée").select_option("passeport")
    await form.get_by_label("Vérifiée par").fill("brigadier Morel")
    await form.get_by_label("Description (tenue, lieu, heure)").fill("veste bleue, vélo")
    await form.get_by_role("button", name="Enregistrer et geler la période").click()
    await expect(form.get_by_role("alert")).to_contain_text("Cochez au moins une caméra")
    await form.get_by_label("m1").check()
    await form.get_by_role("button", name="Enregistrer et geler la période").click()
    await expect(form.get_by_role("status")).to_contain_text("la période est gelée")
    row = page.locator("table.demandes tbody tr").first
    await expect(row).to_have_attribute("data-urgency", "on_time")
    await expect(row).to_contain_text("passeport vérifiée par brigadier Morel")
    assert await db.fetchval("SELECT count(*) FROM holds WHERE kind = 'right_of_access' "
                             "AND state = 'active'") == 1
    await shoot(page, "demandes-acces")

    await row.get_by_role("button", name="Refuser").click()
    dialog = page.locator("dialog")
    await dialog.get_by_label("Motifs (procédure en cours, sécurité publique, droits des tiers)"
                              ).fill("droits des tiers : plusieurs personnes identifiables")
    await dialog.get_by_role("button", name="Refuser").click()
    await expect(row).to_have_attribute("data-state", "answered")
    await expect(row).to_contain_text("CNIL")
    await row.get_by_role("button", name="Clore").click()
    await page.locator("dialog").get_by_role("button", name="Clore").click()
    await expect(row).to_have_attribute("data-state", "closed")
    assert await db.fetchval("SELECT state FROM holds WHERE kind = 'right_of_access'") == \
        "released"

    proof = page.get_by_role("form", name="Attestation d'effacement")
    async with page.context.expect_page() as opened:
        await proof.get_by_role("button", name="Attestation (à imprimer)").click()
    extract = await opened.value
    await expect(extract.get_by_role("heading", level=1)).to_contain_text(
        "attestation d'effacement")
