"""No valid prefectoral authorisation, no image (issue 24; REGULATION.md R3): masking — the point
where nothing unmasked or unauthorised passes — publishes nothing of a camera whose authorisation
is missing, expired or not yet in force, says why in the camera's health and an event, and resumes
at a keyframe when a valid one is attached."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from vigie.local import servers

from tests.harness import authorise, eventually
from tests.masking.conftest import COVER, MaskingHarness
from tests.masking.test_masking_service import _events, _flowing

pytestmark = pytest.mark.integration


async def _health(h: MaskingHarness, slug: str) -> str:
    return str(await h.db.fetchval(
        "SELECT h.masking_detail FROM camera_health h JOIN cameras c ON c.id = h.camera_id "
        "WHERE c.slug = $1", slug) or "")


async def _stopped(h: MaskingHarness, reader, slug: str, why: str) -> None:  # type: ignore[no-untyped-def]
    async def blocked() -> bool:
        detail = await _health(h, slug)
        return detail.startswith("unauthorised") and why in detail

    await eventually(blocked, timeout_s=10, message="masking did not report the camera blocked")
    stopped_at = len(reader.frames)
    await asyncio.sleep(2)  # the RTSP camera sends 25 frames a second meanwhile
    assert len(reader.frames) == stopped_at, "frames published without a valid authorisation"


async def test_an_expired_authorisation_stops_the_camera_and_a_renewal_resumes_it_R3(
    masking_harness: MaskingHarness, marker_cameras: servers.RtspCameras,
) -> None:
    h = masking_harness
    await h.add_camera("parvis", marker_cameras.url("m1"), masks=[{"points": COVER}])
    reader, unsubscribe = await h.read_video("parvis")
    await _flowing(reader)

    # The order ended yesterday (in the commune's time zone): nothing more is published.
    expired = await authorise(h.db, "palaiseau", ["parvis"],
                              valid_until=date.today() - timedelta(days=1))
    reference = await h.db.fetchval("SELECT reference FROM authorisations WHERE id = $1", expired)
    await _stopped(h, reader, "parvis", f"authorisation {reference} expired")
    failed = await eventually(lambda: [e for e in _events(h, "failed", "parvis")
                                       if e["reason"] == "unauthorised"], timeout_s=5)
    assert reference in failed[0]["detail"]

    # Renewed: attached to the new order, the camera resumes — from a keyframe, masked.
    await authorise(h.db, "palaiseau", ["parvis"])
    resumed_from = len(reader.frames)
    await _flowing(reader)
    assert reader.frames[resumed_from].keyframe
    assert not any(visible for _, visible in reader.pictures), "the private area was shown"
    assert reader.decode_errors == 0
    await unsubscribe()


async def test_a_camera_without_an_authorisation_or_before_it_starts_films_nothing_R3(
    masking_harness: MaskingHarness, marker_cameras: servers.RtspCameras,
) -> None:
    h = masking_harness
    await h.add_camera("rue", marker_cameras.url("m2"), masks=[{"points": COVER}])
    reader, unsubscribe = await h.read_video("rue")
    await _flowing(reader)
    await h.db.execute("UPDATE cameras SET authorisation_id = NULL WHERE slug = 'rue'")
    await _stopped(h, reader, "rue", "no prefectoral authorisation")
    # Not even the commissioning snapshot, the one unmasked picture Vigie shows.
    reply = await h.nc.request(h.names.snapshot_request("palaiseau", "rue"), b"", timeout=10)
    assert reply.data == b"" and "no prefectoral authorisation" in reply.headers["Vigie-Error"]

    # An order granted but not in force yet (it starts tomorrow) does not let it film either.
    future = await h.db.fetchval(
        "INSERT INTO authorisations (commune, reference, granted_on, valid_until, purposes, "
        "recipients, retention_max_days, created_by) VALUES ('palaiseau', 'AP-demain', "
        "current_date + 2, current_date + 400, '{protection des bâtiments publics}', "
        "'{municipal_police}', 30, 'test') RETURNING id")
    await h.db.execute("UPDATE cameras SET authorisation_id = $1 WHERE slug = 'rue'", future)
    await _stopped(h, reader, "rue", "not in force yet")
    await unsubscribe()
