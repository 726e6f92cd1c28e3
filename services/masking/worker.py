"""One masking worker process: `python -m services.masking.worker --index I`.

Started by the masking service. Each worker owns cameras of its own (a claimant named
``<replica>/w<I>``), so that a camera's decoder and encoder always live in one process and the
cameras are shared among every worker of every replica.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigie.cameras.replicas import default_name
from vigie.cameras.runtime import CameraRuntime
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.pool import pool_from_settings
from vigie.plumbing.lifeline import die_with_parent
from vigie.plumbing.log import configure_logging
from vigie.plumbing.settings import CommonSettings, load_settings
from vigie.service import install_stop_signals

from services.masking.handlers import MaskingWorker
from services.masking.settings import MaskingSettings


async def beat(runtime_of: Callable[[], CameraRuntime[Any, Any] | None], heartbeat: Path,
               stuck_after_s: float, stop: asyncio.Event) -> None:
    """Touch ``heartbeat`` each second while the camera loop goes round: the service kills a
    worker whose file grows old — a frozen process, or a loop stuck in a call that never
    returns, which a dead worker's exit code would never show (issue 36)."""
    while not stop.is_set():
        runtime = runtime_of()
        if runtime is None or time.monotonic() - runtime.last_tick < stuck_after_s:
            await asyncio.to_thread(heartbeat.touch)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def run(index: int, heartbeat: Path | None = None) -> int:
    common = load_settings(CommonSettings)
    settings = load_settings(MaskingSettings)
    configure_logging(level=common.log_level, fmt=common.log_format, service="masking")
    stop = asyncio.Event()
    install_stop_signals(stop)
    workers: list[MaskingWorker] = []
    # Beating from the start: connecting counts as going round (the camera loop is not there yet).
    beating = asyncio.create_task(beat(lambda: workers[0].runtime if workers else None,
                                       heartbeat, settings.worker_stuck_after_s, stop)) \
        if heartbeat else None
    nc = await connect_nats(common, name=f"vigie-masking-{index}")
    pool = await pool_from_settings(common, max_size=4)
    try:
        replica = common.replica or default_name("masking")
        workers.append(MaskingWorker(nc=nc, js=jetstream(nc), names=BusNames(common.bus_root),
                                     pool=pool, settings=settings, name=f"{replica}/w{index}"))
        await workers[0].run(stop)
    finally:
        if beating:
            stop.set()
            await beating
        await pool.close()
        await nc.drain()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--parent-pid", type=int, help="die with this process (the service)")
    ap.add_argument("--heartbeat", type=Path, help="touched while the camera loop goes round")
    args = ap.parse_args()
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    return asyncio.run(run(args.index, args.heartbeat))


if __name__ == "__main__":
    sys.exit(main())
