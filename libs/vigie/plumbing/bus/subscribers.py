"""Police systems subscribe durably (issue 25; R27, R30): each external subscriber reads its
communes' events through a durable JetStream consumer of EVENTS made for it by the deployment, so a
system that was away catches up from where it acknowledged (within EVENTS' retention), in order.
Its NATS user may fetch from and acknowledge on that consumer only: it cannot create, change or
delete a consumer (so not widen its filter), nor read RAW, VIDEO or another commune's events."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, TextIO

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy

from vigie.plumbing.bus.events import SYSTEM_COMMUNE
from vigie.plumbing.bus.subjects import BusNames, check_token

ACK_WAIT_S = 30


def durable_name(user: str) -> str:
    return "subscriber_" + re.sub(r"[^A-Za-z0-9_-]", "_", user)


def filters(names: BusNames, communes: list[str]) -> list[str]:
    """Its communes' events, and the register's signed checkpoints, which witnesses keep (R12):
    nothing else of `_system`."""
    if SYSTEM_COMMUNE in communes:
        raise ValueError(f"{SYSTEM_COMMUNE} is not a commune: every subscriber gets the "
                         "register's checkpoints, and nothing else of it")
    return [*(f"{names.root}.events.{check_token(c, 'commune')}.>" for c in communes),
            names.events(SYSTEM_COMMUNE, "register", "checkpoint")]


def subscriber_publish(names: BusNames, user: str) -> list[str]:
    """The JetStream calls its reference client makes on its own consumer, nothing else."""
    stream, durable = names.events_stream, durable_name(user)
    return [f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>"]


async def add_subscriber(js: JetStreamContext, names: BusNames, user: str,
                         communes: list[str], *, ack_wait_s: float = ACK_WAIT_S) -> ConsumerInfo:
    """Create its durable consumer, or change the communes of an existing one (its position is
    kept). Made with the provisioning account: the subscriber itself may not."""
    if not communes:
        raise ValueError("a subscriber reads at least one commune's events")
    check_token(user, "subscriber")
    config = ConsumerConfig(
        durable_name=durable_name(user), name=durable_name(user),
        description=f"external subscriber {user}: events of {', '.join(communes)}",
        filter_subjects=filters(names, communes), ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL, ack_wait=ack_wait_s,
        # In order, even across a crash between storing and acknowledging: one event in flight.
        max_ack_pending=1)
    # Without an explicit action, the server creates the consumer or updates its editable settings
    # (the filters among them).
    return await js.add_consumer(names.events_stream, config)


async def follow(js: JetStreamContext, names: BusNames, user: str, out: TextIO, *,
                 stop: asyncio.Event, batch: int = 100,
                 printed: Callable[[dict[str, Any]], None] | None = None) -> None:
    """The reference client: each event as one JSON line, acknowledged once printed and flushed.
    Killed between the two, the event comes again: integrators de-duplicate on `event_id`."""
    # Replies come to the connection's own inboxes (`_INBOX_<user>`, the only ones it may read).
    sub = await js.pull_subscribe_bind(durable=durable_name(user), stream=names.events_stream)
    try:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(batch, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in msgs:
                line = {"subject": msg.subject, "sequence": msg.metadata.sequence.stream,
                        "event": json.loads(msg.data)}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                out.flush()
                if printed is not None:
                    printed(line)
                await msg.ack_sync()
    finally:
        await sub.unsubscribe()
