"""Publishing with a bounded window of acknowledgements in flight (ingest, issue 19): everything
published is stored once and in order, at most `size` are pending, and a message no stream takes
is reported as a failure instead of being forgotten."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NoStreamResponseError
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.pending import PendingAcks
from vigie.plumbing.bus.subjects import BusNames

pytestmark = pytest.mark.integration


async def test_a_window_of_acknowledgements_stores_everything_in_order(
    probe_nc: NATS, streams: BusNames,
) -> None:
    js = jetstream(probe_nc)
    failures: list[BaseException] = []
    acks = PendingAcks(js, size=8, timeout_s=5, on_failure=failures.append)
    subject = streams.raw("palaiseau", "gare")
    most = 0
    for i in range(300):
        await acks.publish(subject, f"{i}".encode(), {"Nats-Msg-Id": f"gare.s.{i}"})
        most = max(most, len(acks))
    await acks.publish(subject, b"0", {"Nats-Msg-Id": "gare.s.0"})  # a retry: stored once
    await acks.drain()
    assert not failures and len(acks) == 0
    assert most <= 8
    sub = await js.pull_subscribe(subject, stream=streams.raw_stream)
    got: list[bytes] = []
    while len(got) < 300:
        got += [m.data for m in await sub.fetch(100, timeout=2)]
    assert got == [f"{i}".encode() for i in range(300)]
    assert (await js.stream_info(streams.raw_stream)).state.messages == 300


async def test_a_message_no_stream_takes_is_reported(probe_nc: NATS, streams: BusNames) -> None:
    failures: list[BaseException] = []
    acks = PendingAcks(jetstream(probe_nc), size=4, timeout_s=5, on_failure=failures.append)
    for i in range(10):
        await acks.publish(f"{streams.root}.nowhere.{i}", b"x", {})
    await acks.drain()
    assert len(failures) == 10
    assert all(isinstance(f, NoStreamResponseError) for f in failures), failures
