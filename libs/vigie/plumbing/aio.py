"""Small asyncio helpers every service loop uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger

log = get_logger(__name__)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` unless ``stop`` is set first; True when stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def run_periodically(stop: asyncio.Event, interval_s: float,
                           step: Callable[[], Awaitable[object]], *, what: str) -> None:
    """Run ``step`` every ``interval_s`` until stopped. A database that is away is logged and
    retried at the next tick (the loop keeps its last known state meanwhile)."""
    while not stop.is_set():
        try:
            await step()
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError) as exc:
            log.warning(f"{what}_unavailable", error=type(exc).__name__)
        await sleep_or_stop(stop, interval_s)


async def first_of(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()

