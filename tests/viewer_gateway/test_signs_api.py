"""R26: signs per zone — place, install date, what they say, the cameras each covers — and the
cameras flagged: one that no complete sign covers, one used for vidéo-verbalisation without a
sign saying so. Bad input refused with nothing written: a camera of another commune, a sign dated
in the future, coordinates given alone."""

from __future__ import annotations

from contextlib import aclosing
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from vigie.purposes import TRAFFIC

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
                (_sign(cameras=["mairie"]), 400, "cameras not of palaiseau: mairie"),
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
