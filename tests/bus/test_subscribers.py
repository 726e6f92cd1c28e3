"""Police systems subscribe durably (issue 25; R27): a subscriber stopped while events are published
gets them all when it comes back, in order, once each; it reads its communes' events only, and can
neither widen, delete nor add a consumer, nor read RAW or VIDEO; a wrong password is refused."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import pytest_asyncio
from nats.js.api import ConsumerConfig
from nats.js.errors import APIError
from vigie.local import servers
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.events import CameraWentOffline, publish_event_or_log
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subscribers import add_subscriber, durable_name, follow

from tests.bus.test_permissions import NAMES, _connect
from tests.harness import REPO, eventually

pytestmark = pytest.mark.integration
SUBSCRIBER = "prefecture-91"


@pytest_asyncio.fixture
async def events_server(tmp_path: Path) -> AsyncIterator[servers.NatsServer]:
    server = servers.start_nats(tmp_path / "nats", externals={SUBSCRIBER: ["palaiseau"]})
    admin = await _connect(server, "admin")
    await ensure_streams(jetstream(admin), NAMES, StreamLimits(raw_max_age_s=60))
    await add_subscriber(jetstream(admin), NAMES, SUBSCRIBER, ["palaiseau"])
    await admin.close()
    yield server
    server.process.stop()


async def publish_offline(nc: nats.NATS, cameras: list[tuple[str, str]]) -> list[str]:
    """A `camera.offline` event per camera, as the retention service's user; their ids."""
    ids = []
    for commune, camera in cameras:
        event = CameraWentOffline(commune=commune, camera=camera, reason="timeout")
        assert await publish_event_or_log(jetstream(nc), NAMES, event)
        ids.append(event.event_id)
    return ids


async def _publish(server: servers.NatsServer, cameras: list[tuple[str, str]]) -> list[str]:
    retention = await _connect(server, "retention")
    ids = await publish_offline(retention, cameras)
    await retention.close()
    return ids


async def _follow_until(server: servers.NatsServer, count: int) -> list[dict[str, Any]]:
    """Run the reference client until it printed `count` events, then stop it."""
    nc = await _connect(server, SUBSCRIBER)
    out, lines, stop = io.StringIO(), [], asyncio.Event()

    def printed(line: dict[str, Any]) -> None:
        lines.append(line)
        if len(lines) >= count:
            stop.set()

    task = asyncio.create_task(follow(jetstream(nc), NAMES, SUBSCRIBER, out, stop=stop, batch=1,
                                      printed=printed))
    await asyncio.wait_for(task, timeout=20)
    await nc.close()
    assert [json.loads(x) for x in out.getvalue().splitlines()] == lines
    return lines


async def test_a_subscriber_away_catches_up_in_order_once_each_R27(
    events_server: servers.NatsServer,
) -> None:
    first = await _publish(events_server, [("palaiseau", f"cam{i}") for i in range(5)]
                           + [("ballainvilliers", "mairie")])
    seen = await _follow_until(events_server, 3)
    # Away: more events meanwhile, of its commune and of another.
    later = await _publish(events_server, [("palaiseau", "cam5"), ("ballainvilliers", "x"),
                                           ("palaiseau", "cam6"), ("palaiseau", "cam7")])
    seen += await _follow_until(events_server, 5)
    palaiseau = [first[i] for i in range(5)] + [later[0], later[2], later[3]]
    assert [line["event"]["event_id"] for line in seen] == palaiseau
    assert all(line["event"]["commune"] == "palaiseau" for line in seen)
    sequences = [line["sequence"] for line in seen]
    assert sequences == sorted(sequences)
    admin = await _connect(events_server, "admin")
    info = await jetstream(admin).consumer_info(NAMES.events_stream, durable_name(SUBSCRIBER))
    await admin.close()
    assert info.num_pending == 0 and info.num_ack_pending == 0, "all acknowledged, none left"


async def _refused(call: Any) -> None:
    with pytest.raises((nats.errors.TimeoutError, TimeoutError, APIError,
                        nats.errors.NoRespondersError)):
        await asyncio.wait_for(call, timeout=3)


async def test_a_subscriber_reads_its_communes_events_only_and_cannot_touch_its_consumer(
    events_server: servers.NatsServer,
) -> None:
    ext = await _connect(events_server, SUBSCRIBER)
    js = jetstream(ext)
    stream = NAMES.events_stream
    await _refused(js.delete_consumer(stream, durable_name(SUBSCRIBER)))
    await _refused(js.add_consumer(stream, ConsumerConfig(
        durable_name=durable_name(SUBSCRIBER), filter_subjects=[f"{NAMES.root}.events.>"])))
    await _refused(js.add_consumer(stream, ConsumerConfig(durable_name="mine")))
    for other in (NAMES.raw_stream, NAMES.video_stream):
        await _refused(js.pull_subscribe(f"{NAMES.root}.>", durable="peek", stream=other))
    got: list[str] = []

    async def seen(msg: Any) -> None:
        got.append(msg.subject)

    await ext.subscribe(f"{NAMES.root}.events.ballainvilliers.>", cb=seen)  # refused
    await ext.subscribe(f"{NAMES.root}.events.palaiseau.>", cb=seen)
    await ext.flush()
    await _publish(events_server, [("ballainvilliers", "mairie"), ("palaiseau", "gare")])
    await eventually(lambda: got, timeout_s=5)
    await asyncio.sleep(0.3)
    assert got == [f"{NAMES.root}.events.palaiseau.camera.offline"]
    await ext.close()
    admin = await _connect(events_server, "admin")
    info = await jetstream(admin).consumer_info(stream, durable_name(SUBSCRIBER))
    await admin.close()
    assert info.config.filter_subjects == [
        f"{NAMES.root}.events.palaiseau.>",
        f"{NAMES.root}.events._system.register.checkpoint"], "unchanged"
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(events_server.url, user=SUBSCRIBER, password="not-its-password",
                           allow_reconnect=False, connect_timeout=2)


def follow_client(server: servers.NatsServer, **env: str) -> subprocess.Popen[str]:
    """`vigie events follow` as an integrator runs it: its settings from the environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "vigie.cli.main", "events", "follow", "--subscriber", SUBSCRIBER],
        env={**os.environ, "VIGIE_NATS_URL": server.url,
             "VIGIE_SUBSCRIBER_PASSWORD": server.passwords[SUBSCRIBER],
             "VIGIE_POSTGRES_DSN": "postgresql://unused@127.0.0.1:1/x",
             "VIGIE_S3_ENDPOINT": "127.0.0.1:1", "VIGIE_S3_ACCESS_KEY": "unused",
             "VIGIE_S3_SECRET_KEY": "unused-secret", "VIGIE_LOCAL_MODE": "true", **env},
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_vigie_events_follow_prints_json_lines_and_resumes(
    events_server: servers.NatsServer, tmp_path: Path,
) -> None:
    asyncio.run(_publish(events_server, [("palaiseau", "gare"), ("palaiseau", "mairie")]))
    proc = follow_client(events_server)
    try:
        assert proc.stdout is not None
        lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert [x["event"]["camera"] for x in lines] == ["gare", "mairie"]
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


async def test_after_a_crash_between_storing_and_acknowledging_events_still_come_in_order(
    tmp_path: Path,
) -> None:
    """Issue 39: a client that crashed after storing an event and before acknowledging it got
    the newer events first, the unacknowledged one after the acknowledgement wait. One event in
    flight per subscriber (`max_ack_pending` 1): it comes again first, then the rest in order."""
    server = servers.start_nats(tmp_path / "nats", externals={SUBSCRIBER: ["palaiseau"]})
    try:
        admin = await _connect(server, "admin")
        await ensure_streams(jetstream(admin), NAMES, StreamLimits(raw_max_age_s=60))
        await add_subscriber(jetstream(admin), NAMES, SUBSCRIBER, ["palaiseau"], ack_wait_s=2)
        await admin.close()
        published = await _publish(server, [("palaiseau", f"c{i}") for i in range(4)])
        crashed = await _connect(server, SUBSCRIBER)
        sub = await jetstream(crashed).pull_subscribe_bind(durable_name(SUBSCRIBER),
                                                           stream=NAMES.events_stream)
        (stored,) = await sub.fetch(1, timeout=5)  # stored by the client, then it dies
        assert json.loads(stored.data)["event_id"] == published[0]
        await crashed.close()

        again = await _connect(server, SUBSCRIBER)
        sub = await jetstream(again).pull_subscribe_bind(durable_name(SUBSCRIBER),
                                                         stream=NAMES.events_stream)
        received: list[str] = []
        while len(received) < len(published):  # the first after the 2-s wait, then the rest
            for msg in await sub.fetch(1, timeout=10):
                received.append(json.loads(msg.data)["event_id"])
                await msg.ack_sync()
        await again.close()
        assert received == published
    finally:
        server.process.stop()
