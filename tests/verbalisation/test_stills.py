"""A still is made from the masked VIDEO stream, never RAW (invariant 1; R34): the marker the test
camera draws in a masked zone never appears in a still of it — while a camera without masks shows
it (the check can fail) — and the still is the camera's picture at the instant asked, with its
date, time, camera and place written on it."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import av
import pytest
from PIL import Image
from vigie.local import servers
from vigie.plumbing.bus.connection import jetstream

from services.verbalisation.capture import NoPicture, still_at
from tests.harness import eventually
from tests.masking.conftest import COVER, H, MaskingHarness, W, marker_visible

pytestmark = pytest.mark.integration


def _picture(jpeg: bytes) -> av.VideoFrame:
    return av.VideoFrame.from_image(Image.open(io.BytesIO(jpeg)).convert("RGB"))


async def test_the_masked_marker_never_appears_in_a_still_R34(
    masking_harness: MaskingHarness, marker_cameras: servers.RtspCameras,
) -> None:
    h = masking_harness
    await h.add_camera("parvis", marker_cameras.url("m1"), masks=[{"points": COVER}])
    await h.add_camera("nu", marker_cameras.url("m2"), masks=[])
    reader, unsubscribe = await h.read_video("parvis")
    plain, unsubscribe_plain = await h.read_video("nu")
    try:
        await eventually(lambda: len(reader.pictures) >= 60 and len(plain.pictures) >= 60,
                         timeout_s=40, message="masked video is not flowing")
        js = jetstream(h.nc)
        # Instants of pictures the agent saw (the live view shows each frame's capture time).
        for back in (40, 25, 5):
            frame = reader.frames[-back]
            at = datetime.fromtimestamp(frame.capture_time_ns / 1e9, UTC) + timedelta(
                milliseconds=10)
            still = await still_at(js, h.names, "palaiseau", "parvis", at, camera_name="Parvis",
                                   place="Place de l'Hôtel de ville", wait_s=5)
            assert (still.width, still.height) == (W, H)
            assert still.mask_version == 1
            # The picture shown then: that frame, or one captured after it up to the instant.
            shown = datetime.fromtimestamp(frame.capture_time_ns / 1e9, UTC)
            assert shown - timedelta(microseconds=1) <= still.capture_time <= at
            assert not marker_visible(_picture(still.jpeg)), "the masked zone stays masked"
            seen = plain.frames[-back]  # the control camera's own picture of about then
            control = await still_at(js, h.names, "palaiseau", "nu", datetime.fromtimestamp(
                seen.capture_time_ns / 1e9, UTC) + timedelta(milliseconds=10), camera_name="Nu",
                place="", wait_s=5)
            assert marker_visible(_picture(control.jpeg)), "the check sees an unmasked marker"
        # The band: darker than the picture under it, and the picture keeps its size.
        band = Image.open(io.BytesIO(still.jpeg)).convert("L").crop((0, 0, W, H // 30))
        assert sum(band.getdata()) / (W * (H // 30)) < 90
        # A time the camera sent nothing for (before it existed): no still, with the reason.
        with pytest.raises(NoPicture):
            await still_at(js, h.names, "palaiseau", "parvis",
                           datetime.now(UTC) - timedelta(hours=1), camera_name="Parvis",
                           place="", wait_s=1)
    finally:
        await unsubscribe()
        await unsubscribe_plain()
