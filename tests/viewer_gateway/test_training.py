"""R11: no habilitation to view, export or verbalise without a data-protection training date on the
account — refused with the reason, journaled — and granted as soon as an administrator records it
(never by the account itself, never a date to come)."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration


async def test_an_agent_without_training_sees_nothing_until_it_is_recorded_R11(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    await db.execute("UPDATE users SET trained_on = NULL WHERE username = 'supervisor'")
    async with aclosing(await gateway.login("supervisor")) as agent, \
            aclosing(await gateway.login("admin")) as admin:
        rights = (await agent.get("/api/cameras/palaiseau/gare/rights")).json()["rights"]
        for action in ("live", "playback", "export", "verbalisation"):
            assert not rights[action]["allowed"] and "(R11)" in rights[action]["reason"], action
        assert rights["holds"]["allowed"], "the rest of the supervisor's work goes on"
        refused = await agent.post("/api/cameras/palaiseau/gare/playback", json={
            "category": "damage", "reason": "abribus dégradé",
            "at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()})
        assert refused.status_code == 403 and "training" in refused.json()["detail"]
        assert (await agent.get("/api/exports")).status_code == 403
        journaled = await db.fetch("SELECT actor, reason, details FROM audit_log "
                                   "WHERE action = 'access.refused'")
        assert journaled and all(r["actor"] == "supervisor" for r in journaled)
        assert all("R11" in r["reason"] for r in journaled)
        # A mosaic polls its tiles every second: the same refusal is journaled once, not each time.
        for _ in range(5):
            assert (await agent.get("/api/cameras/palaiseau/gare/tile.jpg")).status_code == 403
        tiles = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = "
                                  "'access.refused' AND details->>'action' = 'live'")
        assert tiles == 1

        future = await admin.patch("/api/users/supervisor", json={
            "trained_on": str(date.today() + timedelta(days=3))})
        assert future.status_code == 400 and "future" in future.text
        own = await admin.patch("/api/users/admin", json={"trained_on": str(date.today())})
        assert own.status_code == 409
        done = await admin.patch("/api/users/supervisor", json={"trained_on": "2026-11-02"})
        assert done.status_code == 200 and done.json()["trained_on"] == "2026-11-02"
        rights = (await agent.get("/api/cameras/palaiseau/gare/rights")).json()["rights"]
        assert rights["live"]["allowed"] and rights["export"]["allowed"]
        assert (await agent.get("/api/exports")).status_code == 200
    changed = await db.fetchval("SELECT details FROM audit_log WHERE action = 'user.changed' "
                                "ORDER BY id DESC LIMIT 1")
    assert "trained_on" in changed
