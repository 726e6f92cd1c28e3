"""A commune joins the deployment over the API (issue 24): only a deployment administrator may
create one (a commune's own administrator may not), it is designated for it at once to name its
first accounts, it sees no image; bad input refused with nothing written (R4, R9, R10)."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import asyncpg
import pytest
from vigie.operations.provision import recordings_expiry_rules

from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration


def _orsay(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"slug": "orsay", "name": "Orsay", "retention_days": 20,
                            "controller": "le maire d'Orsay",
                            "rights_contact": "Mairie d'Orsay, dpo@mairie-orsay.fr"}
    body.update(overrides)
    return body


async def test_a_deployment_administrator_onboards_a_commune(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("deployment-admin")) as deployer:
        for body, status, reason in (
                (_orsay(retention_days=31), 422, "less than or equal to 30"),
                (_orsay(slug="Orsay!"), 422, "pattern"),
                (_orsay(controller=""), 422, "at least 1"),
                (_orsay(time_zone="Mars/Olympus"), 400, "is not a time zone"),
                (_orsay(slug="palaiseau"), 409, "already used"),
                (_orsay(extra=1), 422, "extra")):
            refused = await deployer.post("/api/communes", json=body)
            assert refused.status_code == status and reason in refused.text, (reason,
                                                                               refused.text)
        assert await db.fetchval("SELECT count(*) FROM communes WHERE slug = 'orsay'") == 0
        made = await deployer.post("/api/communes", json=_orsay())
        assert made.status_code == 201, made.text
        assert (made.json()["slug"], made.json()["retention_days"]) == ("orsay", 20)
        assert "orsay/" in await recordings_expiry_rules(db), "its lifecycle rule follows"
        assert await db.fetchval("SELECT 'orsay' = ANY(communes) FROM users "
                                 "WHERE username = 'deployment-admin'")
        assert (await deployer.get("/api/communes/orsay")).status_code == 200
        assert await db.fetchval("SELECT actor FROM audit_log WHERE action = 'commune.created' "
                                 "AND commune = 'orsay'") == "deployment-admin"
        # No image rights: a deployment administrator is no agent (R10).
        rights = (await deployer.get("/api/cameras/palaiseau/gare/rights")).json()["rights"]
        assert not rights["live"]["allowed"] and not rights["playback"]["allowed"]
    async with aclosing(await gateway.login("admin")) as commune_admin:
        await db.execute("UPDATE users SET communes = '{palaiseau}' "
                         "WHERE username = 'deployment-admin'")
        # Designated for this commune alone, the deployment administrator's account is still
        # not the commune administrator's to disable, demote or re-enrol (R9).
        for attempt in (commune_admin.patch("/api/users/deployment-admin",
                                            json={"disabled": True}),
                        commune_admin.patch("/api/users/deployment-admin",
                                            json={"roles": ["operator"]}),
                        commune_admin.post("/api/users/deployment-admin/totp")):
            refused = await attempt
            assert refused.status_code == 403 and "deployment administrator" in refused.text
        assert await db.fetchval("SELECT NOT disabled AND roles = '{deployment_admin}' "
                                 "FROM users WHERE username = 'deployment-admin'")
    for username in ("admin", "supervisor"):  # a commune's own administrator cannot
        async with aclosing(await gateway.login(username)) as other:
            refused = await other.post("/api/communes", json=_orsay(slug="massy"))
            assert refused.status_code == 403 and "commune_admin" in refused.text
    async with gateway.client() as anonymous:
        assert (await anonymous.post("/api/communes", json=_orsay(slug="massy"))
                ).status_code == 401
    assert await db.fetchval("SELECT count(*) FROM communes WHERE slug = 'massy'") == 0
