"""Exports asked over the API, built in the background.

The gateway records the request (`request_export`: checked, journaled, state `queued`); the
retention service, which holds the export key and the storage rights (the internet-facing gateway
holds neither), takes queued requests one at a time (`build_next`), places the hold, builds the
package in a scratch folder, uploads its ZIP to the `exports` bucket and marks it `ready` (or
`failed` with the reason). A build interrupted by a crash is taken again after `STALE`.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from vigie import scratch as scratch_dirs
from vigie.exports.create import check_request, hold_and_build
from vigie.exports.package import ExportError, Requisition
from vigie.log import get_logger
from vigie.register import Entry, record
from vigie.signing import SigningKey
from vigie.storage.objects import Buckets, ObjectStore

log = get_logger(__name__)

SCRATCH = "vigie-export-"
STALE = timedelta(minutes=15)  # a build not finished by then was interrupted: take it again

CLAIM_SQL = """
UPDATE exports SET state = 'building', started_at = now(), percent = 0
WHERE id = (SELECT id FROM exports
            WHERE state = 'queued' OR (state = 'building' AND started_at < now() - $1::interval)
            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING *
"""
LIST_SQL = """
SELECT id, commune, cameras, period_start, period_end, reference, officer, recipient, medium,
       reason, created_by, created_at, state, percent, finished_at, error, package, hold_id,
       size_bytes, manifest_sha256, gaps, delivered_to, delivered_medium, delivered_at,
       delivered_by
FROM exports WHERE commune = ANY($1::text[]) ORDER BY id DESC LIMIT 200
"""


@dataclass(frozen=True)
class ExportRequest:
    commune: str
    cameras: list[str]  # slugs
    start: datetime
    end: datetime
    requisition: Requisition


async def request_export(pool: asyncpg.Pool, request: ExportRequest) -> int:
    """Checked (ExportError with the reason), recorded, journaled; built in the background."""
    req = request.requisition
    check_request([f"{request.commune}/{c}" for c in request.cameras], request.start, request.end,
                  req)
    async with pool.acquire() as conn, conn.transaction():
        known = {r["slug"] for r in await conn.fetch(
            "SELECT slug FROM cameras WHERE commune = $1 AND slug = ANY($2::text[])",
            request.commune, request.cameras)}
        unknown = sorted(set(request.cameras) - known)
        if unknown:
            raise ExportError(f"unknown cameras in {request.commune}: {', '.join(unknown)}")
        export_id = await conn.fetchval(
            "INSERT INTO exports (commune, cameras, period_start, period_end, reference, officer, "
            "recipient, medium, reason, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
            "$10) RETURNING id", request.commune, sorted(set(request.cameras)), request.start,
            request.end, req.reference, req.officer, req.recipient, req.medium, req.reason,
            req.created_by)
        await record(conn, Entry(
            actor=req.created_by, action="export.requested", commune=request.commune,
            cameras=[f"{request.commune}/{c}" for c in sorted(set(request.cameras))],
            period_start=request.start, period_end=request.end, reason=req.reason,
            recipients=req.recipient,
            details={"export": export_id, "reference": req.reference, "officer": req.officer,
                     "medium": req.medium}))
    return int(export_id)


async def list_exports(pool: asyncpg.Pool, communes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(LIST_SQL, list(communes))]


async def build_next(pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets,
                     key: SigningKey) -> int | None:
    """Build the oldest queued export, if any; returns its id."""
    await asyncio.to_thread(scratch_dirs.sweep, SCRATCH)
    row = await pool.fetchrow(CLAIM_SQL, STALE)
    if row is None:
        return None
    export = int(row["id"])
    requisition = Requisition(reference=row["reference"], officer=row["officer"],
                              recipient=row["recipient"], medium=row["medium"],
                              reason=row["reason"], created_by=row["created_by"])

    async def progress(percent: int) -> None:
        await pool.execute("UPDATE exports SET percent = $2 WHERE id = $1", export,
                           min(95, percent))

    scratch = await asyncio.to_thread(scratch_dirs.make, SCRATCH)
    try:
        result = await hold_and_build(
            pool, store, buckets, key=key, grouped={row["commune"]: list(row["cameras"])},
            start=row["period_start"], end=row["period_end"], requisition=requisition,
            out_dir=scratch, progress=progress)
        object_key = f"{row['commune']}/{result.export_id}.zip"
        await store.put_file(buckets.exports, object_key, str(result.archive),
                             content_type="application/zip")
        size = (await asyncio.to_thread(result.archive.stat)).st_size
        await pool.execute(
            "UPDATE exports SET state = 'ready', percent = 100, finished_at = now(), "
            "package = $2, hold_id = $3, object_key = $4, size_bytes = $5, manifest_sha256 = $6, "
            "gaps = $7 WHERE id = $1", export, result.export_id, result.hold_ids[0], object_key,
            size, result.manifest_sha256, result.gaps)
        log.info("export_ready", commune=row["commune"], export=export, package=result.export_id)
    except ExportError as exc:
        await pool.execute("UPDATE exports SET state = 'failed', finished_at = now(), error = $2 "
                           "WHERE id = $1", export, str(exc))
        log.warning("export_failed", commune=row["commune"], export=export, reason=str(exc))
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    return export
