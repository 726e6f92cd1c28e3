"""Requisition exports over the API (issue 21; R13, R17): asked by a supervisor of the commune,
built in the background by the retention service (its loops, its database role, its object-store
identity: as deployed), followed by state and percent, downloaded as a ZIP that verifies, delivery
recorded once; every step journaled with the reference; refused to other roles, other communes,
anonymous callers. An export over the camera-hours limit waits for a second supervisor; a build
that fails, whatever the cause, ends `failed` with its reason (issue 34)."""

from __future__ import annotations

import io
import json
import zipfile
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from vigie.custody.exports.jobs import erase_expired_packages
from vigie.custody.exports.verify import verify_package
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records.announced_keys import announce
from vigie.security.signing import SigningKey
from vigie.service import Runtime

from tests.conftest import events_seen
from tests.harness import eventually
from tests.viewer_gateway.conftest import EXPORT_KEY, PASSWORD, REGISTER_SIGNER, GatewayUnderTest
from tests.viewer_gateway.recordings import record_minute

pytestmark = pytest.mark.integration


async def _export_events(gateway: GatewayUnderTest, export: int,
                         count: int) -> list[dict[str, object]]:
    root = gateway.rt.names.root + ".events."
    found = [json.loads(d) for s, d in events_seen()
             if s.startswith(root) and ".export." in s and json.loads(d)["export"] == export]
    return found if len(found) >= count else []


async def _settled(client: httpx.AsyncClient, export: int, timeout_s: float = 30) -> dict[str, object]:
    """The export once the retention service is done with it (ready or failed)."""

    async def done() -> dict[str, object] | None:
        view = (await client.get(f"/api/exports/{export}")).json()
        return view if view["state"] in ("ready", "failed") else None

    return await eventually(done, timeout_s=timeout_s, message=f"export {export} never settled")


def _export(start: datetime, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "commune": "palaiseau", "cameras": ["gare"], "period_start": start.isoformat(),
        "period_end": (start + timedelta(seconds=30)).isoformat(), "reference": "PV 2026/88",
        "officer": "OPJ Leroy, CSP Massy", "recipient": "CSP Massy", "medium": "clé USB 3",
        "reason": "vol à l'arraché"}
    body.update(overrides)
    return body


async def test_an_export_asked_built_downloaded_and_delivered_R13_R17(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    tmp_path: Path, retention_service: Runtime,
) -> None:
    objects, buckets = store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await record_minute(db, objects, buckets.recordings, start_ns=int(start.timestamp() * 1e9),
                        seconds=30)
    key = EXPORT_KEY
    async with aclosing(await gateway.login("supervisor")) as client:
        for body, status, reason in (
                (_export(start, reference=""), 400, "requisition reference"),
                (_export(start, cameras=["parvis"]), 404, "no camera palaiseau/parvis"),
                (_export(start, period_end=(start + timedelta(days=4)).isoformat()), 400,
                 "longer than 72 h"),
                (_export(start, commune="ballainvilliers", cameras=["mairie"]), 403, "R9"),
                (_export(start, extra="x"), 422, "extra")):
            refused = await client.post("/api/exports", json=body)
            assert refused.status_code == status and reason in refused.text, refused.text
        assert await db.fetchval("SELECT count(*) FROM exports") == 0

        asked = await client.post("/api/exports", json=_export(start))
        assert asked.status_code == 202, asked.text
        export = asked.json()
        assert export["state"] in ("queued", "building") and export["created_by"] == "supervisor"

        # Built by the retention service, which holds the export key (not the gateway), with
        # the rights production gives it: the hold's copies under legal hold included.
        ready = await _settled(client, export["id"])
        assert ready["state"] == "ready" and ready["percent"] == 100, ready
        kept = await db.fetch("SELECT evidence_key, version_id FROM hold_items WHERE hold_id = $1",
                              ready["hold_id"])
        assert kept and all(r["version_id"] for r in kept)
        assert all([await objects.legal_hold(buckets.holds, r["evidence_key"], r["version_id"])
                    for r in kept])
        assert ready["hold_id"] and ready["manifest_sha256"] and ready["gaps"] == 0

        download = await client.get(f"/api/exports/{export['id']}/download")
        assert download.status_code == 200
        assert download.headers["cache-control"] == "no-store"
        assert download.headers["content-type"] == "application/zip"
        archive = tmp_path / "package.zip"
        archive.write_bytes(download.content)
        assert verify_package(archive, trusted_fingerprint=key.fingerprint()).ok
        names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        assert f"{ready['package']}/videos/palaiseau-gare-1.mp4" in names

        delivered = await client.post(f"/api/exports/{export['id']}/delivery", json={
            "delivered_to": "Brigadier Petit, CSP Massy", "medium": "clé USB 3"})
        assert delivered.status_code == 200, delivered.text
        assert delivered.json()["delivered_by"] == "supervisor"
        # Police systems hear of both (AsyncAPI: export.created, export.delivered).
        seen = await eventually(lambda: _export_events(gateway, export["id"], 2), timeout_s=10,
                                message="export events not published")
        assert {e["reference"] for e in seen} == {"PV 2026/88"}
        again = await client.post(f"/api/exports/{export['id']}/delivery", json={
            "delivered_to": "quelqu'un", "medium": "autre"})
        assert again.status_code == 409

    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.get("/api/exports")).status_code == 403
        assert (await operator.get(f"/api/exports/{export['id']}/download")).status_code == 403
    async with gateway.client() as anonymous:
        assert (await anonymous.get(f"/api/exports/{export['id']}/download")).status_code == 401

    rows = await db.fetch("SELECT action, actor, details FROM audit_log WHERE action LIKE "
                          "'export.%' ORDER BY id")
    assert [r["action"] for r in rows] == ["export.requested", "export.created",
                                           "export.downloaded", "export.delivered"]
    assert {json.loads(r["details"])["reference"] for r in rows} == {"PV 2026/88"}

    # A month on (R6, R7; issue 40): the retention service erases the package itself — as its
    # role, with its store identity — and journals it; a download then says so.
    object_key = await db.fetchval("SELECT object_key FROM exports WHERE id = $1", export["id"])
    await db.execute("UPDATE exports SET finished_at = finished_at - interval '29 days' "
                     "WHERE id = $1", export["id"])
    rt = retention_service
    assert await erase_expired_packages(rt.require_pool(), rt.require_store(), rt.buckets) == 0
    await db.execute("UPDATE exports SET finished_at = finished_at - interval '2 days' "
                     "WHERE id = $1", export["id"])
    assert await erase_expired_packages(rt.require_pool(), rt.require_store(), rt.buckets) == 1
    assert await objects.stat(buckets.exports, object_key) is None
    assert await erase_expired_packages(rt.require_pool(), rt.require_store(), rt.buckets) == 0
    erased = await db.fetchrow("SELECT actor, commune, details FROM audit_log "
                               "WHERE action = 'export.erased'")
    assert erased["actor"] == "retention" and erased["commune"] == "palaiseau"
    assert json.loads(erased["details"])["reference"] == "PV 2026/88"
    async with aclosing(await gateway.login("supervisor")) as client:
        gone = await client.get(f"/api/exports/{export['id']}/download")
        assert gone.status_code == 410 and "erased on" in gone.json()["detail"]
    # The evidence it was made from stays under its hold.
    assert all([await objects.legal_hold(buckets.holds, r["evidence_key"], r["version_id"])
                for r in kept])


async def test_an_export_of_a_period_erased_or_never_recorded_fails_or_lists_gaps_R17(
    gateway: GatewayUnderTest, db: asyncpg.Pool, retention_service: Runtime,
) -> None:
    """Nothing recorded in the period: the package says so (gaps), it is not an error; a hold
    that cannot be placed (the camera was removed meanwhile) fails the export with the reason."""
    start = datetime.now(UTC) - timedelta(hours=3)
    async with aclosing(await gateway.login("supervisor")) as client:
        asked = (await client.post("/api/exports", json=_export(start))).json()
        ready = await _settled(client, asked["id"])
        assert ready["state"] == "ready" and ready["gaps"] == 1
        retention_service.stop.set()  # the camera is renamed under a queued export
        second = (await client.post("/api/exports", json=_export(start))).json()
        await db.execute("UPDATE exports SET cameras = '{parvis}' WHERE id = $1", second["id"])
    from vigie.custody.exports.jobs import build_next

    await build_next(retention_service.require_pool(), retention_service.require_store(),
                     retention_service.buckets, EXPORT_KEY)
    async with aclosing(await gateway.login("supervisor")) as client:
        failed = (await client.get(f"/api/exports/{second['id']}")).json()
        assert failed["state"] == "failed" and "parvis" in failed["error"]


async def test_any_failed_build_ends_failed_with_its_reason_and_never_stays_building_issue_34(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    service_store: object, retention_service: Runtime,
) -> None:
    """A store that refuses the builder's write (the hole found under `make run`: AccessDenied on
    the holds bucket left the export « building, 0 % » for good and restarted the service) ends
    the export `failed` with a reason the screen can show, and the service goes on; a builder
    killed mid-build is taken again, and given up after three attempts with that reason."""
    from vigie.custody.exports.jobs import EXPORTS, build_next
    from vigie.custody.jobs import MAX_ATTEMPTS, STALE

    objects, buckets = store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await record_minute(db, objects, buckets.recordings, start_ns=int(start.timestamp() * 1e9),
                        seconds=30)
    retention_service.stop.set()
    async with aclosing(await gateway.login("supervisor")) as client:
        asked = (await client.post("/api/exports", json=_export(start))).json()
        # The gateway's identity may not put hold copies: a builder with it is refused.
        gateway_store = gateway.rt.require_store()
        assert await build_next(retention_service.require_pool(), gateway_store, buckets,
                                EXPORT_KEY) == asked["id"]
        failed = (await client.get(f"/api/exports/{asked['id']}")).json()
        assert failed["state"] == "failed" and "AccessDenied" in failed["error"], failed
        assert "Traceback" not in failed["error"]

        # A builder killed: its heartbeat stops; after STALE the job is taken again, and after
        # MAX_ATTEMPTS it is failed with that reason rather than retried for ever.
        second = (await client.post("/api/exports", json=_export(start))).json()
        await db.execute("UPDATE exports SET state = 'building', attempts = $2, "
                         "beat_at = now() - $3::interval WHERE id = $1", second["id"],
                         MAX_ATTEMPTS, STALE * 2)
        assert await EXPORTS.claim(retention_service.require_pool()) is None
        given_up = (await client.get(f"/api/exports/{second['id']}")).json()
        assert given_up["state"] == "failed" and "interrupted 3 times" in given_up["error"]

        # One left « building » before heartbeats existed (no beat at all): taken again too.
        third = (await client.post("/api/exports", json=_export(start))).json()
        await db.execute("UPDATE exports SET state = 'building', beat_at = NULL, "
                         "started_at = now() - $2::interval WHERE id = $1", third["id"], STALE * 2)
        claimed = await EXPORTS.claim(retention_service.require_pool())
        assert claimed is not None and claimed["id"] == third["id"] and claimed["attempts"] == 1


async def test_an_export_over_the_camera_hours_limit_waits_for_a_second_supervisor_issue_34(
    gateway: GatewayUnderTest, db: asyncpg.Pool, retention_service: Runtime,
) -> None:
    from vigie.custody.holds import SECOND_APPROVAL_CAMERA_HOURS
    from vigie.security.accounts import create_user

    await create_user(db, username="supervisor-2", full_name="Second", password=PASSWORD,
                      roles=["supervisor"], communes=["palaiseau"], designated_by="le maire",
                      trained_on=datetime.now(UTC).date() - timedelta(days=3))
    hours = SECOND_APPROVAL_CAMERA_HOURS + 6
    start = datetime.now(UTC) - timedelta(hours=hours + 1)
    wide = _export(start, period_end=(start + timedelta(hours=hours)).isoformat())
    async with aclosing(await gateway.login("supervisor")) as client:
        asked = (await client.post("/api/exports", json=wide)).json()
        assert asked["state"] == "pending", asked
        alone = await client.post(f"/api/exports/{asked['id']}/approve")
        assert alone.status_code == 409 and "someone other" in alone.text
        early = await client.get(f"/api/exports/{asked['id']}/download")
        assert early.status_code == 409 and "pending" in early.text
    assert await db.fetchval("SELECT count(*) FROM holds") == 0, "nothing held while pending"
    async with aclosing(await gateway.login("supervisor-2")) as second:
        approved = await second.post(f"/api/exports/{asked['id']}/approve")
        assert approved.status_code == 200 and approved.json()["approved_by"] == "supervisor-2"
        ready = await _settled(second, asked["id"])
        assert ready["state"] == "ready", ready
    hold = await db.fetchrow("SELECT * FROM holds WHERE id = $1", ready["hold_id"])
    assert hold["state"] == "active" and hold["approved_by"] == "supervisor-2"
    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'export.%' ORDER BY id")]
    assert actions[:3] == ["export.requested", "export.approved", "export.created"]


async def test_signing_keys_are_published_and_their_creation_and_rotation_journaled_R13(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    first, second, recording = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    assert await announce(db, first, purpose="export", service="retention")
    assert not await announce(db, first, purpose="export", service="retention"), "seen already"
    assert await announce(db, recording, purpose="recording", service="recorder")
    assert await announce(db, second, purpose="export", service="retention")
    async with gateway.client() as anonymous:  # published to anyone: public halves only
        response = await anonymous.get("/api/keys")
    assert response.status_code == 200
    keys = {k["fingerprint"]: k for k in response.json()}
    # The register key (announced by retention; the fixture's) is published too (issue 25).
    assert set(keys) == {first.fingerprint(), second.fingerprint(), recording.fingerprint(),
                         REGISTER_SIGNER.fingerprint()}
    assert keys[REGISTER_SIGNER.fingerprint()]["purpose"] == "register"
    assert keys[first.fingerprint()]["retired_at"] is not None
    assert keys[second.fingerprint()]["retired_at"] is None
    assert keys[recording.fingerprint()]["purpose"] == "recording"
    assert keys[second.fingerprint()]["public_pem"] == second.public_pem().decode()
    assert "PRIVATE" not in response.text
    journal = [(r["action"], json.loads(r["details"])) for r in await db.fetch(
        "SELECT action, details FROM audit_log WHERE action LIKE 'key.%' ORDER BY id")]
    assert [(a, d["purpose"], d["fingerprint"], d["replaces"]) for a, d in journal] == [
        ("key.created", "export", first.fingerprint(), []),
        ("key.created", "recording", recording.fingerprint(), []),
        ("key.rotated", "export", second.fingerprint(), [first.fingerprint()])]
    # The old key put back (a rollback of the secret): journaled, and it is current again.
    await announce(db, first, purpose="export", service="retention")
    assert await db.fetchval("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1") == \
        "key.reinstated"
    assert await db.fetchval("SELECT fingerprint FROM signing_keys WHERE purpose = 'export' "
                             "AND retired_at IS NULL") == first.fingerprint()
