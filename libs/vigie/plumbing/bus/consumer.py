"""A durable pull consumer with one explicit outcome per message and in-flight bounded by capacity.

STYLE.md "The bus": done → ack; transient failure → nak with a delay; poison → term. The worker
fetches only as many messages as it has free slots, so a slow handler pushes back on the stream
instead of piling messages up in memory. On stop it finishes what it can within the grace period and
naks the rest, so that the next worker gets them at once rather than after ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from vigie.plumbing.log import get_logger

log = get_logger(__name__)

MESSAGES = Counter(
    "vigie_bus_messages_total", "Messages handled by pull consumers", ["stream", "outcome"]
)


class Outcome(enum.Enum):
    ACK = "ack"  # done
    TERM = "term"  # poison: never redeliver (the handler publishes an event saying why)
    OWNED = "owned"  # the handler keeps the message and acknowledges it later itself


@dataclass(frozen=True)
class Nak:
    """Transient failure: redeliver after ``delay_s``."""

    delay_s: float = 1.0


Handler = Callable[[Msg], Awaitable[Outcome | Nak]]

# Errors of the network call itself; anything else is a bug and is logged with its traceback.
TRANSIENT_NATS_ERRORS: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    # JetStream answers 503 while a stream elects a new leader (a NATS node died): wait, retry
    # — never a reason for a service to exit (issue 35).
    nats.js.errors.ServiceUnavailableError,
    # … and a publish finds no stream leader to store it for a moment: a NATS node's death cut
    # masking's camera tasks short on an event's publish (make compose-check, issue 35).
    nats.js.errors.NoStreamResponseError,
    TimeoutError,
    ConnectionError,
)


@dataclass
class DeliveryCount:
    """JetStream numbers each delivery of a consumer (`msg.metadata.sequence.consumer`). A number
    skipped is a message the server sent and this client never received — the connection or the
    NATS node carrying it was lost on the way. The server counts it delivered and would send it
    again only after ack_wait, behind newer ones: the consumer should read again from its
    acknowledgement floor instead (`rewound_to_ack_floor`). A number lower than the last is a new
    consumer leader sending again what it did not know was delivered: duplicates, not a loss."""

    last: int = 0

    def missed_before(self, msg: Msg) -> bool:
        delivered = msg.metadata.sequence.consumer
        if delivered > self.last + 1:
            return True
        self.last = delivered
        return False


async def rewound_to_ack_floor(js: JetStreamContext, stream: str, config: ConsumerConfig,
                               count: DeliveryCount, *, rewind: bool = True) -> ConsumerConfig:
    """The durable's configuration to subscribe with so that whatever it delivered and was not
    acknowledged comes again at once and in order: with messages pending, the consumer is
    deleted and made again from its ack floor (a crashed owner's, or deliveries lost on the
    way); without (or with ``rewind`` False), it is kept. ``count`` is set to where the
    consumer's numbering stands."""
    assert config.durable_name
    try:
        info = await js.consumer_info(stream, config.durable_name)
    except nats.js.errors.NotFoundError:
        count.last = 0
        return config
    if not info.num_ack_pending or not rewind:
        count.last = info.delivered.consumer_seq if info.delivered else 0
        return config
    count.last = 0  # a new consumer numbers its deliveries from one
    start = (info.ack_floor.stream_seq if info.ack_floor else 0) + 1
    log.info("consumer_rewound", durable=config.durable_name, start_seq=start,
             unacked=info.num_ack_pending)
    await js.delete_consumer(stream, config.durable_name)
    return config.evolve(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)


async def replayed_from_start(js: JetStreamContext, stream: str, config: ConsumerConfig,
                              count: DeliveryCount) -> ConsumerConfig:
    """The durable's configuration to subscribe with so that it delivers again everything its
    stream still holds on its subject (the durable is deleted and made again): for a new owner
    that must see what came before the point it resumes from (masking's keyframe before the last
    frame published, issue 35). ``count`` is set to a new consumer's numbering."""
    assert config.durable_name
    count.last = 0
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_consumer(stream, config.durable_name)
    return config.evolve(deliver_policy=DeliverPolicy.ALL, opt_start_seq=None)


async def give_back(msgs: list[Msg]) -> None:
    """Not acknowledged: redelivered at once, in order, to whoever reads the consumer next."""
    for msg in msgs:
        with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
            await msg.nak()


async def owned_batches(sub: JetStreamContext.PullSubscription, batch: int, *,
                        stop: asyncio.Event, still_owner: Callable[[], Awaitable[bool]],
                        on_lost: Callable[[list[Msg]], object] | None = None,
                        ) -> AsyncGenerator[list[Msg], None]:
    """A camera's durable pull consumer, batch by batch, for as long as this process owns the
    camera (masking's RAW, the recorder's VIDEO: issue 37, the loop was written twice).
    Ownership is checked before each fetch and again after it: an owner frozen past its lease
    and woken up with frames in hand gives them back (redelivered at once, in order, to the new
    owner) instead of working on frames that are another's now. An empty batch: nothing came
    within a second (a quiet camera). Read it under `contextlib.aclosing`."""
    while not stop.is_set():
        if not await still_owner():
            return
        try:
            msgs = await sub.fetch(batch, timeout=1)
        except TRANSIENT_NATS_ERRORS:
            yield []
            continue
        if not await still_owner():
            if on_lost is not None:
                on_lost(msgs)
            await give_back(msgs)
            return
        yield msgs


def camera_durable(service: str, commune: str, camera: str) -> str:
    """The durable consumer through which a service reads one camera (`masking_palaiseau_gare`):
    one per service and camera, whichever replica owns the camera, so that a new owner carries on
    from the acknowledgement floor of the one before."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{service}_{commune}_{camera}")


def durable_config(
    durable: str,
    subject: str,
    *,
    ack_wait_s: float,
    max_ack_pending: int,
    max_deliver: int = -1,
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        name=durable,
        filter_subject=subject,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_ack_pending=max_ack_pending,
        max_deliver=max_deliver,
        deliver_policy=deliver_policy,
    )


class PullWorker:
    """Runs ``handler`` over a durable pull consumer until ``stop`` is set."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        config: ConsumerConfig,
        handler: Handler,
        capacity: int,
        fetch_timeout_s: float = 1.0,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._js = js
        self._stream = stream
        self._config = config
        self._handler = handler
        self._capacity = capacity
        self._fetch_timeout_s = fetch_timeout_s
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, stop: asyncio.Event, *, grace_s: float) -> None:
        sub = await self._subscribe(stop)
        if sub is None:
            return
        try:
            while not stop.is_set():
                free = self._capacity - len(self._in_flight)
                if free <= 0:
                    await self._wait_for_slot(stop)
                    continue
                try:
                    msgs = await sub.fetch(free, timeout=self._fetch_timeout_s)
                except TRANSIENT_NATS_ERRORS:
                    continue  # nothing to fetch, or reconnecting: try again
                for msg in msgs:
                    task = asyncio.create_task(self._handle(msg))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
        finally:
            await self._drain(grace_s)
            try:
                await sub.unsubscribe()
            except TRANSIENT_NATS_ERRORS + (nats.errors.BadSubscriptionError,):
                pass

    async def _subscribe(self, stop: asyncio.Event) -> JetStreamContext.PullSubscription | None:
        """Bind to the durable, retrying while NATS is unreachable (a server restart)."""
        assert self._config.durable_name and self._config.filter_subject
        attempt = 0
        while not stop.is_set():
            attempt += 1
            try:
                return await self._js.pull_subscribe(
                    self._config.filter_subject,
                    durable=self._config.durable_name,
                    stream=self._stream,
                    config=self._config,
                )
            except TRANSIENT_NATS_ERRORS as exc:
                delay = min(0.2 * 2**attempt, 5.0)
                log.warning("consumer_subscribe_retry", stream=self._stream, attempt=attempt,
                            error=type(exc).__name__, retry_in_s=delay)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
        return None

    async def _wait_for_slot(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({stopping, *self._in_flight}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()

    async def _drain(self, grace_s: float) -> None:
        """Let in-flight handlers finish for ``grace_s``; cancel the rest (they nak themselves)."""
        if not self._in_flight:
            return
        pending = set(self._in_flight)
        log.info("consumer_draining", stream=self._stream, in_flight=len(pending), grace_s=grace_s)
        _done, still = await asyncio.wait(pending, timeout=grace_s)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
            log.info("consumer_naked_in_flight", stream=self._stream, count=len(still))

    async def _handle(self, msg: Msg) -> None:
        try:
            outcome = await self._handler(msg)
        except asyncio.CancelledError:
            # Stopping: hand the message straight to the next worker.
            await self._settle(msg, Nak(0))
            raise
        except TRANSIENT_NATS_ERRORS as exc:
            log.warning("handler_transient_error", stream=self._stream, error=str(exc))
            outcome = Nak(2.0)
        except Exception:
            log.exception("handler_failed", stream=self._stream, subject=msg.subject)
            outcome = Nak(5.0)
        await self._settle(msg, outcome)

    async def _settle(self, msg: Msg, outcome: Outcome | Nak) -> None:
        try:
            if outcome is Outcome.ACK:
                await msg.ack()
            elif outcome is Outcome.TERM:
                await msg.term()
            elif isinstance(outcome, Nak):
                await msg.nak(delay=outcome.delay_s if outcome.delay_s > 0 else None)
        except TRANSIENT_NATS_ERRORS as exc:
            # The server redelivers after ack_wait: nothing is lost, only delayed.
            log.warning("settle_failed", stream=self._stream, error=str(exc))
            return
        label = outcome.value if isinstance(outcome, Outcome) else "nak"
        MESSAGES.labels(self._stream, label).inc()
