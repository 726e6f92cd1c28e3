"""One masking worker process: `python -m services.masking.worker --index I`.

Started by the masking service. Each worker owns cameras of its own (a claimant named
``<replica>/w<I>``), so that a camera's decoder and encoder always live in one process and the
cameras are shared among every worker of every replica.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from vigie.bus.connection import connect_nats, jetstream
from vigie.bus.subjects import BusNames
from vigie.db.pool import pool_from_settings
from vigie.lifeline import die_with_parent
from vigie.log import configure_logging
from vigie.ownership.replicas import default_name
from vigie.service import install_stop_signals
from vigie.settings import CommonSettings, load_settings

from services.masking.handlers import MaskingWorker
from services.masking.settings import MaskingSettings


async def run(index: int) -> int:
    common = load_settings(CommonSettings)
    settings = load_settings(MaskingSettings)
    configure_logging(level=common.log_level, fmt=common.log_format, service="masking")
    stop = asyncio.Event()
    install_stop_signals(stop)
    nc = await connect_nats(common, name=f"vigie-masking-{index}")
    pool = await pool_from_settings(common, max_size=4)
    try:
        replica = common.replica or default_name("masking")
        worker = MaskingWorker(nc=nc, js=jetstream(nc), names=BusNames(common.bus_root),
                               pool=pool, settings=settings, name=f"{replica}/w{index}")
        await worker.run(stop)
    finally:
        await pool.close()
        await nc.drain()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--parent-pid", type=int, help="die with this process (the service)")
    args = ap.parse_args()
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    return asyncio.run(run(args.index))


if __name__ == "__main__":
    sys.exit(main())
