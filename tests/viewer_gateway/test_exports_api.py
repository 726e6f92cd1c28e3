"""Requisition exports over the API (issue 21; R13, R17): asked by a supervisor of the commune,
built in the background by the retention service's step (called here as the service calls it),
followed by state and percent, downloaded as a ZIP that verifies, delivery recorded once; every
step journaled with the reference; refused to other roles, other communes, anonymous callers."""

from __future__ import annotations

import io
import json
import zipfile
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from vigie.exports.jobs import build_next
from vigie.exports.verify import verify_package
from vigie.signing import SigningKey
from vigie.signing_keys import announce
from vigie.storage.objects import Buckets, ObjectStore

from services.retention.handlers import announce_export
from tests.conftest import events_seen
from tests.harness import eventually
from tests.viewer_gateway.conftest import REGISTER_SIGNER, GatewayUnderTest
from tests.viewer_gateway.recordings import record_minute

pytestmark = pytest.mark.integration


async def _export_events(gateway: GatewayUnderTest, export: int,
                         count: int) -> list[dict[str, object]]:
    root = gateway.rt.names.root + ".events."
    found = [json.loads(d) for s, d in events_seen()
             if s.startswith(root) and ".export." in s and json.loads(d)["export"] == export]
    return found if len(found) >= count else []


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
    tmp_path: Path,
) -> None:
    objects, buckets = store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await record_minute(db, objects, buckets.recordings, start_ns=int(start.timestamp() * 1e9),
                        seconds=30)
    key = SigningKey.generate()
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
        assert export["state"] == "queued" and export["created_by"] == "supervisor"
        early = await client.get(f"/api/exports/{export['id']}/download")
        assert early.status_code == 409 and "queued" in early.text

        # The retention service's step: the export key is there, not in the gateway.
        assert await build_next(gateway.rt.require_pool(), objects, buckets, key) == export["id"]
        assert await build_next(gateway.rt.require_pool(), objects, buckets, key) is None
        ready = (await client.get(f"/api/exports/{export['id']}")).json()
        assert ready["state"] == "ready" and ready["percent"] == 100, ready
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
        await announce_export(gateway.rt, export["id"])
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


async def test_an_export_of_a_period_erased_or_never_recorded_fails_or_lists_gaps_R17(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    """Nothing recorded in the period: the package says so (gaps), it is not an error; a hold
    that cannot be placed (the camera was removed meanwhile) fails the export with the reason."""
    objects, buckets = store
    start = datetime.now(UTC) - timedelta(hours=3)
    key = SigningKey.generate()
    async with aclosing(await gateway.login("supervisor")) as client:
        asked = (await client.post("/api/exports", json=_export(start))).json()
        await build_next(gateway.rt.require_pool(), objects, buckets, key)
        ready = (await client.get(f"/api/exports/{asked['id']}")).json()
        assert ready["state"] == "ready" and ready["gaps"] == 1
        second = (await client.post("/api/exports", json=_export(start))).json()
        await db.execute("UPDATE exports SET cameras = '{parvis}' WHERE id = $1", second["id"])
        await build_next(gateway.rt.require_pool(), objects, buckets, key)
        failed = (await client.get(f"/api/exports/{second['id']}")).json()
        assert failed["state"] == "failed" and "parvis" in failed["error"]


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
