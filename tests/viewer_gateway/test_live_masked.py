"""The whole chain to the browser (issue 10; REGULATION.md R1; DESIGN.md invariant 1): an RTSP
camera drawing a marker → ingest → masking → VIDEO → the gateway's live WebSocket. What the viewer
decodes never shows the marker under its mask; a camera approved with no mask shows it (the
detector's positive control, through the same path)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from contextlib import aclosing

import av
import pytest
import websockets
from vigie.local import servers

from services.viewer_gateway.auth import COOKIE
from tests.masking.conftest import (  # noqa: F401 - fixtures
    COVER,
    MaskingHarness,
    marker_cameras,
    marker_visible,
    masking_harness,
)
from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration


async def _watch(gateway: GatewayUnderTest, token: str, camera: str, seconds: float) -> list[bool]:
    url = gateway.url.replace("http", "ws") + f"/api/cameras/palaiseau/{camera}/live"
    data = b""
    async with websockets.connect(url, additional_headers={"Cookie": f"{COOKIE}={token}"},
                                  max_size=None) as socket:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = await asyncio.wait_for(socket.recv(), timeout=10)
            if isinstance(message, bytes):
                data += message
            elif json.loads(message).get("type") == "closed":
                raise AssertionError(message)
    with av.open(io.BytesIO(data)) as container:
        return [marker_visible(p) for p in container.decode(video=0)]


async def test_the_viewer_never_sees_the_masked_marker_R1(
    gateway: GatewayUnderTest, masking_harness: MaskingHarness,  # noqa: F811
    marker_cameras: servers.RtspCameras,  # noqa: F811
) -> None:
    await masking_harness.add_camera("m1", marker_cameras.url("m1"),
                                     masks=[{"label": "fenêtre", "mode": "fill",
                                             "points": COVER}])
    await masking_harness.add_camera("m2", marker_cameras.url("m2"), masks=[])
    await asyncio.sleep(4)  # ingest connects, masking starts at a keyframe
    async with aclosing(await gateway.login("operator")) as operator:
        token = operator.cookies[COOKIE]
        masked = await _watch(gateway, token, "m1", 3.0)
        control = await _watch(gateway, token, "m2", 3.0)
    assert len(masked) >= 50 and not any(masked), "the marker reached a viewer"
    assert len(control) >= 50 and all(control), "the detector sees an unmasked marker"
