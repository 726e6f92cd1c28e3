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

Bounds (issue 34): a hold covers only what can still exist — its period starts no earlier than the
commune's retention back from now —, and one over SECOND_APPROVAL_CAMERA_HOURS (cameras × hours)
waits, keeping and copying nothing, until a second person approves it. Holds placed over the API
are copied by the retention service in the background (`hold_copies`, vigie.custody.jobs): the gateway has
no write right on the holds bucket.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import asyncpg
from minio.error import S3Error
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from vigie.cameras.named import named_cameras
from vigie.custody.coverage import uncovered
from vigie.custody.jobs import JobRefused, JobTable, Progress, run_one
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.plumbing.storage.identities import HOLDS_PREFIX
from vigie.plumbing.storage.objects import MISSING_OBJECT, ObjectStore
from vigie.records.audit_register import Entry, record

# pg_advisory_xact_lock(CAMERA_LOCK, camera_id): the deletion step of a sweep vs hold registration.
CAMERA_LOCK = 0x56494730
HoldKind = Literal["judicial_requisition", "right_of_access"]
# Beyond this many camera-hours a hold (an export, an access request's hold) waits for a second
# person's approval (docs/retention.md): a day of two cameras passes alone, a month of fifty not.
SECOND_APPROVAL_CAMERA_HOURS = 48.0


class HoldError(Refusal):
    """A refused request, with the reason a person can act on (exit 2 / HTTP 4xx)."""

    domain = "hold"


class HoldConflict(HoldError):
    """The record's state does not allow it now (HTTP 409)."""

    kind = "conflict"


class NothingLeftToHold(HoldError):
    """The whole period lies before the commune's retention: everything of it was erased."""


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
    pending: bool = False  # waiting for its second approval: nothing copied yet

    @property
    def complete(self) -> bool:
        return all(not c.missing for c in self.coverage)

    def as_dict(self) -> dict[str, Any]:
        return {"hold_id": self.hold_id, "complete": self.complete, "pending": self.pending,
                "cameras": [
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
                      request: HoldRequest, approved_by: str | None = None) -> HoldReport:
    """Register the hold, then copy what it covers into `holds`; report what was not found. A
    hold waiting for its second approval copies nothing (its report says `pending`)."""
    hold_id, state = await register_hold(pool, request, approved_by=approved_by)
    if state == "pending":
        return HoldReport(hold_id, [], pending=True)
    # Reported over the period asked for: what lay before the retention is said erased.
    return await copy_covered(pool, store, hold_id, recordings=recordings, holds=holds,
                              window=(request.period_start, request.period_end))


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
    period_start = max(request.period_start, await oldest_kept(pool, request.commune))
    found = await pool.fetchval(REUSABLE_SQL, request.kind, request.reference, request.commune,
                                period_start, request.period_end, request.cameras)
    return int(found) if found is not None else None


async def oldest_kept(conn: asyncpg.Connection | asyncpg.Pool, commune: str) -> datetime:
    """The oldest instant the commune's recordings may still hold: its retention back from now
    (R4). A hold cannot keep what the law had erased."""
    days = await conn.fetchval("SELECT retention_days FROM communes WHERE slug = $1", commune)
    if days is None:
        raise HoldError(f"unknown commune {commune!r}", code="commune.unknown", commune=commune)
    return datetime.now(UTC) - timedelta(days=int(days))


def camera_hours(cameras: int, start: datetime, end: datetime) -> float:
    return cameras * max(0.0, (end - start).total_seconds()) / 3600


def needs_second_approval(cameras: int, start: datetime, end: datetime) -> bool:
    return camera_hours(cameras, start, end) > SECOND_APPROVAL_CAMERA_HOURS


async def register_hold(pool: asyncpg.Pool, request: HoldRequest, *,
                        approved_by: str | None = None,
                        queue_copy: bool = False) -> tuple[int, str]:
    """Register the hold over what can still exist of its period (from `oldest_kept` on).
    Active at once, and from its commit on no sweep deletes a covered segment that has no copy
    yet — unless it covers more than SECOND_APPROVAL_CAMERA_HOURS without `approved_by`: then it
    is `pending` until another person approves it (`approve_hold`). With `queue_copy`, an active
    hold's copies are asked of the retention service in the same transaction (a crash cannot
    leave a hold that nobody copies). Returns its id and state."""
    if approved_by is not None and approved_by.strip() == request.requested_by:
        raise HoldError("the second approval is given by someone other than who asks",
                        code="approval.same_person")
    async with pool.acquire() as conn, conn.transaction():
        earliest = await oldest_kept(conn, request.commune)
        if request.period_end <= earliest:
            days = (datetime.now(UTC) - earliest).days
            raise NothingLeftToHold(
                f"nothing of this period can still be stored: {request.commune} keeps its "
                f"recordings {days} days, so everything before "
                f"{earliest:%Y-%m-%d %H:%M} UTC has been erased (the deletion-proof extract says "
                "when, R24)", code="hold.nothing_left", commune=request.commune, days=days)
        start = max(request.period_start, earliest)
        camera_ids = await named_cameras(conn, request.commune, request.cameras,
                                         refusal=HoldError)
        hours = camera_hours(len(camera_ids), start, request.period_end)
        state = "pending" if hours > SECOND_APPROVAL_CAMERA_HOURS and not approved_by else "active"
        if state == "active":
            await _lock_cameras(conn, list(camera_ids.values()))
        hold_id = int(await conn.fetchval(
            "INSERT INTO holds (kind, reference, commune, period_start, period_end, requested_by, "
            "reason, review_on, state, camera_hours, approved_by, approved_at) VALUES ($1, $2, $3, "
            "$4, $5, $6, $7, $8, $9, $10, $11, CASE WHEN $11::text IS NULL THEN NULL ELSE now() "
            "END) RETURNING id",
            request.kind, request.reference, request.commune, start, request.period_end,
            request.requested_by, request.reason, request.review_on, state, round(hours, 3),
            approved_by))
        await conn.executemany("INSERT INTO hold_cameras VALUES ($1, $2)",
                               [(hold_id, camera_id) for camera_id in camera_ids.values()])
        if queue_copy and state == "active":
            await queue_copies(conn, hold_id)
        await record(conn, Entry(
            actor=request.requested_by, action="hold.created", commune=request.commune,
            cameras=[f"{request.commune}/{slug}" for slug in camera_ids],
            period_start=start, period_end=request.period_end, reason=request.reason,
            details={"hold_id": hold_id, "kind": request.kind, "reference": request.reference,
                     "review_on": request.review_on.isoformat(), "state": state,
                     "camera_hours": round(hours, 1), "approved_by": approved_by,
                     "asked_from": request.period_start.isoformat()}))
    return hold_id, state


async def _lock_cameras(conn: asyncpg.Connection, camera_ids: list[int]) -> None:
    """The sweep's per-camera lock, in one order (no deadlock between two holds)."""
    for cid in sorted(camera_ids):
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2::int)", CAMERA_LOCK, cid)


async def approve_hold(pool: asyncpg.Pool, hold_id: int, *, by: str,
                       communes: tuple[str, ...]) -> None:
    """A second person approves a pending hold: it becomes active (the sweep keeps what it
    covers from now on) and its copies are queued for the retention service. Journaled."""
    async with pool.acquire() as conn, conn.transaction():
        hold = await conn.fetchrow("SELECT * FROM holds WHERE id = $1 FOR UPDATE", hold_id)
        if hold is None or hold["commune"] not in communes:
            raise NotFound(f"no hold {hold_id} in your communes", code="hold.not_found", id=hold_id)
        if hold["state"] != "pending":
            raise HoldConflict(f"hold {hold_id} is {hold['state']}: only a pending hold is approved",
                               code="hold.not_pending", state=hold["state"])
        if by == hold["requested_by"]:
            raise HoldConflict("the second approval is given by someone other than who asked "
                            f"({hold['requested_by']})", code="approval.same_person")
        cameras = await conn.fetch(
            "SELECT c.id, c.slug FROM hold_cameras hc JOIN cameras c ON c.id = hc.camera_id "
            "WHERE hc.hold_id = $1", hold_id)
        await _lock_cameras(conn, [c["id"] for c in cameras])
        await conn.execute("UPDATE holds SET state = 'active', approved_by = $2, "
                           "approved_at = now() WHERE id = $1", hold_id, by)
        await queue_copies(conn, hold_id)
        await record(conn, Entry(
            actor=by, action="hold.approved", commune=hold["commune"],
            cameras=[f"{hold['commune']}/{c['slug']}" for c in cameras],
            period_start=hold["period_start"], period_end=hold["period_end"],
            reason=hold["reason"],
            details={"hold_id": hold_id, "reference": hold["reference"],
                     "requested_by": hold["requested_by"],
                     "camera_hours": float(hold["camera_hours"])}))


async def queue_copies(conn: asyncpg.Connection | asyncpg.Pool, hold_id: int) -> int:
    """Ask the retention service for the hold's copies (vigie.custody.jobs); returns the job's id."""
    return int(await conn.fetchval("INSERT INTO hold_copies (hold_id) VALUES ($1) RETURNING id",
                                   hold_id))


async def copy_covered(pool: asyncpg.Pool, store: ObjectStore, hold_id: int, *, recordings: str,
                       holds: str, window: tuple[datetime, datetime] | None = None,
                       progress: Callable[[float], None] | None = None) -> HoldReport:
    """Copy every covered segment not copied yet (idempotent: resumes an interrupted hold). The
    report covers the hold's period, or `window` within it (an export reusing a wider hold)."""
    hold = await pool.fetchrow("SELECT * FROM holds WHERE id = $1", hold_id)
    if hold is None:
        raise HoldError(f"no hold {hold_id}", code="hold.not_found", id=hold_id)
    cameras = await pool.fetch(
        "SELECT c.id, c.slug FROM hold_cameras hc JOIN cameras c ON c.id = hc.camera_id "
        "WHERE hc.hold_id = $1 ORDER BY c.slug", hold_id)
    done = {r["source_key"]: r for r in await pool.fetch(
        "SELECT source_key, size_bytes FROM hold_items WHERE hold_id = $1", hold_id)}
    report = HoldReport(hold_id, [])
    begin, finish = window or (hold["period_start"], hold["period_end"])
    for n, cam in enumerate(cameras):
        coverage = CameraCoverage(cam["slug"])
        found: list[tuple[datetime, datetime]] = []
        segments = await pool.fetch(COVERED_SQL, cam["id"], hold["period_start"],
                                    hold["period_end"])
        for i, seg in enumerate(segments):
            if progress is not None:
                progress((n + i / len(segments)) / len(cameras))
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


HOLD_COPIES = JobTable("hold_copies")


async def copy_next_hold(pool: asyncpg.Pool, store: ObjectStore, *, recordings: str,
                         holds: str) -> int | None:
    """The retention service's step: copy the oldest queued hold (placed over the API, or
    approved), recording what it covered; returns the job's id, None when there is none."""

    async def build(job: asyncpg.Record, progress: Progress) -> None:
        state = await pool.fetchval("SELECT state FROM holds WHERE id = $1", job["hold_id"])
        coverage: dict[str, Any] = {"hold_id": job["hold_id"], "state": state, "cameras": []}
        if state == "active":  # released meanwhile: nothing to copy any more
            try:
                report = await copy_covered(pool, store, job["hold_id"], recordings=recordings,
                                            holds=holds, progress=progress.set)
            except HoldError as exc:
                raise JobRefused(str(exc)) from None
            coverage = report.as_dict()
        await pool.execute("UPDATE hold_copies SET state = 'done', percent = 100, "
                           "finished_at = now(), coverage = $2::jsonb WHERE id = $1",
                           job["id"], json.dumps(coverage))

    return await run_one(pool, HOLD_COPIES, build)


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
                        "storage is corrupt, the hold was registered but not completed",
                        code="segment.altered", key=seg["object_key"])
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
    """Return the hold's copies to deletion (the next sweep erases them); a pending hold released
    is one its second approver refused. Returns the copies' count."""
    if not released_by.strip() or not reason.strip():
        raise HoldError("who releases the hold and why must both be given",
                        code="hold.release_reason_required")
    async with pool.acquire() as conn, conn.transaction():
        hold = await conn.fetchrow("SELECT * FROM holds WHERE id = $1 FOR UPDATE", hold_id)
        if hold is None:
            raise HoldError(f"no hold {hold_id}", code="hold.not_found", id=hold_id)
        if hold["state"] == "released":
            raise HoldConflict(f"hold {hold_id} was already released on {hold['released_at']:%Y-%m-%d}",
                               code="hold.already_released",
                               on=hold["released_at"].date().isoformat())
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
       h.camera_hours, h.approved_by, h.approved_at, j.state AS copy_state,
       j.percent AS copy_percent, j.error AS copy_error, j.coverage AS copy_coverage,
       (SELECT array_agg(c.slug ORDER BY c.slug) FROM hold_cameras hc
          JOIN cameras c ON c.id = hc.camera_id WHERE hc.hold_id = h.id) AS cameras,
       (SELECT count(*) FROM hold_items i WHERE i.hold_id = h.id AND i.erased_at IS NULL)
         AS copies_kept,
       (SELECT count(*) FROM hold_items i WHERE i.hold_id = h.id AND i.erased_at IS NOT NULL)
         AS copies_erased
FROM holds h
LEFT JOIN LATERAL (SELECT state, percent, error, coverage FROM hold_copies WHERE hold_id = h.id
                   ORDER BY id DESC LIMIT 1) j ON true
ORDER BY h.id
"""


REVIEW_SOON_DAYS = 7  # R18: a hold's review is told this long before its date, then overdue
ReviewStage = Literal["due_soon", "overdue"]


def review_stage(review_on: date, today: date) -> ReviewStage | None:
    """Where a kept hold stands against its review date (R18): None while it is far."""
    if review_on < today:
        return "overdue"
    return "due_soon" if review_on < today + timedelta(days=REVIEW_SOON_DAYS) else None


REVIEW_NOTICE_SQL = """
UPDATE holds h SET review_notice = n.notice
FROM (SELECT id, CASE WHEN review_on < current_date THEN 'overdue' ELSE 'due_soon' END AS notice
      FROM holds WHERE state = 'active' AND review_on < current_date + $1::int) n
WHERE h.id = n.id AND h.review_notice IS DISTINCT FROM n.notice
RETURNING h.id, h.commune, h.reference, h.review_on, n.notice
"""


async def reviews_newly_due(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Kept holds whose review came within a week, or passed, since last asked: each told once
    per stage (the retention service publishes `hold.review_due`; R18)."""
    return list(await pool.fetch(REVIEW_NOTICE_SQL, REVIEW_SOON_DAYS))


async def list_holds(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every hold, with the state of its copies and, once copied, what they covered, and where a
    kept one stands against its review date (`review_due`, R18)."""
    holds = []
    today = datetime.now(UTC).date()
    for row in await pool.fetch(LIST_SQL):
        hold = dict(row)
        hold["review_due"] = review_stage(hold["review_on"], today) \
            if hold["state"] == "active" else None
        coverage = json.loads(hold.pop("copy_coverage") or "{}")
        hold["coverage"] = coverage.get("cameras")
        hold["camera_hours"] = float(hold["camera_hours"])
        holds.append(hold)
    return holds
