"""`make run`, then the printed address (issue 11, "done when"): the first administrator signs in
with the printed password and TOTP secret, creates a named operator account in the browser, and
that new agent signs in and sees the demo cameras live on the wall."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from pathlib import Path

import pyotp
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.stack import start_stack
from tests.ui.conftest import shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
AGENT_PASSWORD = "une phrase de passe solide"


async def test_a_new_agent_signs_in_on_make_run_and_watches_the_wall(
    tmp_path: Path, browser: Browser,
) -> None:
    stack = await asyncio.to_thread(start_stack, tmp_path / "var")
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale="fr-FR")
    try:
        out = stack.output()
        address = re.search(r"Web: (http://\S+)", out).group(1)  # type: ignore[union-attr]
        password = re.search(r"login 'admin', password '([^']+)'", out).group(1)  # type: ignore[union-attr]
        secret = re.search(r"secret ([A-Z2-7]+)", out).group(1)  # type: ignore[union-attr]
        page = await context.new_page()
        await page.goto(address)
        await expect(page).to_have_url(re.compile(r"/ui/"))
        await page.get_by_label("Identifiant").fill("admin")
        await page.get_by_label("Mot de passe").fill(password)
        await page.get_by_role("button", name="Se connecter").click()
        await page.get_by_label("Code de l'application d'authentification").fill(
            pyotp.TOTP(secret).now())
        await page.get_by_role("button", name="Se connecter").click()
        # The municipal police hold Palaiseau round the clock (else, at night, the national police
        # would, and a municipal agent would rightly see nothing: R27).
        hours = page.get_by_role("form", name="Horaires Palaiseau")
        for day in ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"):
            await hours.get_by_label(day).fill("00:00-24:00")
        await hours.get_by_role("button", name="Enregistrer les horaires").click()
        await expect(page.get_by_text("Horaires de la police municipale enregistrés.")).to_be_visible()
        await page.get_by_role("tab", name="Utilisateurs").click()
        form = page.get_by_role("form", name="Nouvel utilisateur")
        await form.get_by_label("Identifiant").fill("agent.dupont")
        await form.get_by_label("Nom complet").fill("Camille Dupont")
        await form.get_by_label("Mot de passe initial").fill(AGENT_PASSWORD)
        await form.get_by_label("Opérateur").check()
        await form.get_by_label("Palaiseau").check()
        await form.get_by_label("Désigné par").fill("le maire de Palaiseau")
        await form.get_by_label("Acte de désignation").fill("arrêté du maire n° 2026-042")
        await form.get_by_label("Désignation jusqu'au").fill(
            (date.today() + timedelta(days=365)).isoformat())
        await form.get_by_label("Matricule").fill("PM-0042")
        # R11: no image without the data-protection training's date (found when the wall stayed
        # empty for an agent created without it).
        await form.get_by_label("Formation protection des données le (R11)").fill(
            date.today().isoformat())
        await form.get_by_role("button", name="Créer le compte").click()
        await expect(page.locator("tr[data-user='agent.dupont']")).to_contain_text("Opérateur")
        await page.get_by_role("button", name="Se déconnecter").click()
        # The administration screen has its own « Identifiant »: fill the sign-in form's, once shown.
        await page.locator("body[data-ecran='connexion']").wait_for()

        await page.get_by_label("Identifiant").fill("agent.dupont")
        await page.get_by_label("Mot de passe").fill(AGENT_PASSWORD)
        await page.get_by_role("button", name="Se connecter").click()
        # The password was the administrator's: the agent's first sign-in sets its own (R8).
        await page.locator("body[data-ecran='mot-de-passe']").wait_for(timeout=10_000)
        await page.get_by_label("Mot de passe reçu").fill(AGENT_PASSWORD)
        await page.get_by_label("Nouveau mot de passe (12 caractères au moins)").fill(
            "mon-secret-a-moi-42")
        await page.get_by_label("Nouveau mot de passe, encore").fill("mon-secret-a-moi-42")
        await page.get_by_role("button", name="Enregistrer mon mot de passe").click()
        await page.locator("body:not([data-ecran='connexion']):not([data-ecran='mot-de-passe'])"
                           ).wait_for(timeout=10_000)
        await page.locator("#commune").select_option("palaiseau")
        await expect(page.locator("#tenue")).to_have_attribute("data-holder", "municipal_police")
        tile = page.locator(".tuile[data-camera='rue-de-paris']")
        await expect(tile).to_have_attribute("data-etat", "en ligne", timeout=60_000)
        await page.wait_for_function(
            "() => document.querySelector(\".tuile[data-camera='rue-de-paris'] img\")"
            "?.naturalWidth > 0", timeout=30_000)
        await shoot(page, "make-run-mur")
    except Exception:
        for p in context.pages:
            print("page text:", await p.locator("body").inner_text())
        raise
    finally:
        await context.close()
        await asyncio.to_thread(stack.stop)
