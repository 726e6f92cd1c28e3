"""NATS users: only masking may read RAW, by any route (DESIGN.md "NATS users", invariant 1).

A core subscription alone proves nothing (../shared/ENVIRONMENT.md): a user allowed the JetStream
API could still read RAW through a pull consumer or a direct get. All three are tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from fractions import Fraction

import nats
import nats.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from nats.js.errors import APIError
from vigie.local import servers
from vigie.plumbing.bus.connection import inbox_prefix, jetstream
from vigie.plumbing.bus.frames import Frame, publish_frame
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.bus.subscribers import add_subscriber

from tests.harness import PROBE, PROBE_USER, unique

pytestmark = pytest.mark.integration
NAMES = BusNames()  # the production root: permissions are written for it


async def _connect(server: servers.NatsServer, user: str) -> NATS:
    errors: list[Exception] = []

    async def _err(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(server.url, user=user, password=server.passwords[user],
                            inbox_prefix=inbox_prefix(user), error_cb=_err,
                            allow_reconnect=False)
    nc._test_errors = errors  # type: ignore[attr-defined]
    return nc


@pytest_asyncio.fixture
async def raw_server(tmp_path) -> AsyncIterator[servers.NatsServer]:  # type: ignore[no-untyped-def]
    """A nats-server of its own with the production streams, one RAW frame published by ingest."""
    server = servers.start_nats(tmp_path / "nats", externals={"ext_palaiseau": ["palaiseau"]},
                                extra_users=PROBE)
    admin = await _connect(server, "admin")
    await ensure_streams(jetstream(admin), NAMES, StreamLimits(raw_max_age_s=60))
    await admin.close()
    ingest = await _connect(server, "ingest")
    frame = Frame(commune="palaiseau", camera="gare", codec="h264", width=64, height=64, pts=0,
                  time_base=Fraction(1, 90000), keyframe=True, capture_time_ns=1, session="s",
                  seq=0, data=b"UNMASKED")
    await publish_frame(jetstream(ingest), NAMES, frame, stage="raw")
    await ingest.close()
    yield server
    server.process.stop()


async def _can_read_raw(server: servers.NatsServer, user: str) -> dict[str, bool]:
    """Try the three routes to RAW; True where the unmasked payload came back."""
    nc = await _connect(server, user)
    js = jetstream(nc, timeout_s=2)
    result = {}
    # 1. core subscription (the frame is re-published live so a subscriber could see it)
    got: list[bytes] = []
    try:
        sub = await nc.subscribe(NAMES.all_raw, cb=lambda m: got.append(m.data) or asyncio.sleep(0))
        await nc.flush(timeout=2)
    except (nats.errors.Error, TimeoutError):
        sub = None
    ingest = await _connect(server, "ingest")
    frame = Frame(commune="palaiseau", camera="gare", codec="h264", width=64, height=64, pts=1,
                  time_base=Fraction(1, 90000), keyframe=False, capture_time_ns=2, session="s",
                  seq=1, data=b"UNMASKED")
    await publish_frame(jetstream(ingest), NAMES, frame, stage="raw")
    await ingest.close()
    await asyncio.sleep(0.3)
    result["subscription"] = b"UNMASKED" in got
    if sub is not None:
        try:
            await sub.unsubscribe()
        except nats.errors.Error:
            pass
    # 2. a JetStream pull consumer on the RAW stream
    try:
        psub = await js.pull_subscribe(NAMES.all_raw, durable=unique("d"), stream=NAMES.raw_stream)
        msgs = await psub.fetch(1, timeout=2)
        result["pull_consumer"] = any(m.data == b"UNMASKED" for m in msgs)
    except (nats.errors.Error, APIError, TimeoutError):
        result["pull_consumer"] = False
    # 3. a direct get of a stored RAW message
    try:
        msg = await js.get_msg(NAMES.raw_stream, 1)
        result["direct_get"] = msg.data == b"UNMASKED"
    except (nats.errors.Error, APIError, TimeoutError):
        result["direct_get"] = False
    if not nc.is_closed:
        await nc.close()
    return result


@pytest.mark.parametrize("user", ["recorder", "gateway", "verbalisation", "retention", "ingest",
                                  "ext_palaiseau"])
async def test_only_masking_reads_raw(raw_server: servers.NatsServer, user: str) -> None:
    routes = await _can_read_raw(raw_server, user)
    assert routes == {"subscription": False, "pull_consumer": False, "direct_get": False}


async def test_masking_does_read_raw_through_its_consumer(raw_server: servers.NatsServer) -> None:
    """The positive control: the same probe sees RAW when the user is allowed to."""
    routes = await _can_read_raw(raw_server, "masking")
    assert routes["pull_consumer"] is True


async def test_the_provisioning_user_reads_and_writes_no_picture_R38(
    raw_server: servers.NatsServer,
) -> None:
    """Issue 34: `admin` kept `>` at run time. It defines streams and subscribers' consumers (the
    fixture above made the streams with it) and nothing more: RAW is out of its reach by every
    route, and what it publishes on RAW, VIDEO or EVENTS never reaches anyone."""
    assert await _can_read_raw(raw_server, "admin") == {
        "subscription": False, "pull_consumer": False, "direct_get": False}
    probe = await _connect(raw_server, PROBE_USER)
    seen: list[str] = []

    async def _seen(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append(msg.subject)

    await probe.subscribe(">", cb=_seen)
    await probe.flush()
    admin = await _connect(raw_server, "admin")
    for subject in ("vigie.raw.palaiseau.gare", "vigie.video.palaiseau.gare",
                    "vigie.events.palaiseau.camera.offline"):
        await admin.publish(subject, b"forged")
    await admin.flush()
    await asyncio.sleep(0.3)
    assert [s for s in seen if s.startswith("vigie.")] == []
    assert any("permissions violation" in str(e).lower() for e in admin._test_errors), admin._test_errors  # type: ignore[attr-defined]
    # Still what `vigie subscriber add` needs: a subscriber's consumer on EVENTS, not on RAW.
    js = jetstream(admin, timeout_s=2)
    await add_subscriber(js, NAMES, "ext_palaiseau", ["palaiseau"])
    with pytest.raises((nats.errors.Error, APIError, TimeoutError)):
        await js.add_consumer(NAMES.raw_stream, durable_name=unique("d"))
    for nc in (probe, admin):
        await nc.close()


async def test_external_subscriber_sees_only_its_communes_events(
    raw_server: servers.NatsServer,
) -> None:
    ext = await _connect(raw_server, "ext_palaiseau")
    got: list[str] = []

    async def _cb(msg) -> None:  # type: ignore[no-untyped-def]
        got.append(msg.subject)

    await ext.subscribe("vigie.events.palaiseau.>", cb=_cb)
    await ext.subscribe("vigie.events.ballainvilliers.>", cb=_cb)  # refused by the server
    await ext.flush()
    retention = await _connect(raw_server, "retention")
    await retention.publish("vigie.events.palaiseau.camera.offline", b"{}")
    await retention.publish("vigie.events.ballainvilliers.camera.offline", b"{}")
    await retention.flush()
    await asyncio.sleep(0.3)
    assert got == ["vigie.events.palaiseau.camera.offline"]
    # and it may publish nothing: the harness's probe sees retention's message, not the external's
    admin = await _connect(raw_server, PROBE_USER)
    seen: list[bytes] = []

    async def _admin_cb(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append(msg.data)

    await admin.subscribe("vigie.events.palaiseau.>", cb=_admin_cb)
    await admin.flush()
    await ext.publish("vigie.events.palaiseau.camera.offline", b"from-external")
    await ext.flush()
    await retention.publish("vigie.events.palaiseau.camera.offline", b"from-retention")
    await retention.flush()
    await asyncio.sleep(0.3)
    assert seen == [b"from-retention"]
    for nc in (ext, retention, admin):
        await nc.close()


async def test_ingest_may_bring_raw_back_and_create_nothing_else(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A nats-server restart loses RAW (memory): ingest may create that one stream again."""
    from nats.js.api import StorageType
    from vigie.plumbing.bus.streams import RawStreamKeeper

    server = servers.start_nats(tmp_path / "nats")
    try:
        ingest = await _connect(server, "ingest")
        js = jetstream(ingest, timeout_s=2)
        assert await RawStreamKeeper(js, NAMES).ensure()
        assert (await js.stream_info(NAMES.raw_stream)).config.storage == StorageType.MEMORY
        for stream, subject in ((NAMES.video_stream, NAMES.all_video),
                                (NAMES.events_stream, NAMES.all_events)):
            with pytest.raises((nats.errors.Error, TimeoutError)):
                await js.add_stream(name=stream, subjects=[subject])
        # No answer (a cluster electing RAW's leader): said and retried later, never raised
        # from the background task that asked (issue 35: "Task exception was never retrieved").
        assert server.process.proc is not None
        server.process.proc.send_signal(signal.SIGSTOP)
        try:
            assert await RawStreamKeeper(js, NAMES, min_interval_s=0).ensure() is False
        finally:
            server.process.proc.send_signal(signal.SIGCONT)
        await ingest.close()
    finally:
        server.process.stop()


async def test_only_the_gateway_asks_the_verbalisation_service_which_answers_it_R32(
    raw_server: servers.NatsServer,
) -> None:
    """The service's requests carry the agent the gateway authorised: no other user may send one
    (a recorder or an external subscriber could otherwise note offences), and it answers."""
    service = await _connect(raw_server, "verbalisation")
    received: list[str] = []

    async def answer(msg) -> None:  # type: ignore[no-untyped-def]
        received.append(msg.subject)
        await msg.respond(b'{"ok": true}')
    await service.subscribe(NAMES.verbalisation_request("*"), queue="verbalisation", cb=answer)
    await service.flush(timeout=2)
    gateway = await _connect(raw_server, "gateway")
    reply = await gateway.request(NAMES.verbalisation_request("create"), b"{}", timeout=2)
    assert reply.data == b'{"ok": true}'
    for user in ("recorder", "retention", "ext_palaiseau"):
        other = await _connect(raw_server, user)
        with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
            await other.request(NAMES.verbalisation_request("create"), b"{}", timeout=1)
        await other.close()
    await asyncio.sleep(0.3)
    assert received == [NAMES.verbalisation_request("create")], "only the gateway's request"
    await gateway.close()
    await service.close()


async def test_raw_headers_carry_no_picture_and_reach_ingest_alone(
    raw_server: servers.NatsServer,
) -> None:
    """Issue 35: a standby ingest replica follows where each camera's RAW stands from the headers
    the server republishes once a frame is stored — never the picture (invariant 1: only masking
    reads RAW), and nobody but ingest may listen."""
    ingest = await _connect(raw_server, "ingest")
    seen: list[tuple[bytes, dict[str, str]]] = []

    async def keep(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append((msg.data, dict(msg.headers or {})))

    await ingest.subscribe(NAMES.raw_headers("palaiseau", "gare"), cb=keep)
    await ingest.flush()
    frame = Frame(commune="palaiseau", camera="gare", codec="h264", width=64, height=64, pts=9,
                  time_base=Fraction(1, 90000), keyframe=False, capture_time_ns=9, session="s",
                  seq=9, data=b"UNMASKED", digest="d1")
    await publish_frame(jetstream(ingest), NAMES, frame, stage="raw")
    for _ in range(20):
        if seen:
            break
        await asyncio.sleep(0.1)
    await ingest.close()
    assert len(seen) == 1
    data, headers = seen[0]
    assert data == b"" and b"UNMASKED" not in repr(headers).encode()
    assert (headers["Vigie-Seq"], headers["Vigie-Digest"]) == ("9", "d1")
    for user in ("recorder", "gateway", "verbalisation", "retention", "ext_palaiseau"):
        nc = await _connect(raw_server, user)
        await nc.subscribe(NAMES.all_raw_headers)
        with contextlib.suppress(nats.errors.Error):
            await nc.flush(timeout=2)
        await asyncio.sleep(0.3)
        errors = nc._test_errors  # type: ignore[attr-defined]
        assert any("permissions violation" in str(e).lower() for e in errors), (user, errors)
        if not nc.is_closed:
            await nc.close()
