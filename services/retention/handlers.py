"""The retention loop: a sweep every few minutes over every camera, and the lifecycle backstop."""

from __future__ import annotations

from vigie.aio import run_periodically
from vigie.bus.events import RetentionPurged, publish_event_or_log
from vigie.log import get_logger
from vigie.provision import recordings_expiry_rules
from vigie.service import Runtime
from vigie.storage.objects import TRANSIENT_STORAGE_ERRORS

from services.retention.core import CAMERAS_SQL, StorageDeleteError, sweep_camera
from services.retention.settings import RetentionSettings

log = get_logger(__name__)


async def sweep(rt: Runtime, settings: RetentionSettings) -> int:
    pool, store = rt.require_pool(), rt.require_store()
    purged = 0
    for cam in await pool.fetch(CAMERAS_SQL):
        try:
            result = await sweep_camera(pool, store, rt.buckets.recordings, camera_id=cam["id"],
                                        commune=cam["commune"], camera=cam["slug"],
                                        days=cam["days"], batch=settings.batch)
        except (StorageDeleteError, *TRANSIENT_STORAGE_ERRORS) as exc:  # type: ignore[misc]
            log.warning("retention_camera_retry_next_sweep", commune=cam["commune"],
                        camera=cam["slug"], error=str(exc))
            continue
        if result.segments:
            purged += result.segments
            log.info("retention_purged", commune=cam["commune"], camera=cam["slug"],
                     segments=result.segments)
            await publish_event_or_log(rt.require_js(), rt.names, RetentionPurged(
                commune=cam["commune"], camera=cam["slug"], cause="retention",
                period_start=result.period_start, period_end=result.period_end,
                segments=result.segments, objects=result.segments))
    return purged


async def run(rt: Runtime, settings: RetentionSettings) -> None:
    rules = await recordings_expiry_rules(rt.require_pool())
    backstop = await rt.require_store().set_expiry_rules(rt.buckets.recordings, rules) \
        if rules else None
    rt.state["lifecycle_backstop"] = backstop
    if backstop is False:
        log.warning("no_lifecycle_backstop",
                    detail="the object store refuses lifecycle rules: this service alone erases")
    await run_periodically(rt.stop, settings.sweep_interval_s, lambda: sweep(rt, settings),
                           what="retention_sweep")
