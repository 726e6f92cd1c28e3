"""R36: the instants Vigie records — capture times, segments' bounds, the register's rows — are only
worth the clocks they come from. Each service compares its clock with the database's (one reference
every service reaches; the database host is kept on NTP by the deployment) and raises a
``clock.drift`` event when the offset passes ``clock_max_offset_s``, ``clock.synchronised`` when it
is back; frames whose capture time is implausible are counted and logged (docs/compliance.md)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge

from vigie.plumbing.aio import run_periodically
from vigie.plumbing.bus.events import SYSTEM_COMMUNE, ClockDrift, ClockSynchronised, publish_event_or_log
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger

log = get_logger(__name__)

OFFSET = Gauge("vigie_clock_offset_seconds", "This service's clock minus the database's",
               ["service"], multiprocess_mode="liveall")
IMPLAUSIBLE = Counter("vigie_frames_implausible_time_total", "Frames whose capture time is in "
                      "the future or older than a day by this service's clock (R36)",
                      ["commune", "camera"])
OLDEST_PLAUSIBLE_S = 24 * 3600  # a frame is minutes old at most; a day is a clock set wrong
# Ingest stamps a frame on reception; masking, on another host maybe, reads it within a second.
FRAME_AHEAD_S = 5.0


async def offset_s(pool: asyncpg.Pool) -> float:
    """Local clock minus the database's, measured at the middle of the round trip."""
    sent = time.time()
    remote = float(await pool.fetchval("SELECT extract(epoch FROM clock_timestamp())"))
    received = time.time()
    return (sent + received) / 2 - remote


def implausible(capture_time_ns: int, now_ns: int, max_offset_s: float) -> str | None:
    """Why a capture time cannot be right by this clock, or None."""
    ahead = (capture_time_ns - now_ns) / 1e9
    if ahead > max_offset_s:
        return f"{ahead:.1f} s in the future"
    if -ahead > OLDEST_PLAUSIBLE_S:
        return f"{-ahead / 3600:.0f} h old"
    return None


@dataclass
class ClockWatch:
    """Checks the clock periodically; tells each crossing of the bound once."""

    service: str
    replica: str
    max_offset_s: float
    drifting: bool = False

    async def check(self, pool: asyncpg.Pool, js: JetStreamContext | None,
                    names: BusNames) -> float | None:
        try:
            offset = await offset_s(pool)
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError):
            return None  # the database is away: nothing to compare with now
        OFFSET.labels(self.service).set(offset)
        drifting = abs(offset) > self.max_offset_s
        if drifting != self.drifting:
            self.drifting = drifting
            event = (ClockDrift if drifting else ClockSynchronised)(
                commune=SYSTEM_COMMUNE, service=self.service, replica=self.replica,
                offset_s=round(offset, 3), bound_s=self.max_offset_s)
            (log.warning if drifting else log.info)(event.event_type().replace(".", "_"),
                                                    offset_s=round(offset, 3),
                                                    bound_s=self.max_offset_s)
            if js is not None:
                await publish_event_or_log(js, names, event)
        return offset

    async def run(self, stop: asyncio.Event, interval_s: float, pool: asyncpg.Pool,
                  js: JetStreamContext | None, names: BusNames) -> None:
        async def once() -> None:
            await self.check(pool, js, names)

        await run_periodically(stop, interval_s, once, what="clock_check")
