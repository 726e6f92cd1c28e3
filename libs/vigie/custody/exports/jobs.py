"""Exports asked over the API, built in the background.

The gateway records the request (`request_export`: checked, journaled, state `queued` — or
`pending` when it covers more than SECOND_APPROVAL_CAMERA_HOURS, until another supervisor approves
it); the retention service, which holds the export key and the storage rights (the internet-facing
gateway holds neither), takes queued requests (`build_next`, vigie.custody.jobs), places the hold, builds
the package in a scratch folder, uploads its ZIP to the `exports` bucket and marks it `ready` —
or `failed` with the reason, whatever went wrong. A build interrupted by a crash is taken again.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from vigie.cameras.named import named_cameras
from vigie.custody import scratch as scratch_dirs
from vigie.custody.exports.create import check_request, hold_and_build
from vigie.custody.exports.package import ExportConflict, ExportError, Requisition
from vigie.custody.holds import needs_second_approval
from vigie.custody.jobs import JobRefused, JobTable, Progress, run_one
from vigie.plumbing.log import get_logger
from vigie.plumbing.refusals import NotFound
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records.audit_register import Entry, record
from vigie.security.signing import SigningKey

log = get_logger(__name__)

SCRATCH = "vigie-export-"
EXPORTS = JobTable("exports")
LIST_SQL = """
SELECT id, commune, cameras, period_start, period_end, reference, officer, recipient, medium,
       reason, created_by, created_at, state, percent, finished_at, error, package, hold_id,
       size_bytes, manifest_sha256, gaps, delivered_to, delivered_medium, delivered_at,
       delivered_by, approved_by, approved_at
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
        await named_cameras(conn, request.commune, request.cameras, refusal=ExportError)
        pending = needs_second_approval(len(set(request.cameras)), request.start, request.end)
        export_id = await conn.fetchval(
            "INSERT INTO exports (commune, cameras, period_start, period_end, reference, officer, "
            "recipient, medium, reason, created_by, state) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "$8, $9, $10, $11) RETURNING id", request.commune, sorted(set(request.cameras)),
            request.start, request.end, req.reference, req.officer, req.recipient, req.medium,
            req.reason, req.created_by, "pending" if pending else "queued")
        await record(conn, Entry(
            actor=req.created_by, action="export.requested", commune=request.commune,
            cameras=[f"{request.commune}/{c}" for c in sorted(set(request.cameras))],
            period_start=request.start, period_end=request.end, reason=req.reason,
            recipients=req.recipient,
            details={"export": export_id, "reference": req.reference, "officer": req.officer,
                     "medium": req.medium, "pending_second_approval": pending}))
    return int(export_id)


async def approve_export(pool: asyncpg.Pool, export_id: int, *, by: str) -> None:
    """Another supervisor approves an export over the camera-hours limit: it is queued."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM exports WHERE id = $1 FOR UPDATE", export_id)
        if row is None:
            raise NotFound(f"no export {export_id}", code="export.not_found", id=export_id)
        if row["state"] != "pending":
            raise ExportConflict(f"the export is {row['state']}: only a pending one is approved",
                                 code="export.not_pending", state=row["state"])
        if by == row["created_by"]:
            raise ExportConflict("the second approval is given by someone other than who asked "
                              f"({row['created_by']})", code="approval.same_person")
        await conn.execute("UPDATE exports SET state = 'queued', approved_by = $2, "
                           "approved_at = now() WHERE id = $1", export_id, by)
        await record(conn, Entry(
            actor=by, action="export.approved", commune=row["commune"],
            cameras=[f"{row['commune']}/{c}" for c in row["cameras"]],
            period_start=row["period_start"], period_end=row["period_end"],
            reason=row["reason"], recipients=row["recipient"],
            details={"export": export_id, "reference": row["reference"],
                     "requested_by": row["created_by"]}))


async def list_exports(pool: asyncpg.Pool, communes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(LIST_SQL, list(communes))]


async def build_next(pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets,
                     key: SigningKey) -> int | None:
    """Build the oldest queued export, if any; returns its id."""
    await asyncio.to_thread(scratch_dirs.sweep, SCRATCH)

    async def build(row: asyncpg.Record, progress: Progress) -> None:
        export = int(row["id"])
        requisition = Requisition(reference=row["reference"], officer=row["officer"],
                                  recipient=row["recipient"], medium=row["medium"],
                                  reason=row["reason"], created_by=row["created_by"])

        async def report(percent: int) -> None:
            progress.set(percent / 100)

        scratch = await asyncio.to_thread(scratch_dirs.make, SCRATCH)
        try:
            result = await hold_and_build(
                pool, store, buckets, key=key, grouped={row["commune"]: list(row["cameras"])},
                start=row["period_start"], end=row["period_end"], requisition=requisition,
                out_dir=scratch, progress=report, approved_by=row["approved_by"])
            object_key = f"{row['commune']}/{result.export_id}.zip"
            await store.put_file(buckets.exports, object_key, str(result.archive),
                                 content_type="application/zip")
            size = (await asyncio.to_thread(result.archive.stat)).st_size
        except ExportError as exc:
            raise JobRefused(str(exc)) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        await pool.execute(
            "UPDATE exports SET state = 'ready', percent = 100, finished_at = now(), "
            "package = $2, hold_id = $3, object_key = $4, size_bytes = $5, manifest_sha256 = $6, "
            "gaps = $7 WHERE id = $1", export, result.export_id, result.hold_ids[0], object_key,
            size, result.manifest_sha256, result.gaps)
        log.info("export_ready", commune=row["commune"], export=export, package=result.export_id)

    return await run_one(pool, EXPORTS, build)


PACKAGES_KEPT_DAYS = 30  # a requisition's package in the exports bucket (docs/exports.md; R6)
DUE_PACKAGES_SQL = """
SELECT id, commune, cameras, period_start, period_end, reference, recipient, package, object_key,
       finished_at
FROM exports
WHERE state = 'ready' AND erased_at IS NULL AND object_key IS NOT NULL
  AND finished_at < now() - make_interval(days => $1)
ORDER BY finished_at LIMIT 500
"""


async def erase_expired_packages(pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets, *,
                                 kept_days: int = PACKAGES_KEPT_DAYS) -> int:
    """Erase the packages made over `kept_days` ago from the exports bucket, each journaled
    (`export.erased`, R7): a package is a copy handed over, the evidence stays under its hold.
    A package the store's lifecycle rule already erased is journaled the same way. Returns the
    packages erased."""
    erased = 0
    for row in await pool.fetch(DUE_PACKAGES_SQL, kept_days):
        await store.delete(buckets.exports, row["object_key"])  # a missing object: not an error
        async with pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "UPDATE exports SET erased_at = now() WHERE id = $1 AND erased_at IS NULL",
                row["id"])
            if done.split()[-1] == "0":
                continue  # another retention replica did it
            await record(conn, Entry(
                actor="retention", action="export.erased", commune=row["commune"],
                cameras=[f"{row['commune']}/{c}" for c in row["cameras"]],
                period_start=row["period_start"], period_end=row["period_end"],
                reason=f"package kept {kept_days} days (R6)", recipients=row["recipient"],
                details={"export": row["id"], "package": row["package"],
                         "reference": row["reference"], "made_at": row["finished_at"].isoformat()}))
        erased += 1
    if erased:
        log.info("export_packages_erased", packages=erased, kept_days=kept_days)
    return erased
