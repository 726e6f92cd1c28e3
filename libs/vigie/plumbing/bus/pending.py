"""Publishing without a round trip per message: a bounded window of acknowledgements in flight.

``js.publish`` waits for JetStream's acknowledgement of each message; at 25–30 frames a second per
camera that is a request and a reply per frame, most of ingest's CPU (bench/ingest.py). Here the
acknowledgements are collected as they come; at most ``size`` are pending, the oldest is awaited
(for ``timeout_s``) when the window is full, and each failure is handed to ``on_failure``. nats-py
never times out an asynchronous publish by itself (a reply lost in a reconnection would hold its
slot for ever): the window does.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.api import PubAck


class PendingAcks:
    def __init__(self, js: JetStreamContext, *, size: int, timeout_s: float,
                 on_failure: Callable[[BaseException], None]) -> None:
        self._js, self.size, self._timeout_s, self._on_failure = js, size, timeout_s, on_failure
        # (deadline, acknowledgement), oldest first
        self._pending: collections.deque[tuple[float, asyncio.Future[PubAck]]] = \
            collections.deque()

    def __len__(self) -> int:
        return len(self._pending)

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        self._collect()
        while len(self._pending) >= self.size:
            await self._wait_oldest()
        future = await self._js.publish_async(subject, payload, headers=headers)
        self._pending.append((time.monotonic() + self._timeout_s, future))

    async def drain(self) -> None:
        """Wait for every acknowledgement in flight, at most until the last one's deadline."""
        while self._pending:
            await self._wait_oldest()

    async def _wait_oldest(self) -> None:
        deadline, oldest = self._pending[0]
        if not oldest.done():
            await asyncio.wait({oldest}, timeout=max(0.0, deadline - time.monotonic()))
        now = time.monotonic()
        for due, future in self._pending:  # every one past its deadline, not the oldest alone
            if due > now:
                break
            if not future.done():
                future.cancel()  # frees its slot in nats-py's own semaphore too
        self._collect()

    def _collect(self) -> None:
        while self._pending and self._pending[0][1].done():
            _, future = self._pending.popleft()
            if future.cancelled():
                self._on_failure(TimeoutError("no acknowledgement"))
            elif future.exception() is not None:
                self._on_failure(future.exception())  # type: ignore[arg-type]
