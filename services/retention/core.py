"""The retention sweep: erase segments whose end is older than the camera's retention (the camera's
own, else its commune's; never above 30 days by the schema), objects first, then rows, and journal
every batch in the register (REGULATION.md R4, R7; DESIGN.md invariant 3)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from vigie.storage.objects import ObjectStore

EXPIRED_SQL = """
SELECT s.id, s.object_key, s.start_time, s.end_time
FROM segments s
WHERE s.camera_id = $1 AND s.end_time < now() - make_interval(days => $2)
ORDER BY s.end_time
LIMIT $3
FOR UPDATE SKIP LOCKED
"""
CAMERAS_SQL = """
SELECT c.id, c.commune, c.slug, least(coalesce(c.retention_days, m.retention_days),
                                      m.retention_days) AS days
FROM cameras c JOIN communes m ON m.slug = c.commune
"""
JOURNAL_SQL = """
INSERT INTO audit_log (actor, action, commune, cameras, period_start, period_end, reason, details)
VALUES ('retention', 'deletion', $1, $2, $3, $4, $5, $6::jsonb)
"""


class StorageDeleteError(Exception):
    pass


@dataclass(frozen=True)
class Purge:
    commune: str
    camera: str
    segments: int
    period_start: datetime | None
    period_end: datetime | None


async def sweep_camera(pool: asyncpg.Pool, store: ObjectStore, bucket: str, *, camera_id: int,
                       commune: str, camera: str, days: int, batch: int) -> Purge:
    """Delete what expired for one camera, batch by batch; every batch journaled with its count."""
    total, first, last = 0, None, None
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(EXPIRED_SQL, camera_id, days, batch)
            if not rows:
                break
            failed = await store.delete_many(bucket, [r["object_key"] for r in rows])
            if failed:
                # Keep rows whose object is still there: the next sweep retries them.
                raise StorageDeleteError(f"{len(failed)} objects could not be deleted")
            await conn.execute("DELETE FROM segments WHERE id = ANY($1::bigint[])",
                               [r["id"] for r in rows])
            start, end = rows[0]["start_time"], max(r["end_time"] for r in rows)
            await conn.execute(JOURNAL_SQL, commune, [f"{commune}/{camera}"], start, end,
                               "retention", json.dumps({"segments": len(rows), "objects": len(rows),
                                                        "retention_days": days}))
        total += len(rows)
        first = first or start
        last = end
        if len(rows) < batch:
            break
    return Purge(commune, camera, total, first, last)
