"""« Demandes d'accès » in the browser (issue 23; R20, R21, R23, R24): a supervisor records a
filmed person's request (the identity check, never a copy), sees its deadline, refuses it with
grounds (the CNIL mention added), closes it (the hold released), and prints a proof of deletion;
and makes a redacted copy in the editor (R22): marks the requester, previews, approves, answers."""

from __future__ import annotations

import io
import json
import re
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import asyncpg
import av
import cv2
import pytest
from playwright.async_api import expect
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.security.accounts import create_user
from vigie.service import Runtime

from tests.ui.conftest import PASSWORD, UiStack, shoot
from tests.viewer_gateway.recordings import record_minute

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


async def test_a_supervisor_marks_the_requester_previews_approves_and_answers_with_a_copy_R22(
    ui: UiStack, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    retention_service: Runtime,
) -> None:
    """Built by the retention service as deployed; approved by a second supervisor, since who
    asked for the copy cannot release it (four eyes, issue 34)."""
    objects, buckets = store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2, milliseconds=630)
    await record_minute(db, objects, buckets.recordings, start_ns=int(start.timestamp() * 1e9),
                        seconds=30)
    async with aclosing(await ui.gateway.login("supervisor")) as client:
        made = await client.post("/api/access-requests", json={
            "commune": "palaiseau", "requester": "Mme Claire Dubois", "contact": "12 rue des Lilas",
            "identity_document": "carte_identite", "identity_checked_by": "brigadier Morel",
            "cameras": ["gare"], "period_start": start.isoformat(),
            "period_end": (start + timedelta(seconds=30)).isoformat()})
        assert made.status_code == 201, made.text
    page = await ui.login("supervisor", screen="acces")
    row = page.locator("table.demandes tbody tr").first
    await row.get_by_role("button", name="Copie floutée").click()
    editor = page.get_by_role("region", name="Copie floutée")
    canvas = editor.locator("canvas.redaction")
    await expect(canvas).to_have_attribute("data-picture-time", re.compile(r"\d"))
    assert await canvas.evaluate("c => [c.width, c.height]") == [160, 120], "the picture's pixels"

    async def drag(x0: float, y0: float, x1: float, y1: float) -> None:
        box = await canvas.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * y0)
        await page.mouse.down()
        await page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * y1, steps=5)
        await page.mouse.up()

    slider = editor.get_by_label("Position dans l'enregistrement")
    await slider.fill("3")
    await drag(0.02, 0.35, 0.6, 0.8)
    await editor.get_by_role("button", name="Repère : le demandeur est ici").click()
    await slider.fill("14")
    await editor.get_by_role("button", name="Repère : le demandeur est ici").click()
    await expect(editor.locator("ol.reperes li")).to_have_count(2)
    await shoot(page, "copie-floutee-editeur")
    await editor.get_by_role("button", name="Préparer la copie floutée").click()
    await expect(editor.locator("p.info[role=status]")).to_contain_text("demandée")
    asked = await db.fetchrow("SELECT * FROM access_copies")
    # The copy spans the marks (3 s and 14 s into the recording), the box at both.
    assert abs((asked["period_start"] - (start + timedelta(seconds=3))).total_seconds()) < 0.1
    assert abs((asked["period_end"] - (start + timedelta(seconds=14))).total_seconds()) < 0.1
    keep = json.loads(asked["keep"])
    assert [k["t"] for k in keep] == pytest.approx([0.0, 11.0], abs=0.05)
    assert keep[0]["box"] == keep[1]["box"] and keep[0]["box"][2] > 80, keep

    copy = editor.locator("table.copies tbody tr").first
    await expect(copy).to_have_attribute("data-state", "preview", timeout=30_000)
    video = copy.locator("video")
    await expect(video).to_have_count(1)
    duration = await video.evaluate("v => new Promise(r => v.readyState >= 1 ? r(v.duration) "
                                    ": v.addEventListener('loadedmetadata', () => r(v.duration)))")
    assert 10.5 < duration < 11.5, duration
    preview = await page.request.get(f"{ui.gateway.url}/api/access-requests/{made.json()['id']}"
                                     f"/copies/{asked['id']}/video")
    box = [int(v) for v in keep[0]["box"]]
    with av.open(io.BytesIO(await preview.body()), format="mp4") as video_file:
        detail = [float(cv2.Laplacian(f.to_ndarray(format="gray")[
            box[1]:box[1] + box[3], box[0]:box[0] + box[2]], cv2.CV_64F).var())
            for f in video_file.decode(video=0)]
    # The requester's box is sharp from the first picture (the detector's warm-up: it took the
    # whole first picture for a moving vehicle once) to the last.
    assert min(detail) > 0.2 * max(detail), (detail[:3], max(detail))
    await shoot(page, "copie-floutee-apercu")
    await expect(copy.get_by_role("button", name="Approuver")).to_have_count(0)
    await expect(copy).to_contain_text("à approuver par une autre personne que vous")

    await create_user(db, username="supervisor-2", full_name="Second", password=PASSWORD,
                      roles=["supervisor"], communes=["palaiseau"], designated_by="le maire",
                      trained_on=datetime.now(UTC).date() - timedelta(days=10))
    page = await ui.login("supervisor-2", screen="acces")
    row = page.locator("table.demandes tbody tr").first
    await row.get_by_role("button", name="Copie floutée").click()
    editor = page.get_by_role("region", name="Copie floutée")
    copy = editor.locator("table.copies tbody tr").first
    await copy.get_by_role("button", name="Approuver").click()
    await expect(copy).to_have_attribute("data-state", "approved")
    await expect(copy.get_by_role("link", name="Télécharger le dossier")).to_be_visible()
    await copy.get_by_role("button", name="Répondre par cette copie").click()
    await expect(row).to_have_attribute("data-state", "answered")
    assert await db.fetchval("SELECT answer FROM access_requests") == "copy"
