"""An export from request to package: the requisition checked, a judicial-requisition hold placed
on what it covers (R18: the sweep cannot erase it meanwhile or afterwards), the package built from
the hold's evidence copies, the whole journaled with the requisition's reference (R13, R17)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from vigie.custody.exports.package import ExportError, Progress, Requisition, build_package
from vigie.custody.holds import HoldError, HoldRequest, copy_covered, create_hold, reusable_hold
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records.audit_register import Entry, record
from vigie.security.signing import SigningKey

MAX_PERIOD = timedelta(hours=72)  # per export: a requisition asks for a place and a time


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    folder: Path
    archive: Path
    manifest_sha256: str
    hold_ids: list[int]
    gaps: int


def check_request(cameras: list[str], start: datetime, end: datetime,
                  requisition: Requisition) -> dict[str, list[str]]:
    """Cameras grouped by commune, or ExportError with what to correct."""
    for field, label, value in (
            ("reference", "the requisition reference", requisition.reference),
            ("officer", "the officer (OPJ) and service", requisition.officer),
            ("recipient", "the recipient", requisition.recipient),
            ("medium", "the medium or transfer id", requisition.medium),
            ("reason", "the reason", requisition.reason),
            ("created_by", "who exports", requisition.created_by)):
        if not value.strip():
            raise ExportError(f"{label} is required", code="export.required", field=field)
    if not cameras:
        raise ExportError("at least one camera (COMMUNE/CAMERA) is required",
                          code="export.no_camera")
    if start.tzinfo is None or end.tzinfo is None:
        raise ExportError("times must carry their offset (2026-11-29T14:00:00+01:00)",
                          code="period.no_offset")
    if end <= start:
        raise ExportError("the period ends before it starts", code="period.ends_before_start")
    if end - start > MAX_PERIOD:
        raise ExportError(f"the period is longer than {MAX_PERIOD.total_seconds() / 3600:.0f} h: "
                          "make one export per place and time asked for", code="export.period_too_long",
                          hours=round(MAX_PERIOD.total_seconds() / 3600))
    if end > datetime.now(UTC):
        raise ExportError("the period ends in the future: export what was filmed up to now",
                          code="period.ends_in_future")
    grouped: dict[str, list[str]] = defaultdict(list)
    for camera in cameras:
        commune, _, slug = camera.partition("/")
        if not commune or not slug:
            raise ExportError(f"{camera!r}: a camera is named COMMUNE/CAMERA",
                              code="export.camera_name", camera=camera)
        if slug not in grouped[commune]:
            grouped[commune].append(slug)
    return dict(grouped)


async def create_export(pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets, *,
                        key: SigningKey, cameras: list[str], start: datetime, end: datetime,
                        requisition: Requisition, out_dir: Path,
                        approved_by: str | None = None) -> ExportResult:
    grouped = check_request(cameras, start, end, requisition)
    return await hold_and_build(pool, store, buckets, key=key, grouped=grouped, start=start,
                                end=end, requisition=requisition, out_dir=out_dir,
                                approved_by=approved_by)


async def hold_and_build(pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets, *,
                         key: SigningKey, grouped: dict[str, list[str]], start: datetime,
                         end: datetime, requisition: Requisition, out_dir: Path,
                         progress: Progress | None = None,
                         approved_by: str | None = None) -> ExportResult:
    """Hold what the request covers (one hold per commune), build the package, journal it.
    `approved_by`: the second person who approved an export over the camera-hours limit."""
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    hold_ids: list[int] = []
    reused_ids: list[int] = []
    missing: dict[str, list[dict[str, str]]] = {}
    for commune, slugs in sorted(grouped.items()):
        try:
            request = HoldRequest.parse(dict(
                kind="judicial_requisition", reference=requisition.reference, commune=commune,
                cameras=slugs, period_start=start, period_end=end,
                requested_by=requisition.created_by, reason=requisition.reason,
                review_on=(datetime.now(UTC) + timedelta(days=365)).date()))
            reused = await reusable_hold(pool, request)
            if reused is None:
                report = await create_hold(pool, store, recordings=buckets.recordings,
                                           holds=buckets.holds, request=request,
                                           approved_by=approved_by)
                if report.pending:
                    raise ExportError("the export covers more camera-hours than one person may "
                                      "hold: a second supervisor approves it first",
                                      code="export.second_approval_needed")
            else:  # the requisition's hold already: copies what it lacks, reports our window
                report = await copy_covered(pool, store, reused, recordings=buckets.recordings,
                                            holds=buckets.holds, window=(start, end))
                reused_ids.append(reused)
        except HoldError as exc:
            raise ExportError.carrying(exc) from None
        hold_ids.append(report.hold_id)
        for coverage in report.coverage:
            missing[f"{commune}/{coverage.camera}"] = [
                {"start": m.start.isoformat(), "end": m.end.isoformat(), "why": m.why}
                for m in coverage.missing]
    export_id = f"extraction-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    periods = {f"{c}/{s}": (start, end) for c, slugs in grouped.items() for s in slugs}
    folder = await build_package(pool, store, holds=buckets.holds, hold_ids=hold_ids,
                                 requisition=requisition, periods=periods, missing=missing,
                                 key=key, out_dir=out_dir, export_id=export_id,
                                 progress=progress)
    body = await asyncio.to_thread((folder / "manifest.json").read_bytes)
    manifest_sha256 = hashlib.sha256(body).hexdigest()
    for commune, slugs in sorted(grouped.items()):
        await record(pool, Entry(
            actor=requisition.created_by, action="export.created", commune=commune,
            cameras=[f"{commune}/{s}" for s in slugs], period_start=start, period_end=end,
            reason=requisition.reason, recipients=requisition.recipient,
            details={"export_id": export_id, "reference": requisition.reference,
                     "officer": requisition.officer, "medium": requisition.medium,
                     "manifest_sha256": manifest_sha256, "holds": hold_ids,
                     "holds_reused": reused_ids,
                     "key_fingerprint": key.fingerprint()}))
    return ExportResult(export_id, folder, out_dir / f"{export_id}.zip", manifest_sha256, hold_ids,
                        sum(len(g) for g in missing.values()))
