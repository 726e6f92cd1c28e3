"""Playback (issue 10; REGULATION.md R13 reason required, R12 the period watched in the register,
R4 never cached): the bytes served for a time T decode to the frame captured at T ± 1 s."""

from __future__ import annotations

import io
import json
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import asyncpg
import av
import pytest
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from tests.recorder.frames import FRAME_NS
from tests.viewer_gateway.conftest import GatewayUnderTest
from tests.viewer_gateway.recordings import record_minute

pytestmark = pytest.mark.integration
T0 = (int(datetime.now(UTC).timestamp()) - 3 * 3600) * 10**9  # three hours ago


async def test_the_segment_served_for_t_holds_the_frame_captured_at_t_and_the_view_is_registered(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    captures = await record_minute(db, objects, buckets.recordings, start_ns=T0)
    wanted = 777  # frame 777 is captured at T0 + 31.08 s
    at = datetime.fromtimestamp(captures[wanted] / 1e9, tz=UTC)
    async with aclosing(await gateway.login("operator")) as client:
        no_reason = await client.post("/api/cameras/palaiseau/gare/playback",
                                      json={"category": "damage", "at": at.isoformat()})
        assert no_reason.status_code == 422 and "reason" in no_reason.text
        blank = await client.post("/api/cameras/palaiseau/gare/playback", json={
            "category": "damage", "reason": "   ", "at": at.isoformat()})
        assert blank.status_code == 422
        opened = await client.post("/api/cameras/palaiseau/gare/playback", json={
            "category": "damage", "reason": "abribus dégradé", "reference": "PV-2026-12",
            "at": at.isoformat()})
        assert opened.status_code == 201, opened.text
        media = opened.json()["media"]
        served = await client.get(media, params={"at": at.isoformat()})
        assert served.status_code == 200, served.text
        assert served.headers["cache-control"] == "no-store"
        assert served.headers["content-type"] == "video/mp4"
        start = datetime.fromisoformat(served.headers["x-segment-start"])
        with av.open(io.BytesIO(served.content)) as container:
            pictures = list(container.decode(video=0))
        assert pictures[0].key_frame, "a segment decodes from its first frame"
        times = [start + timedelta(seconds=float(p.pts * p.time_base)) for p in pictures]
        nearest = min(times, key=lambda t: abs(t - at))
        assert abs(nearest - at) <= timedelta(seconds=1)
        assert abs(nearest - at) <= timedelta(milliseconds=FRAME_NS // 1_000_000)
        # Across the boundary: the next segment is where the header says.
        following = await client.get(media, params={"at": served.headers["x-next-at"]})
        assert following.status_code == 200
        assert following.headers["x-segment-start"] == served.headers["x-segment-end"]
        gap = await client.get(media, params={"at": (at + timedelta(hours=1)).isoformat()})
        assert gap.status_code == 404 and "nothing recorded" in gap.json()["detail"]
        assert (await client.post(f"{media.rsplit('/', 1)[0]}/end")).status_code == 204
        after = await client.get(media, params={"at": at.isoformat()})
        assert after.status_code == 409
    entry = await db.fetchrow("SELECT * FROM audit_log WHERE action = 'playback'")
    assert entry["actor"] == "operator" and entry["cameras"] == ["palaiseau/gare"]
    assert entry["reason"] == "damage: abribus dégradé"
    assert json.loads(entry["details"])["reference"] == "PV-2026-12"
    assert entry["period_start"] == start and entry["period_end"] == datetime.fromisoformat(
        following.headers["x-segment-end"])


async def test_playback_bad_input_is_refused_with_a_reason(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"category": "other", "reason": "contrôle"}
    async with aclosing(await gateway.login("operator")) as client:
        for path, extra, status, words in (
                ("/api/cameras/palaiseau/gare/playback", {"at": future}, 400, "future"),
                ("/api/cameras/palaiseau/inconnue/playback", {"at": future}, 404, "no camera"),
                ("/api/cameras/ballainvilliers/mairie/playback", {"at": future}, 404,
                 "no camera"),
                ("/api/cameras/palaiseau/gare/playback", {"at": "2026-01-01T10:00:00"}, 422,
                 "timezone")):
            response = await client.post(path, json={**body, **extra})
            assert response.status_code == status, response.text
            assert words in response.text.lower()
    async with aclosing(await gateway.login("auditor")) as auditor:
        refused = await auditor.post("/api/cameras/palaiseau/gare/playback",
                                     json={**body, "at": future})
        assert refused.status_code == 403 and "playback permission" in refused.json()["detail"]


async def test_the_timeline_lists_segments_and_the_gaps_between_them(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    captures = await record_minute(db, objects, buckets.recordings, start_ns=T0)
    first = datetime.fromtimestamp(captures[0] / 1e9, tz=UTC)
    start, end = first - timedelta(seconds=30), first + timedelta(seconds=90)
    async with aclosing(await gateway.login("operator")) as client:
        timeline = await client.get("/api/cameras/palaiseau/gare/timeline",
                                    params={"start": start.isoformat(), "end": end.isoformat()})
        assert timeline.status_code == 200, timeline.text
        body = timeline.json()
        assert len(body["segments"]) == 6 and sum(s["frames"] for s in body["segments"]) == 1500
        gaps = [(datetime.fromisoformat(g["start"]), datetime.fromisoformat(g["end"]))
                for g in body["gaps"]]
        # Nothing before the first frame, nothing after the last: contiguous in between.
        assert gaps[0] == (start, datetime.fromisoformat(body["segments"][0]["start"]))
        assert gaps[1][0] == datetime.fromisoformat(body["segments"][-1]["end"])
        assert len(gaps) == 2
        reversed_ = await client.get("/api/cameras/palaiseau/gare/timeline",
                                     params={"start": end.isoformat(), "end": start.isoformat()})
        assert reversed_.status_code == 400 and "ends before it starts" in reversed_.text


async def test_the_minute_being_recorded_is_not_a_gap_while_the_camera_sends(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    """Issue 38: the stretch since the last stored segment — the recorder's open segment — was
    hatched as a gap. While the camera sends and the last segment ended moments ago, it is
    « being recorded »; once the camera is silent (or the recorder late), it is a gap again."""
    objects, buckets = store
    now = datetime.now(UTC)
    start_ns = int((now - timedelta(seconds=50)).timestamp() * 1e9)
    await record_minute(db, objects, buckets.recordings, start_ns=start_ns, seconds=20)
    gare = await db.fetchval("SELECT id FROM cameras WHERE slug = 'gare'")
    await db.execute("INSERT INTO camera_health (camera_id, online, last_frame_at) VALUES "
                     "($1, true, now()) ON CONFLICT (camera_id) DO UPDATE SET online = true, "
                     "last_frame_at = now()", gare)
    params = {"start": (now - timedelta(minutes=5)).isoformat(),
              "end": (now + timedelta(minutes=1)).isoformat()}
    async with aclosing(await gateway.login("operator")) as client:
        body = (await client.get("/api/cameras/palaiseau/gare/timeline", params=params)).json()
        last_end = datetime.fromisoformat(body["segments"][-1]["end"])
        assert body["recording"] is not None
        assert datetime.fromisoformat(body["recording"]["start"]) == last_end
        assert datetime.fromisoformat(body["recording"]["end"]) >= now
        assert all(datetime.fromisoformat(g["start"]) < last_end for g in body["gaps"])
        await db.execute("UPDATE camera_health SET last_frame_at = now() - interval '1 minute' "
                         "WHERE camera_id = $1", gare)
        silent = (await client.get("/api/cameras/palaiseau/gare/timeline", params=params)).json()
        assert silent["recording"] is None
        assert datetime.fromisoformat(silent["gaps"][-1]["start"]) == last_end


async def test_every_boundary_of_off_second_segments_is_crossed_at_millisecond_precision(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    """Issue 18: 60-s segments that start at .254318 s; a browser reads X-Next-At to the
    millisecond (truncating), asks for that time, and must get the next segment, every time."""
    objects, buckets = store
    start_ns = T0 + 254_318_123
    await record_minute(db, objects, buckets.recordings, start_ns=start_ns, seconds=150,
                        segment_s=60)
    starts = [r["start_time"] for r in await db.fetch(
        "SELECT start_time FROM segments ORDER BY start_time")]
    assert len(starts) == 3 and all(s.microsecond % 1000 for s in starts), starts
    async with aclosing(await gateway.login("operator")) as client:
        first = datetime.fromtimestamp(start_ns / 1e9, tz=UTC)
        opened = await client.post("/api/cameras/palaiseau/gare/playback", json={
            "category": "other", "reason": "contrôle des limites", "at": first.isoformat()})
        media = opened.json()["media"]
        at, seen = first.isoformat(), []
        for _ in range(3):
            served = await client.get(media, params={"at": at})
            assert served.status_code == 200, served.text
            seen.append(datetime.fromisoformat(served.headers["x-segment-start"]))
            if "x-next-at" not in served.headers:
                break
            browser_ms = datetime.fromisoformat(served.headers["x-next-at"])
            at = browser_ms.replace(microsecond=browser_ms.microsecond // 1000 * 1000).isoformat()
        assert seen == starts, "a boundary served the same segment again"
