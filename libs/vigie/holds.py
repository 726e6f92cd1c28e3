"""Holds: footage kept beyond retention under a judicial requisition or a pending right-of-access
request (REGULATION.md R18, R21; DESIGN.md invariant 3).

A hold copies the segments it covers, each checked against its recorded SHA-256, into the holds
bucket under a legal hold (S3 object lock: no identity can erase a copy while it stands); the
originals then expire as usual. Once the hold is released, the retention service lifts the legal
hold and erases every version (services/retention/core.py).

The race with a retention sweep is settled by one per-camera lock: the sweep takes it before
deleting a batch and skips any segment covered by an active hold that has no copy yet; a hold takes
it to register itself. So either the hold is registered first (and the sweep keeps what it has
not copied yet), or the sweep deleted first (and the hold reports those segments as erased).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import asyncpg
from minio.error import S3Error
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from vigie.coverage import uncovered
from vigie.register import Entry, record
from vigie.storage.identities import HOLDS_PREFIX
from vigie.storage.objects import MISSING_OBJECT, ObjectStore

# pg_advisory_xact_lock(CAMERA_LOCK, camera_id): the deletion step of a sweep vs hold registration.
CAMERA_LOCK = 0x56494730
HoldKind = Literal["judicial_requisition", "right_of_access"]


class HoldError(ValueError):
    """A refused request, with the reason a person can act on (exit 2 / HTTP 4xx)."""


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    kind: HoldKind = Field(description="judicial_requisition (R18) or right_of_access (R21)")
    reference: str = Field(min_length=1, max_length=200,
                           description="The requisition's or the request's reference")
    commune: str = Field(min_length=1, max_length=63)
    cameras: list[str] = Field(min_length=1, max_length=200, description="Camera slugs")
    period_start: AwareDatetime
    period_end: AwareDatetime
    requested_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    review_on: date = Field(description="When the hold must be reviewed (R18)")

    @model_validator(mode="after")
    def _coherent(self) -> HoldRequest:
        if self.period_end <= self.period_start:
            raise ValueError("the period ends before it starts")
        now = datetime.now(UTC)
        if self.period_start > now:
            raise ValueError("the period starts in the future: there is nothing to hold yet")
        if self.period_end > now:
            # A hold concerns what was filmed: one reaching into the future would keep every
            # later segment of the camera for ever (R4). A later period is a new hold.
            raise ValueError("the period ends in the future: a hold covers what was filmed "
                             "up to now; make a new hold for a later period")
        if self.review_on < datetime.now(UTC).date():
            raise ValueError("the review date is in the past")
        return self

    @classmethod
    def parse(cls, values: dict[str, Any]) -> HoldRequest:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise HoldError(_reasons(exc)) from None


def _reasons(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_too_short":
            message = "must not be empty"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


@dataclass(frozen=True)
class Missing:
    start: datetime
    end: datetime
    why: Literal["erased", "not_recorded"]


@dataclass
class CameraCoverage:
    camera: str
    copied: int = 0
    size_bytes: int = 0
    missing: list[Missing] = field(default_factory=list)


@dataclass
class HoldReport:
    hold_id: int
    coverage: list[CameraCoverage]

    @property
    def complete(self) -> bool:
        return all(not c.missing for c in self.coverage)

    def as_dict(self) -> dict[str, Any]:
        return {"hold_id": self.hold_id, "complete": self.complete, "cameras": [
            {"camera": c.camera, "segments_copied": c.copied, "size_bytes": c.size_bytes,
             "missing": [{"start": m.start.isoformat(), "end": m.end.isoformat(), "why": m.why}
                         for m in c.missing]} for c in self.coverage]}


COVERED_SQL = """
SELECT s.camera_id, s.object_key, s.start_time, s.end_time, s.sha256, s.size_bytes
FROM segments s
WHERE s.camera_id = $1 AND s.start_time < $3 AND s.end_time > $2
ORDER BY s.start_time
"""
ERASED_SQL = """
SELECT EXISTS (SELECT 1 FROM audit_log
               WHERE action = 'deletion' AND $1 = ANY(cameras)
                 AND period_start < $3 AND period_end > $2)
"""


async def create_hold(pool: asyncpg.Pool, store: ObjectStore, *, recordings: str, holds: str,
                      request: HoldRequest) -> HoldReport:
    """Register the hold, then copy what it covers into `holds`; report what was not found."""
    hold_id = await register_hold(pool, request)
    return await copy_covered(pool, store, hold_id, recordings=recordings, holds=holds)


REUSABLE_SQL = """
SELECT h.id FROM holds h
WHERE h.state = 'active' AND h.kind = $1 AND h.reference = $2 AND h.commune = $3
  AND h.period_start <= $4 AND h.period_end >= $5
  -- every camera asked for is one the hold covers (an unknown camera is covered by none)
  AND (SELECT count(DISTINCT c.slug) FROM hold_cameras hc JOIN cameras c ON c.id = hc.camera_id
       WHERE hc.hold_id = h.id AND c.slug = ANY($6::text[]))
      = (SELECT count(DISTINCT slug) FROM unnest($6::text[]) AS slug)
ORDER BY h.id LIMIT 1
"""


async def reusable_hold(pool: asyncpg.Pool, request: HoldRequest) -> int | None:
    """An active hold of the same kind, reference and commune covering the request's cameras and
    period: a second export for one requisition reuses it rather than copying everything again."""
    found = await pool.fetchval(REUSABLE_SQL, request.kind, request.reference, request.commune,
                                request.period_start, request.period_end, request.cameras)
    return int(found) if found is not None else None


async def register_hold(pool: asyncpg.Pool, request: HoldRequest) -> int:
    """From its commit on, no sweep deletes a covered segment that has no copy yet."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT true FROM communes WHERE slug = $1", request.commune):
            raise HoldError(f"unknown commune {request.commune!r}")
        rows = await conn.fetch("SELECT id, slug FROM cameras WHERE commune = $1 AND slug = ANY($2)",
                                request.commune, request.cameras)
        unknown = sorted(set(request.cameras) - {r["slug"] for r in rows})
        if unknown:
            raise HoldError(f"unknown camera(s) in {request.commune}: {', '.join(unknown)}")
        for cid in sorted(r["id"] for r in rows):
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2::int)", CAMERA_LOCK, cid)
        hold_id = int(await conn.fetchval(
            "INSERT INTO holds (kind, reference, commune, period_start, period_end, requested_by, "
            "reason, review_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            request.kind, request.reference, request.commune, request.period_start,
            request.period_end, request.requested_by, request.reason, request.review_on))
        await conn.executemany("INSERT INTO hold_cameras VALUES ($1, $2)",
                               [(hold_id, r["id"]) for r in rows])
        await record(conn, Entry(
            actor=request.requested_by, action="hold.created", commune=request.commune,
            cameras=[f"{request.commune}/{r['slug']}" for r in rows],
            period_start=request.period_start, period_end=request.period_end,
            reason=request.reason,
            details={"hold_id": hold_id, "kind": request.kind, "reference": request.reference,
                     "review_on": request.review_on.isoformat()}))
    return hold_id


async def copy_covered(pool: asyncpg.Pool, store: ObjectStore, hold_id: int, *, recordings: str,
                       holds: str,
                       window: tuple[datetime, datetime] | None = None) -> HoldReport:
    """Copy every covered segment not copied yet (idempotent: resumes an interrupted hold). The
    report covers the hold's period, or `window` within it (an export reusing a wider hold)."""
    hold = await pool.fetchrow("SELECT * FROM holds WHERE id = $1", hold_id)
    if hold is None:
        raise HoldError(f"no hold {hold_id}")
    cameras = await pool.fetch(
        "SELECT c.id, c.slug FROM hold_cameras hc JOIN cameras c ON c.id = hc.camera_id "
        "WHERE hc.hold_id = $1 ORDER BY c.slug", hold_id)
    done = {r["source_key"]: r for r in await pool.fetch(
        "SELECT source_key, size_bytes FROM hold_items WHERE hold_id = $1", hold_id)}
    report = HoldReport(hold_id, [])
    begin, finish = window or (hold["period_start"], hold["period_end"])
    for cam in cameras:
        coverage = CameraCoverage(cam["slug"])
        found: list[tuple[datetime, datetime]] = []
        for seg in await pool.fetch(COVERED_SQL, cam["id"], hold["period_start"],
                                    hold["period_end"]):
            key = seg["object_key"]
            if key in done or await _copy_one(pool, store, hold_id, seg, recordings, holds):
                if seg["start_time"] < finish and seg["end_time"] > begin:
                    coverage.copied += 1
                    coverage.size_bytes += seg["size_bytes"]
                    found.append((seg["start_time"], seg["end_time"]))
        for start, end in uncovered(found, begin, finish):
            erased = await pool.fetchval(ERASED_SQL, f"{hold['commune']}/{cam['slug']}", start, end)
            coverage.missing.append(Missing(start, end, "erased" if erased else "not_recorded"))
        report.coverage.append(coverage)
    return report


def hold_prefix(hold_id: int) -> str:
    """Where a hold's copies are kept in the holds bucket."""
    return f"{HOLDS_PREFIX}{hold_id}/"


async def _copy_one(pool: asyncpg.Pool, store: ObjectStore, hold_id: int, seg: asyncpg.Record,
                    recordings: str, holds: str) -> bool:
    key = hold_prefix(hold_id) + seg["object_key"]
    try:
        data = await store.get(recordings, seg["object_key"])
    except S3Error as exc:
        if exc.code in MISSING_OBJECT:
            return False  # erased between the listing and the copy
        raise
    if hashlib.sha256(data).hexdigest() != seg["sha256"]:
        # Checked before anything is written: a copy under legal hold could not be taken back.
        raise HoldError(f"segment {seg['object_key']} does not match its recorded SHA-256: "
                        "storage is corrupt, the hold was registered but not completed")
    version = await store.put_held(holds, key, data, content_type="video/mp4")
    await pool.execute(
        "INSERT INTO hold_items (hold_id, camera_id, source_key, segment_start, segment_end, "
        "evidence_key, sha256, size_bytes, version_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "$9) ON CONFLICT DO NOTHING", hold_id, seg["camera_id"], seg["object_key"],
        seg["start_time"], seg["end_time"], key, seg["sha256"], seg["size_bytes"], version)
    return True


async def move_legacy_copies(store: ObjectStore, *, evidence: str, holds: str) -> int:
    """Copies made before the holds bucket existed lived in the evidence bucket under `holds/`:
    move them, same keys, under legal hold (`vigie init`; nothing is left to move afterwards).
    Their rows name no version: readers take the current one, checked against its SHA-256."""
    moved = await store.list_objects(evidence, HOLDS_PREFIX)
    for obj in moved:
        data = await store.get(evidence, obj.key)
        await store.put_held(holds, obj.key, data, content_type="video/mp4")
        await store.delete(evidence, obj.key)
    return len(moved)


async def release_hold(pool: asyncpg.Pool, *, hold_id: int,
                       released_by: str, reason: str) -> int:
    """Return the hold's copies to deletion (the next sweep erases them). Returns their count."""
    if not released_by.strip() or not reason.strip():
        raise HoldError("who releases the hold and why must both be given")
    async with pool.acquire() as conn, conn.transaction():
        hold = await conn.fetchrow("SELECT * FROM holds WHERE id = $1 FOR UPDATE", hold_id)
        if hold is None:
            raise HoldError(f"no hold {hold_id}")
        if hold["state"] != "active":
            raise HoldError(f"hold {hold_id} was already released on {hold['released_at']:%Y-%m-%d}")
        await conn.execute("UPDATE holds SET state = 'released', released_at = now(), "
                           "released_by = $2, release_reason = $3 WHERE id = $1",
                           hold_id, released_by.strip(), reason.strip())
        cameras = await conn.fetch(
            "SELECT c.slug FROM hold_cameras hc JOIN cameras c ON c.id = hc.camera_id "
            "WHERE hc.hold_id = $1", hold_id)
        await record(conn, Entry(
            actor=released_by.strip(), action="hold.released", commune=hold["commune"],
            cameras=[f"{hold['commune']}/{c['slug']}" for c in cameras],
            period_start=hold["period_start"], period_end=hold["period_end"], reason=reason.strip(),
            details={"hold_id": hold_id, "kind": hold["kind"], "reference": hold["reference"]}))
    return int(await pool.fetchval(
        "SELECT count(*) FROM hold_items WHERE hold_id = $1 AND erased_at IS NULL", hold_id))


LIST_SQL = """
SELECT h.id, h.kind, h.reference, h.commune, h.period_start, h.period_end, h.requested_by,
       h.reason, h.review_on, h.state, h.created_at, h.released_at, h.released_by,
       (SELECT array_agg(c.slug ORDER BY c.slug) FROM hold_cameras hc
          JOIN cameras c ON c.id = hc.camera_id WHERE hc.hold_id = h.id) AS cameras,
       (SELECT count(*) FROM hold_items i WHERE i.hold_id = h.id AND i.erased_at IS NULL)
         AS copies_kept,
       (SELECT count(*) FROM hold_items i WHERE i.hold_id = h.id AND i.erased_at IS NOT NULL)
         AS copies_erased
FROM holds h
ORDER BY h.id
"""


async def list_holds(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(LIST_SQL)]
