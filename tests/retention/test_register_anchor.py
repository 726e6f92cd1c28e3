"""The register's anchor (issue 25; R12): the retention service signs the head of the chain with the
register key — the gateway holds none — and each checkpoint leaves the database at once, on EVENTS
and in the evidence bucket: a witness's copy then catches the checkpoints cut with the rows they
sign."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records.announced_keys import register_keys
from vigie.records.audit_register import Checkpoint, Entry, record, verify
from vigie.security.signing import SigningKey, trusted_keys

from services.retention.register_anchor import Anchor, object_key
from services.retention.settings import RetentionSettings
from tests.conftest import events_seen
from tests.harness import eventually
from tests.retention.helpers import runtime

pytestmark = pytest.mark.integration


def _published(names: BusNames) -> list[dict]:  # type: ignore[type-arg]
    subject = f"{names.root}.events._system.register.checkpoint"
    return [json.loads(d) for s, d in events_seen() if s == subject]


async def test_checkpoints_are_signed_by_retention_published_and_stored_R12(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    streams: BusNames, probe_nc: NATS, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    key = SigningKey.generate()
    anchor = Anchor(rt, key, RetentionSettings(checkpoint_heartbeat_s=3600))
    await anchor.start()
    assert await db.fetchval("SELECT purpose FROM signing_keys WHERE fingerprint = $1",
                             key.fingerprint()) == "register"
    for i in range(3):
        await record(db, Entry(actor="agent", action="playback", reason=f"ronde {i}"))
        await anchor.step()
    await anchor.step()  # nothing new: no checkpoint
    assert await db.fetchval("SELECT max(seq) FROM audit_checkpoints") == 3

    events = await eventually(lambda: len(_published(streams)) >= 3 and _published(streams),
                              timeout_s=10, message="checkpoints not published on EVENTS")
    assert [e["seq"] for e in events] == [1, 2, 3]
    stored = json.loads(await objects.get(buckets.evidence, object_key(3)))
    assert stored["seq"] == 3 and stored["signature"] == events[2]["signature"]

    # The witness's copy (the events) against a database whose last rows and checkpoint were cut.
    witness = [Checkpoint.from_dict(e) for e in events]
    async with db.acquire() as conn, conn.transaction():
        for table in ("audit_log", "audit_checkpoints"):
            await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        last = await conn.fetchval("SELECT last_id FROM audit_checkpoints WHERE seq = 3")
        await conn.execute("DELETE FROM audit_log WHERE id >= $1", last)
        await conn.execute("DELETE FROM audit_checkpoints WHERE seq = 3")
        for table in ("audit_log", "audit_checkpoints"):
            await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    async with db.acquire() as conn:
        keys = await register_keys(conn)
        assert (await verify(conn, keys)).ok, "the database alone cannot tell"
        cut = await verify(conn, keys, witness=witness)
    assert not cut.ok and "checkpoint 3, which a witness holds" in cut.problem


async def test_the_retention_service_purges_the_register_past_its_retention_R15(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    streams: BusNames, probe_nc: NATS, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    """Issue 40: the journal was kept forever (the purge was a command nobody scheduled). The
    retention service applies its retention — here 24 months — as its own role."""
    from datetime import UTC, datetime, timedelta

    from services.retention.handlers import apply_register_retention

    _objects, buckets = store
    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    now = datetime.now(UTC)
    for months_ago in (30, 26, 3):
        await record(db, Entry(actor="agent", action="playback", reason=f"{months_ago} mois"),
                     at=now - timedelta(days=30.5 * months_ago))
    key = SigningKey.generate()
    settings = RetentionSettings(register_keep_months=24)
    assert await apply_register_retention(rt, key, settings) == 2
    assert await apply_register_retention(rt, key, settings) == 0
    reasons = [r["reason"] for r in await db.fetch("SELECT reason FROM audit_log ORDER BY id")]
    assert reasons[0] == "3 mois" and "30 mois" not in reasons
    async with db.acquire() as conn:
        assert (await verify(conn, trusted_keys([key.public_pem()]))).ok
    with pytest.raises(ValueError):
        RetentionSettings(register_keep_months=6)
