"""The retention sweep: erase segments whose end is older than the camera's retention (the camera's
own, else its commune's; never above 30 days by the schema), objects first, then rows; orphan objects
under expired hour prefixes; the evidence copies of released holds. Every batch is journaled in the
register (REGULATION.md R4, R7, R18; DESIGN.md invariant 3)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg
from vigie.custody.holds import CAMERA_LOCK, hold_prefix
from vigie.plumbing.storage.objects import ObjectStore
from vigie.records.audit_register import Entry, record

EXPIRED_SQL = """
SELECT s.id, s.object_key, s.start_time, s.end_time
FROM segments s
WHERE s.camera_id = $1 AND s.end_time < now() - make_interval(days => $2)
  AND s.id <> ALL($4::bigint[])
ORDER BY s.end_time
LIMIT $3
FOR UPDATE SKIP LOCKED
"""
# Covered by an active hold that has not copied it yet: kept until the copy exists.
AWAITING_COPY_SQL = """
SELECT s.id FROM segments s
WHERE s.id = ANY($1::bigint[]) AND EXISTS (
    SELECT 1 FROM holds h JOIN hold_cameras hc ON hc.hold_id = h.id
    WHERE h.state = 'active' AND hc.camera_id = s.camera_id
      AND h.period_start < s.end_time AND h.period_end > s.start_time
      AND NOT EXISTS (SELECT 1 FROM hold_items i
                      WHERE i.hold_id = h.id AND i.source_key = s.object_key))
"""
CAMERAS_SQL = """
SELECT c.id, c.commune, c.slug, least(coalesce(c.retention_days, m.retention_days),
                                      m.retention_days) AS days
FROM cameras c JOIN communes m ON m.slug = c.commune
ORDER BY c.id
"""
RELEASED_COPIES_SQL = """
SELECT i.hold_id, i.evidence_key, i.segment_start, i.segment_end, h.commune, c.slug
FROM hold_items i JOIN holds h ON h.id = i.hold_id JOIN cameras c ON c.id = i.camera_id
WHERE h.state = 'released' AND i.erased_at IS NULL
ORDER BY i.hold_id, i.segment_start
LIMIT $1
FOR UPDATE OF i SKIP LOCKED
"""

# Released holds whose recorded copies are all erased, their prefix not swept yet.
EMPTIED_HOLDS_SQL = """
SELECT h.id FROM holds h
WHERE h.state = 'released' AND h.copies_erased_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM hold_items i WHERE i.hold_id = h.id AND i.erased_at IS NULL)
ORDER BY h.id
FOR UPDATE OF h SKIP LOCKED
"""

Cause = Literal["retention", "hold_released", "orphan"]
# Called with the selected rows before anything is deleted: a seam for tests of concurrent holds.
AfterSelect = Callable[[Sequence[asyncpg.Record]], Awaitable[None]]


class StorageDeleteError(Exception):
    pass


@dataclass(frozen=True)
class Purge:
    commune: str
    camera: str
    cause: Cause
    segments: int
    objects: int
    period_start: datetime | None
    period_end: datetime | None
    kept_for_holds: int = 0


async def _journal(conn: asyncpg.Connection, *, commune: str, camera: str, cause: Cause,
                   start: datetime | None, end: datetime | None, segments: int, objects: int,
                   **details: object) -> None:
    await record(conn, Entry(actor="retention", action="deletion", commune=commune,
                             cameras=[f"{commune}/{camera}"], period_start=start, period_end=end,
                             reason=cause,
                             details={"segments": segments, "objects": objects, **details}))


async def sweep_camera(pool: asyncpg.Pool, store: ObjectStore, bucket: str, *, camera_id: int,
                       commune: str, camera: str, days: int, batch: int,
                       after_select: AfterSelect | None = None) -> Purge:
    """Delete what expired for one camera, batch by batch; every batch journaled with its count.
    Several sweepers at once share the work (row locks, SKIP LOCKED), never deleting twice."""
    total, kept, first, last = 0, 0, None, None
    skipped: list[int] = []
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(EXPIRED_SQL, camera_id, days, batch, skipped)
            if not rows:
                break
            if after_select is not None:
                await after_select(rows)
            # From here to commit, no hold of this camera can register (vigie.custody.holds).
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2::int)", CAMERA_LOCK, camera_id)
            held = {r["id"] for r in await conn.fetch(AWAITING_COPY_SQL, [r["id"] for r in rows])}
            skipped += held
            kept += len(held)
            doomed = [r for r in rows if r["id"] not in held]
            if doomed:
                failed = await store.delete_many(bucket, [r["object_key"] for r in doomed])
                if failed:
                    # Keep rows whose object is still there: the next sweep retries them.
                    raise StorageDeleteError(f"{len(failed)} objects could not be deleted")
                await conn.execute("DELETE FROM segments WHERE id = ANY($1::bigint[])",
                                   [r["id"] for r in doomed])
                start, end = doomed[0]["start_time"], max(r["end_time"] for r in doomed)
                await _journal(conn, commune=commune, camera=camera, cause="retention",
                               start=start, end=end, segments=len(doomed), objects=len(doomed),
                               retention_days=days)
                total += len(doomed)
                first = first or start
                last = end
        if len(rows) < batch:
            break
    return Purge(commune, camera, "retention", total, total, first, last, kept)


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


async def sweep_orphans(pool: asyncpg.Pool, store: ObjectStore, bucket: str, *, camera_id: int,
                        commune: str, camera: str, days: int, lookback_days: int,
                        max_hours: int) -> Purge:
    """Objects with no row (uploaded, row never committed) under hour prefixes that have fully
    expired. Only prefixes not visited yet are listed: a cursor per camera remembers where it is."""
    deleted, first, last = 0, None, None
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2::int)",
                                   CAMERA_LOCK + 1, camera_id):
            return Purge(commune, camera, "orphan", 0, 0, None, None)  # another sweeper is on it
        now = await conn.fetchval("SELECT now()")
        cursor = await conn.fetchval(
            "SELECT orphans_swept_until FROM retention_cursors WHERE camera_id = $1", camera_id)
        hour = _hour(cursor or now - timedelta(days=lookback_days)).astimezone(UTC)
        horizon = now - timedelta(days=days)
        visited = 0
        while hour + timedelta(hours=1) <= horizon and visited < max_hours:
            listed = await store.list_objects(bucket, prefix=f"{commune}/{camera}/{hour:%Y/%m/%d/%H}/")
            keys = [o.key for o in listed]
            if keys:
                known = {r["object_key"] for r in await conn.fetch(
                    "SELECT object_key FROM segments WHERE object_key = ANY($1)", keys)}
                orphans = [k for k in keys if k not in known]
                if orphans:
                    if await store.delete_many(bucket, orphans):
                        raise StorageDeleteError("orphan objects could not be deleted")
                    await _journal(conn, commune=commune, camera=camera, cause="orphan",
                                   start=hour, end=hour + timedelta(hours=1), segments=0,
                                   objects=len(orphans), prefix=f"{hour:%Y/%m/%d/%H}")
                    deleted += len(orphans)
                    first = first or hour
                    last = hour + timedelta(hours=1)
            hour += timedelta(hours=1)
            visited += 1
        await conn.execute(
            "INSERT INTO retention_cursors VALUES ($1, $2) ON CONFLICT (camera_id) "
            "DO UPDATE SET orphans_swept_until = excluded.orphans_swept_until", camera_id, hour)
    return Purge(commune, camera, "orphan", 0, deleted, first, last)


async def erase_released_copies(pool: asyncpg.Pool, store: ObjectStore, holds: str, *,
                                batch: int) -> list[Purge]:
    """The copies of released holds go for good — every version, its legal hold lifted first —,
    journaled per hold and camera; then anything left under a released hold's prefix (a copy put
    by a holder killed before it recorded it), once per hold."""
    purges: list[Purge] = []
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(RELEASED_COPIES_SQL, batch)
            if not rows:
                break
            if await store.erase(holds, [r["evidence_key"] for r in rows]):
                raise StorageDeleteError("held copies could not be erased")
            await conn.execute("UPDATE hold_items SET erased_at = now() WHERE evidence_key = ANY($1)",
                               [r["evidence_key"] for r in rows])
            groups: dict[tuple[int, str, str], list[asyncpg.Record]] = {}
            for r in rows:
                groups.setdefault((r["hold_id"], r["commune"], r["slug"]), []).append(r)
            for (hold_id, commune, camera), items in groups.items():
                start = min(i["segment_start"] for i in items)
                end = max(i["segment_end"] for i in items)
                await _journal(conn, commune=commune, camera=camera, cause="hold_released",
                               start=start, end=end, segments=len(items), objects=len(items),
                               hold_id=hold_id)
                purges.append(Purge(commune, camera, "hold_released", len(items), len(items),
                                    start, end))
        if len(rows) < batch:
            break
    async with pool.acquire() as conn, conn.transaction():
        for hold in await conn.fetch(EMPTIED_HOLDS_SQL):
            if await store.erase_prefix(holds, hold_prefix(hold["id"])):
                raise StorageDeleteError("a released hold's leftover copies could not be erased")
            await conn.execute("UPDATE holds SET copies_erased_at = now() WHERE id = $1",
                               hold["id"])
    return purges
