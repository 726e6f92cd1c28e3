"""R26: signs per zone — place, install date, what they say, the cameras each covers — and the
cameras flagged: one that no complete sign covers, one used for vidéo-verbalisation without a
sign saying so. Bad input refused with nothing written: a camera of another commune, a sign dated
in the future, coordinates given alone."""

from __future__ import annotations

import json
from contextlib import aclosing
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from vigie.records.purposes import TRAFFIC

from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration
URL = "/api/communes/palaiseau/signs"


def _sign(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "place": "Parvis de la gare, côté bus", "installed_on": "2026-03-02",
        "cameras": ["gare"], "pictogram": True, "controller": True, "purposes": True,
        "rights": True, "cnil_complaint": True}
    body.update(overrides)
    return body


async def test_uncovered_cameras_are_flagged_until_a_complete_sign_covers_them_R26(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        first = (await admin.get(URL)).json()
        assert first["signs"] == []
        assert {f["camera"] for f in first["flagged"]} == {"gare", "chantier"}, \
            "every camera in service or being installed, not the disabled one"
        for body, status, reason in (
                (_sign(cameras=["mairie"]), 400, "unknown cameras in palaiseau: mairie"),
                (_sign(installed_on=str(date.today() + timedelta(days=2))), 400, "future"),
                (_sign(latitude=48.7), 400, "go together"),
                (_sign(cameras=[]), 422, "at least 1"),
                (_sign(place=""), 422, "at least 1")):
            refused = await admin.post(URL, json=body)
            assert refused.status_code == status and reason in refused.text, (reason,
                                                                               refused.text)
        assert await db.fetchval("SELECT count(*) FROM signs") == 0
        # A sign without the CNIL mention informs no one fully: the camera stays flagged.
        partial = await admin.post(URL, json=_sign(cnil_complaint=False))
        assert partial.status_code == 201, partial.text
        shown = partial.json()
        assert shown["signs"][0]["missing_mentions"] == ["cnil_complaint"]
        assert "gare" in {f["camera"] for f in shown["flagged"]}
        complete = (await admin.post(URL, json=_sign(cameras=["gare", "chantier"]))).json()
        assert complete["flagged"] == []
        # A camera used for vidéo-verbalisation needs the sign that says so.
        await db.execute("UPDATE cameras SET purposes = $1 WHERE slug = 'gare'", [TRAFFIC])
        flagged = (await admin.get(URL)).json()["flagged"]
        assert flagged == [{"camera": "gare", "name": "gare",
                            "why": "used for vidéo-verbalisation: no sign says so (R26)"}]
        await admin.post(URL, json=_sign(verbalisation=True, place="Rue de Paris"))
        assert (await admin.get(URL)).json()["flagged"] == []
        assert (await admin.get("/api/communes/ballainvilliers/signs")).status_code == 404
    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.get(URL)).status_code == 403
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'sign.added'") == 3


async def test_a_sign_taken_down_flags_its_cameras_again_R26(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        made = (await admin.post(URL, json=_sign(cameras=["gare", "chantier"]))).json()
        assert made["flagged"] == []
        sign_id = made["signs"][0]["id"]
        removal = f"{URL}/{sign_id}/removal"
        today = date.today()
        for body, status, reason in (
                ({"removed_on": str(today + timedelta(days=1)), "reason": "volé"}, 400, "future"),
                ({"removed_on": "2026-03-01", "reason": "volé"}, 400, "before it was installed"),
                ({"removed_on": str(today), "reason": ""}, 422, "at least 1"),
                ({"removed_on": str(today)}, 422, "reason")):
            refused = await admin.post(removal, json=body)
            assert refused.status_code == status and reason in refused.text, (reason,
                                                                               refused.text)
        assert (await admin.post(f"{URL}/999999/removal", json={
            "removed_on": str(today), "reason": "x"})).status_code == 404
        assert await db.fetchval("SELECT removed_on FROM signs") is None, "nothing written"
        gone = await admin.post(removal, json={"removed_on": str(today),
                                               "reason": "arraché lors d'un accident"})
        assert gone.status_code == 200, gone.text
        shown = gone.json()
        assert {f["camera"] for f in shown["flagged"]} == {"gare", "chantier"}
        assert shown["signs"][0]["removed_on"] == str(today), "the row stays, dated"
        again = await admin.post(removal, json={"removed_on": str(today), "reason": "x"})
        assert again.status_code == 409
        # Another commune's administrator does not reach it.
        assert (await admin.post(f"/api/communes/ballainvilliers/signs/{sign_id}/removal",
                                 json={"removed_on": str(today), "reason": "x"})
                ).status_code == 404
    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.post(removal, json={"removed_on": str(today), "reason": "x"})
                ).status_code == 403
    journal = await db.fetchrow("SELECT * FROM audit_log WHERE action = 'sign.removed'")
    assert journal["reason"] == "arraché lors d'un accident"
    assert sorted(journal["cameras"]) == ["palaiseau/chantier", "palaiseau/gare"]


async def test_the_controller_and_rights_contact_change_and_the_public_register_follows_R25(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    identity = "/api/communes/palaiseau/identity"
    async with aclosing(await gateway.login("admin")) as admin:
        for body, status, reason in (({}, 400, "say what changes"),
                                     ({"controller": "   "}, 400, "cannot be emptied"),
                                     ({"controller": ""}, 422, "at least 1"),
                                     ({"mayor": "x"}, 422, "extra")):
            refused = await admin.put(identity, json=body)
            assert refused.status_code == status and reason in refused.text, (reason,
                                                                               refused.text)
        changed = await admin.put(identity, json={
            "controller": "la maire de Palaiseau, Mme Durand",
            "rights_contact": "Mairie de Palaiseau, 91120 — dpo@ville-palaiseau.fr",
            "reason": "élection du 30 mars"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["controller"] == "la maire de Palaiseau, Mme Durand"
        assert (await admin.put("/api/communes/ballainvilliers/identity",
                                json={"controller": "x"})).status_code == 404
    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.put(identity, json={"controller": "x"})).status_code == 403
    async with gateway.client() as anonymous:
        page = await anonymous.get("/public/palaiseau/cameras.csv")
        assert "Mme Durand" in page.text and "dpo@ville-palaiseau.fr" in page.text
    journal = await db.fetchrow("SELECT * FROM audit_log WHERE action = "
                                "'commune.identity_changed'")
    assert journal["reason"] == "élection du 30 mars"
    assert set(json.loads(journal["details"])) == {"controller", "rights_contact"}
