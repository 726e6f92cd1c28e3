"""Mask versions over the API (issue 11; REGULATION.md R1, R2): only a mask administrator saves
and approves, a version is validated and never edited, approval of an empty version needs the
explicit « aucun espace privé », approval puts a camera being commissioned into service, and every
step is in the register."""

from __future__ import annotations

import json
from contextlib import aclosing

import asyncpg
import pytest
from vigie.records.audit_register import Entry, record

from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration
SQUARE = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]


async def test_save_approve_and_history_R1_R2(gateway: GatewayUnderTest,
                                              db: asyncpg.Pool) -> None:
    base = "/api/cameras/palaiseau/chantier/masks"
    async with aclosing(await gateway.login("operator")) as operator:
        refused = await operator.post(base, json={"masks": [{"points": SQUARE}]})
        assert refused.status_code == 403 and "mask_admin" in refused.text
    async with aclosing(await gateway.login("mask-admin")) as admin:
        crossed = await admin.post(base, json={"masks": [
            {"points": [[0.1, 0.1], [0.4, 0.4], [0.4, 0.1], [0.1, 0.4]]}]})
        assert crossed.status_code == 422 and "intersects itself" in crossed.text
        outside = await admin.post(base, json={"masks": [{"points": [[0.1, 0.1], [1.5, 0.1],
                                                                     [0.1, 0.4]]}]})
        assert outside.status_code == 422 and "outside 0..1" in outside.text
        empty = await admin.post(base, json={"masks": [], "note": "façade sans fenêtre"})
        assert empty.status_code == 201 and empty.json()["version"] == 1
        no_flag = await admin.post(f"{base}/1/approve", json={})
        assert no_flag.status_code == 422 and "no_private_space" in no_flag.text
        assert await db.fetchval("SELECT state FROM cameras WHERE slug = 'chantier'") == \
            "commissioning"
        square = await admin.post(base, json={"masks": [{"label": "fenêtre", "mode": "blur",
                                                         "points": SQUARE}]})
        assert square.status_code == 201 and square.json()["version"] == 2
        approved = await admin.post(f"{base}/2/approve", json={})
        assert approved.status_code == 200 and approved.json()["applied"]
        assert await db.fetchval("SELECT state FROM cameras WHERE slug = 'chantier'") == "active"
        again = await admin.post(f"{base}/2/approve", json={})
        assert again.status_code == 409
        older = await admin.post(f"{base}/1/approve", json={"no_private_space": True})
        assert older.status_code == 409 and "save this one again" in older.text
        missing = await admin.post(f"{base}/9/approve", json={})
        assert missing.status_code == 404
        history = (await admin.get(base)).json()
        assert [(v["version"], v["applied"], v["approved_by"]) for v in history] == [
            (2, True, "mask-admin"), (1, False, None)]
        assert history[0]["document"]["masks"][0]["mode"] == "blur"
        other = await admin.get("/api/cameras/ballainvilliers/mairie/masks")
        assert other.status_code == 404  # another commune: no hint (R9)
    rows = await db.fetch("SELECT action, details, reason FROM audit_log WHERE actor = "
                          "'mask-admin' AND action LIKE 'mask.%' ORDER BY id")
    assert [r["action"] for r in rows] == ["mask.saved", "mask.saved", "mask.approved"]
    assert rows[0]["reason"] == "façade sans fenêtre"
    assert '"put_in_service": true' in rows[2]["details"]
    # One person drew and approved it: the register says so plainly (issue 18, R2).
    assert '"self_approved": true' in rows[2]["details"]


async def test_empty_version_is_approved_with_no_private_space_and_snapshot_needs_masking(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    base = "/api/cameras/palaiseau/chantier"
    async with aclosing(await gateway.login("mask-admin")) as admin:
        assert (await admin.post(f"{base}/masks", json={"masks": []})).status_code == 201
        approved = await admin.post(f"{base}/masks/1/approve", json={"no_private_space": True})
        assert approved.status_code == 200
        no_reason = await admin.post(f"{base}/snapshot", json={"reason": " "})
        assert no_reason.status_code == 422
        # No masking worker runs in this test: nobody answers, and nothing is recorded as seen.
        unanswered = await admin.post(f"{base}/snapshot", json={"reason": "révision",
                                                                  "resurvey": True})
        assert unanswered.status_code == 503 and "masking did not answer" in unanswered.text
    details = await db.fetchval("SELECT details FROM audit_log WHERE action = 'mask.approved'")
    assert '"no_private_space": true' in details
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'mask.snapshot'") == 0


async def test_a_new_source_sends_the_camera_back_to_commissioning_R1(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    """Issue 17: changing an active camera's RTSP address kept its approved masks."""
    square = [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3], [0.1, 0.3]]
    async with aclosing(await gateway.login("admin")) as admin, \
            aclosing(await gateway.login("mask-admin")) as mask_admin:
        saved = await mask_admin.post("/api/cameras/palaiseau/gare/masks",
                                      json={"masks": [{"points": square}]})
        old = saved.json()["version"]
        assert (await mask_admin.post(f"/api/cameras/palaiseau/gare/masks/{old}/approve",
                                      json={})).status_code == 200
        await db.execute("INSERT INTO camera_sources VALUES ((SELECT id FROM cameras WHERE "
                         "slug = 'gare'), 'rtsp://cam/one') ON CONFLICT DO NOTHING")
        same = await admin.patch("/api/cameras/palaiseau/gare", json={"name": "Gare RER"})
        assert same.json()["state"] == "active", "a change of name films the same thing"
        moved = await admin.patch("/api/cameras/palaiseau/gare",
                                  json={"rtsp_url": "rtsp://user:pw@cam/two"})
        assert moved.status_code == 200 and moved.json()["state"] == "commissioning"
        entry = await db.fetchrow("SELECT details FROM audit_log WHERE action = 'camera.changed' "
                                  "ORDER BY id DESC LIMIT 1")
        assert json.loads(entry["details"])["back_to_commissioning"] is True
        assert "pw" not in entry["details"]
        # No way around the mask administrator: not by the state, not by an older version.
        forced = await admin.patch("/api/cameras/palaiseau/gare", json={"state": "active"})
        assert forced.status_code == 409, forced.text
        again = await mask_admin.post("/api/cameras/palaiseau/gare/masks",
                                      json={"masks": [{"points": square}]})
        await db.execute("UPDATE cameras SET source_changed_at = now() WHERE slug = 'gare'")
        stale = await mask_admin.post(
            f"/api/cameras/palaiseau/gare/masks/{again.json()['version']}/approve", json={})
        assert stale.status_code == 409 and "before the camera's source changed" in stale.text
        fresh = await mask_admin.post("/api/cameras/palaiseau/gare/masks",
                                      json={"masks": [{"points": square}]})
        approved = await mask_admin.post(
            f"/api/cameras/palaiseau/gare/masks/{fresh.json()['version']}/approve", json={})
        assert approved.status_code == 200, approved.text
    assert await db.fetchval("SELECT state FROM cameras WHERE slug = 'gare'") == "active"


async def test_a_snapshot_of_a_camera_in_service_is_a_rare_declared_resurvey_R1(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    """Issue 17: a mask administrator, who has no live right, could poll unmasked keyframes of
    any camera in service."""
    async with aclosing(await gateway.login("mask-admin")) as admin:
        polled = await admin.post("/api/cameras/palaiseau/gare/snapshot",
                                  json={"reason": "curiosité"})
        assert polled.status_code == 409 and "re-survey" in polled.json()["detail"]
        disabled = await admin.post("/api/cameras/palaiseau/ancienne/snapshot",
                                    json={"reason": "x", "resurvey": True})
        assert disabled.status_code == 409
        for _ in range(3):  # journaled as if answered (nobody answers in this test)
            await record(db, Entry(actor="mask-admin", action="mask.snapshot",
                                   commune="palaiseau", cameras=["palaiseau/gare"],
                                   reason="révision"))
        limited = await admin.post("/api/cameras/palaiseau/gare/snapshot",
                                   json={"reason": "révision du champ", "resurvey": True})
        assert limited.status_code == 429, limited.text


async def test_snapshots_are_limited_and_journaled_in_every_state_per_camera_and_account_R1(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    """Issue 34: a cosmetic source change puts a camera back into commissioning, where snapshots
    were unlimited (6 unmasked pictures in 25 s). Now a camera not in service gives
    COMMISSIONING_PER_HOUR an hour, an account ACCOUNT_PER_HOUR over every camera; each refused
    try is journaled."""
    from services.viewer_gateway.api.masks import ACCOUNT_PER_HOUR, COMMISSIONING_PER_HOUR
    await db.execute("UPDATE cameras SET state = 'commissioning' WHERE slug = 'gare'")
    for _ in range(COMMISSIONING_PER_HOUR):  # journaled as if answered (nobody answers here)
        await record(db, Entry(actor="mask-admin", action="mask.snapshot", commune="palaiseau",
                               cameras=["palaiseau/gare"], reason="mise en service"))
    async with aclosing(await gateway.login("mask-admin")) as admin:
        limited = await admin.post("/api/cameras/palaiseau/gare/snapshot",
                                   json={"reason": "mise en service"})
        assert limited.status_code == 429 and "not in service" in limited.text, limited.text
        for i in range(ACCOUNT_PER_HOUR - COMMISSIONING_PER_HOUR):
            await record(db, Entry(actor="mask-admin", action="mask.snapshot",
                                   commune="palaiseau", cameras=[f"palaiseau/autre-{i}"],
                                   reason="mise en service"))
        await db.execute("UPDATE cameras SET state = 'commissioning' WHERE slug = 'chantier'")
        tired = await admin.post("/api/cameras/palaiseau/chantier/snapshot",
                                 json={"reason": "mise en service"})
        assert tired.status_code == 429 and "by one account" in tired.text, tired.text
    refused = await db.fetch("SELECT cameras, outcome, details FROM audit_log "
                             "WHERE action = 'mask.snapshot' AND outcome = 'refused' ORDER BY id")
    assert [r["cameras"] for r in refused] == [["palaiseau/gare"], ["palaiseau/chantier"]]
    assert "by one account" in json.loads(refused[1]["details"])["refused"]
