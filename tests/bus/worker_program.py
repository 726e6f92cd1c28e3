"""A worker built on the consumer helper, run as a subprocess by test_consumer.py.

Handler: messages whose payload is even take ``--slow-s`` to process, odd ones 0.1 s; each message
processed is appended to ``--out`` just before its ack. The current in-flight count goes to
``--status`` so that the test knows when the worker holds its messages.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from nats.aio.msg import Msg
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.consumer import Outcome, PullWorker, durable_config
from vigie.plumbing.log import configure_logging
from vigie.plumbing.settings import CommonSettings
from vigie.service import install_stop_signals


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream", required=True)
    ap.add_argument("--subject", required=True)
    ap.add_argument("--durable", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--status", required=True)
    ap.add_argument("--slow-s", type=float, default=60.0)
    ap.add_argument("--capacity", type=int, default=50)
    ap.add_argument("--grace-s", type=float, default=1.0)
    ap.add_argument("--ack-wait-s", type=float, default=120.0)
    args = ap.parse_args()
    configure_logging(level="info", fmt="console", service="worker")
    common = CommonSettings()  # type: ignore[call-arg]
    nc = await connect_nats(common, name="test-worker")
    stop = asyncio.Event()
    install_stop_signals(stop)
    out = open(args.out, "a", buffering=1)  # noqa: SIM115

    async def handle(msg: Msg) -> Outcome:
        n = int(msg.data)
        await asyncio.sleep(args.slow_s if n % 2 == 0 else 0.1)
        out.write(f"{n}\n")
        return Outcome.ACK

    config = durable_config(args.durable, args.subject, ack_wait_s=args.ack_wait_s, max_ack_pending=1000)
    worker = PullWorker(jetstream(nc), stream=args.stream, config=config, handler=handle,
                        capacity=args.capacity)

    async def report() -> None:
        while True:
            with open(args.status, "w") as f:
                f.write(str(worker.in_flight))
            await asyncio.sleep(0.05)

    reporter = asyncio.create_task(report())
    await worker.run(stop, grace_s=args.grace_s)
    reporter.cancel()
    await nc.drain()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
