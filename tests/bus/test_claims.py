"""Per-camera claims (issue 17; DESIGN.md "a camera is owned by exactly one replica"): a second
process finds the camera taken and waits; a holder that stops renewing loses it within the TTL, and
learns it (fencing) before doing any more work; a NATS user renews only its own service's keys."""

from __future__ import annotations

import time
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from vigie.local import servers
from vigie.plumbing.bus.claims import Claims
from vigie.plumbing.bus.connection import inbox_prefix, jetstream
from vigie.plumbing.bus.streams import StreamLimits, ensure_claims, ensure_streams
from vigie.plumbing.bus.subjects import BusNames

from tests.harness import eventually

pytestmark = pytest.mark.integration


async def test_one_holder_at_a_time_and_a_frozen_holder_is_fenced(
    probe_nc: NATS, streams: BusNames,
) -> None:
    js = jetstream(probe_nc)
    await ensure_claims(js, streams, StreamLimits(claim_ttl_s=2))
    first = await Claims.bind(js, streams, service="masking")
    second = await Claims.bind(js, streams, service="masking")
    assert first.ttl_s == 2 and first.owner != second.owner
    held = await first.acquire("palaiseau", "gare")
    assert held is not None
    assert await second.acquire("palaiseau", "gare") is None, "taken: the second one waits"
    assert await first.renew(held)
    assert await second.acquire("palaiseau", "gare") is None
    # Another camera, or the same camera for another service, is free.
    assert await second.acquire("palaiseau", "mairie") is not None
    # The holder freezes (no renewal): the key expires, the second one takes over...
    t0 = time.monotonic()
    taken = await eventually(lambda: second.acquire("palaiseau", "gare"), timeout_s=6,
                             interval_s=0.2, message="an expired claim was never taken over")
    assert time.monotonic() - t0 < 2 * first.ttl_s
    # ...and the first one, waking up, learns it lost the camera before working on.
    assert not await first.still_held(held)
    assert await second.still_held(taken)
    await second.release(taken)
    assert await first.acquire("palaiseau", "gare") is not None, "released: free at once"


async def test_a_service_cannot_touch_another_services_claims(tmp_path: Path) -> None:
    """Permissions are written for the production root: a server of its own."""
    server = servers.start_nats(tmp_path / "nats")
    names = BusNames()

    async def connect(user: str) -> NATS:
        return await nats.connect(server.url, user=user, password=server.passwords[user],
                                  inbox_prefix=inbox_prefix(user), allow_reconnect=False)

    admin, recorder, masking = await connect("admin"), await connect("recorder"), \
        await connect("masking")
    try:
        await ensure_streams(jetstream(admin), names, StreamLimits())
        # The recorder has claims of its own (issue 19), but cannot take masking's.
        intruder = await Claims.bind(jetstream(recorder, timeout_s=2), names, service="masking")
        assert await intruder.acquire("palaiseau", "gare") is None
        claims = await Claims.bind(jetstream(masking, timeout_s=2), names, service="masking")
        assert await claims.acquire("palaiseau", "gare") is not None, "the intruder took it"
        kv = await jetstream(masking, timeout_s=2).key_value(names.claims_bucket)
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await kv.create("ingest.palaiseau.gare", b"intruder")
    finally:
        for nc in (admin, recorder, masking):
            await nc.close()
        server.process.stop()
