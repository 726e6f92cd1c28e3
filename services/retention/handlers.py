"""The retention service's work, each in a periodic loop of its own (`run`):

- erasure: a sweep every few minutes over every camera and the evidence copies of released holds
  (R4), the store's lifecycle backstop kept in step with the communes' retention;
- the evidence workshop, where the keys and the evidence are and never in the internet-facing
  gateway: requisition exports (vigie.custody.exports), right-of-access copies (vigie.custody.access_copies),
  holds' copies under legal hold (vigie.custody.holds);
- the register's signed checkpoints (register_anchor.py: the only holder of the signing key);
- deadlines told as events: access requests and incidents due, authorisations about to end."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable

import asyncpg
from prometheus_client import Gauge
from vigie.custody.access_copies import build_next_copy, erase_expired_copies
from vigie.custody.access_requests import newly_due
from vigie.custody.exports.jobs import PACKAGES_KEPT_DAYS, build_next, erase_expired_packages
from vigie.custody.holds import copy_next_hold, reviews_newly_due
from vigie.operations.provision import recordings_expiry_rules
from vigie.plumbing.aio import run_periodically
from vigie.plumbing.bus.events import (
    AccessRequestDue,
    AuthorisationExpiring,
    ExportCreated,
    HoldReviewDue,
    IncidentDue,
    RetentionPurged,
    publish_event_or_log,
)
from vigie.plumbing.log import get_logger
from vigie.plumbing.storage.objects import TRANSIENT_STORAGE_ERRORS, Buckets, ObjectStore
from vigie.records.announced_keys import announce
from vigie.records.audit_register import purge
from vigie.records.authorisations import earliest_ends
from vigie.records.authorisations import newly_due as authorisations_newly_due
from vigie.records.incidents import newly_due as incidents_newly_due
from vigie.security.signing import SigningKey
from vigie.service import Runtime

from services.retention.core import (
    CAMERAS_SQL,
    AfterSelect,
    Purge,
    StorageDeleteError,
    erase_released_copies,
    sweep_camera,
    sweep_orphans,
)
from services.retention.register_anchor import Anchor
from services.retention.settings import RetentionSettings

log = get_logger(__name__)
SWEPT_AT = Gauge("vigie_retention_sweep_last_success_timestamp_seconds",
                 "When a sweep last went through every camera and copy without an error",
                 multiprocess_mode="max")
AUTHORISATION_ENDS = Gauge("vigie_authorisation_valid_until_timestamp_seconds",
                           "End (midnight UTC after its last day) of the earliest-ending "
                           "prefectoral authorisation a camera in service films under (R3)",
                           ["commune"])
BACKSTOP = Gauge("vigie_retention_lifecycle_backstop",
                 "1 when the object store holds and applies the lifecycle rules, 0 when retention "
                 "alone erases (invariant 3)")
STATE_SQL = """
INSERT INTO retention_state (bucket, lifecycle_backstop, rules, checked_at)
VALUES ($1, $2, $3::jsonb, now())
ON CONFLICT (bucket) DO UPDATE SET lifecycle_backstop = excluded.lifecycle_backstop,
    rules = excluded.rules, checked_at = excluded.checked_at
"""


class Lifecycle:
    """One expiry rule per commune prefix on `recordings`, at the commune's retention, re-applied
    when a retention changes. The holds bucket has none: its copies are under legal hold, which a
    rule cannot lift; this service erases them once their hold is released. Where the endpoint
    refuses lifecycle rules, says so (log and `retention_state`, which `vigie status` shows) and
    tries again later, and at once when the rules change: a refusal may be a passing one (a
    restarting endpoint, a policy being fixed), and must not leave the backstop off until a
    restart (issue 17)."""

    def __init__(self, pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets, *,
                 retry_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._pool, self._store, self._buckets = pool, store, buckets
        self._retry_s, self._clock = retry_s, clock
        self.supported: bool | None = None
        self._refused: tuple[float, dict[str, int]] | None = None  # when, and which rules

    async def sync(self) -> None:
        desired = await recordings_expiry_rules(self._pool)
        if not desired:
            return
        if self.supported is False and self._refused is not None:
            at, rules = self._refused
            if rules == desired and self._clock() - at < self._retry_s:
                return
        if self.supported and await self._store.get_expiry_rules(self._buckets.recordings) == desired:
            return
        self.supported = await self._store.set_expiry_rules(self._buckets.recordings, desired)
        self._refused = None if self.supported else (self._clock(), desired)
        if self.supported:
            # Packages handed over are copies: the held evidence stays until its hold is released.
            # A backstop a day behind the erasure this service journals (erase_expired_packages).
            await self._store.set_expiry_rules(self._buckets.exports,
                                               {"": PACKAGES_KEPT_DAYS + 1})
        if self.supported:
            log.info("lifecycle_rules_applied", rules=desired)
        else:
            log.warning("no_lifecycle_backstop",
                        detail="the object store refuses lifecycle rules: this service alone erases")
        BACKSTOP.set(1 if self.supported else 0)
        await self._pool.execute(STATE_SQL, self._buckets.recordings, self.supported,
                                 json.dumps(desired if self.supported else {}))


async def sweep(rt: Runtime, settings: RetentionSettings,
                after_select: AfterSelect | None = None) -> int:
    """One pass; returns how many segments and copies were erased."""
    pool, store = rt.require_pool(), rt.require_store()
    purges: list[Purge] = []
    complete = True  # nothing left for the next sweep to retry
    for cam in await pool.fetch(CAMERAS_SQL):
        where = dict(camera_id=cam["id"], commune=cam["commune"], camera=cam["slug"],
                     days=cam["days"])
        try:
            purges.append(await sweep_camera(pool, store, rt.buckets.recordings, **where,
                                             batch=settings.batch, after_select=after_select))
            purges.append(await sweep_orphans(pool, store, rt.buckets.recordings, **where,
                                              lookback_days=settings.orphan_lookback_days,
                                              max_hours=settings.orphan_hours_per_sweep))
        except (StorageDeleteError, *TRANSIENT_STORAGE_ERRORS) as exc:  # type: ignore[misc]
            complete = False
            log.warning("retention_camera_retry_next_sweep", commune=cam["commune"],
                        camera=cam["slug"], error=str(exc))
    try:
        purges += await erase_released_copies(pool, store, rt.buckets.holds,
                                              batch=settings.batch)
    except (StorageDeleteError, *TRANSIENT_STORAGE_ERRORS) as exc:  # type: ignore[misc]
        complete = False
        log.warning("released_copies_retry_next_sweep", error=str(exc))
    try:
        await erase_expired_copies(pool, store, rt.buckets, batch=settings.batch)
    except TRANSIENT_STORAGE_ERRORS as exc:
        complete = False
        log.warning("access_copies_retry_next_sweep", error=type(exc).__name__)
    for p in purges:
        if not p.objects and not p.segments:
            if p.kept_for_holds:
                log.info("retention_kept_for_hold", commune=p.commune, camera=p.camera,
                         segments=p.kept_for_holds)
            continue
        log.info("retention_purged", commune=p.commune, camera=p.camera, cause=p.cause,
                 segments=p.segments, objects=p.objects)
        await publish_event_or_log(rt.require_js(), rt.names, RetentionPurged(
            commune=p.commune, camera=p.camera, cause=p.cause, period_start=p.period_start,
            period_end=p.period_end, segments=p.segments, objects=p.objects))
    if complete:
        SWEPT_AT.set_to_current_time()
    return sum(p.segments + (p.objects if p.cause == "orphan" else 0) for p in purges)


async def announce_export(rt: Runtime, export: int) -> None:
    """`export.created` for police systems once a package is ready."""
    row = await rt.require_pool().fetchrow("SELECT * FROM exports WHERE id = $1", export)
    if row is None or row["state"] != "ready" or rt.js is None:
        return
    await publish_event_or_log(rt.js, rt.names, ExportCreated(
        commune=row["commune"], export=export, package=row["package"],
        reference=row["reference"], cameras=list(row["cameras"]),
        period_start=row["period_start"], period_end=row["period_end"],
        manifest_sha256=row["manifest_sha256"], gaps=row["gaps"]))


async def announce_due_requests(rt: Runtime) -> None:
    """Access requests whose answer is due within a week, or overdue: one event each time one
    reaches such a stage (R20: a month from receipt), for the CSU's and police systems' alarms."""
    for row in await newly_due(rt.require_pool()):
        await publish_event_or_log(rt.require_js(), rt.names, AccessRequestDue(
            commune=row["commune"], request=row["id"], due_at=row["due_at"],
            overdue=row["notice"] == "overdue"))


async def announce_hold_reviews(rt: Runtime) -> None:
    """R18: a kept hold whose review date comes within a week, then passes: one event each."""
    for row in await reviews_newly_due(rt.require_pool()):
        log.info("hold_review_due", commune=row["commune"], hold=row["id"], stage=row["notice"])
        await publish_event_or_log(rt.require_js(), rt.names, HoldReviewDue(
            commune=row["commune"], hold=row["id"], reference=row["reference"],
            review_on=row["review_on"], overdue=row["notice"] == "overdue"))


async def announce_due_incidents(rt: Runtime) -> None:
    """Breaches whose notification to the CNIL is due within a day, or overdue (R39: 72 hours
    from discovery): one event each time one reaches such a stage."""
    for row in await incidents_newly_due(rt.require_pool()):
        await publish_event_or_log(rt.require_js(), rt.names, IncidentDue(
            commune=row["commune"], incident=row["id"], due_at=row["due_at"],
            overdue=row["notice"] == "overdue"))


async def announce_expiring_authorisations(rt: Runtime) -> None:
    """R3: 6, 3 and 1 month before an authorisation's end, and at its end, one event each; and
    each commune's earliest end as a metric."""
    ends = await earliest_ends(rt.require_pool())
    AUTHORISATION_ENDS.clear()  # a commune with no camera in service left has no series
    for commune, valid_until in ends.items():
        end = dt.datetime.combine(valid_until + dt.timedelta(days=1), dt.time(), dt.UTC)
        AUTHORISATION_ENDS.labels(commune).set(end.timestamp())
    for row in await authorisations_newly_due(rt.require_pool()):
        log.warning("authorisation_expiring", commune=row["commune"], stage=row["stage"],
                    reference=row["reference"], valid_until=str(row["valid_until"]))
        await publish_event_or_log(rt.require_js(), rt.names, AuthorisationExpiring(
            commune=row["commune"], authorisation=row["id"], reference=row["reference"],
            valid_until=row["valid_until"], stage=row["stage"], cameras=row["cameras"]))


async def apply_register_retention(rt: Runtime, signer: SigningKey,
                                   settings: RetentionSettings) -> int:
    """R15: the register's whole months past its retention, purged behind a checkpoint this
    service signs (the deletion is the owner's function's, migration 0030). Rows deleted."""
    async with rt.require_pool().acquire() as conn:
        deleted = await purge(conn, signer, keep_months=settings.register_keep_months,
                              actor="retention")
    if deleted:
        log.info("register_purged", rows=deleted, keep_months=settings.register_keep_months)
    return deleted


async def run(rt: Runtime, settings: RetentionSettings) -> None:
    lifecycle = Lifecycle(rt.require_pool(), rt.require_store(), rt.buckets)
    rt.state["lifecycle"] = lifecycle

    async def step() -> None:
        try:
            await lifecycle.sync()
        except TRANSIENT_STORAGE_ERRORS as exc:
            log.warning("lifecycle_sync_retry", error=type(exc).__name__)
        await sweep(rt, settings)
        await erase_expired_packages(rt.require_pool(), rt.require_store(), rt.buckets)
        await announce_due_requests(rt)
        await announce_hold_reviews(rt)
        await announce_due_incidents(rt)
        await announce_expiring_authorisations(rt)

    async def hold_copies() -> None:
        # Holds placed over the API (or approved): their copies under legal hold, made here,
        # the one service with the right to put them (vigie.custody.holds).
        while await copy_next_hold(rt.require_pool(), rt.require_store(),
                                   recordings=rt.buckets.recordings,
                                   holds=rt.buckets.holds) is not None:
            pass

    loops = [run_periodically(rt.stop, settings.sweep_interval_s, step, what="retention_sweep"),
             run_periodically(rt.stop, settings.export_poll_s, hold_copies, what="hold_copies")]
    register_key = rt.common.register_signing_key
    if register_key is not None:
        register_signer = SigningKey.from_pem(register_key.get_secret_value())
        anchor = Anchor(rt, register_signer, settings)
        await anchor.start()
        loops.append(run_periodically(rt.stop, settings.checkpoint_interval_s, anchor.step,
                                      what="register_checkpoint"))


        async def register_retention() -> None:
            await apply_register_retention(rt, register_signer, settings)

        loops.append(run_periodically(rt.stop, settings.register_purge_interval_s,
                                      register_retention, what="register_purge"))
    else:
        log.warning("no_register_signing_key", detail="VIGIE_REGISTER_SIGNING_KEY is not set: "
                    "the register's head is not signed (a cut tail would go unnoticed)")
    key = rt.common.export_key
    if key is not None:
        # Requisition exports asked over the API: built here, where the export key and the
        # evidence are, never in the internet-facing gateway (docs/exports.md).
        export_key = SigningKey.from_pem(key.get_secret_value())
        await announce(rt.require_pool(), export_key, purpose="export", service="retention")

        async def exports() -> None:
            while (built := await build_next(rt.require_pool(), rt.require_store(),
                                             rt.buckets, export_key)) is not None:
                await announce_export(rt, built)

        async def copies() -> None:
            # Right-of-access copies (R22): decoded, redacted and sealed here too, in a loop of
            # their own (a long copy does not hold up a requisition's export).
            while await build_next_copy(rt.require_pool(), rt.require_store(), rt.buckets,
                                        export_key) is not None:
                pass

        loops.append(run_periodically(rt.stop, settings.export_poll_s, exports, what="exports"))
        loops.append(run_periodically(rt.stop, settings.export_poll_s, copies,
                                      what="access_copies"))
    else:
        log.warning("no_export_key", detail="VIGIE_EXPORT_KEY is not set: exports asked over "
                    "the API stay queued")
    await asyncio.gather(*loops)
