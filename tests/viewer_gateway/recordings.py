"""Recorded footage for playback tests, cut and stored exactly as the recorder does."""

from __future__ import annotations

import asyncpg
from vigie.plumbing.storage.objects import ObjectStore

from services.recorder.core import Segmenter, mux_fmp4, object_key, utc
from tests.recorder.frames import video_frames


async def record_minute(db: asyncpg.Pool, objects: ObjectStore, bucket: str, *,
                        start_ns: int, camera: str = "gare", seconds: int = 60,
                        segment_s: int = 10) -> list[int]:
    """`seconds` of 160x120 video at 25 fps for palaiseau/<camera> from start_ns, in segments of
    `segment_s`; returns the capture time of every frame. A start_ns off the whole second gives
    segments as the recorder cuts them from a real camera (issue 18)."""
    frames = video_frames(camera, seconds * 25, start_ns=start_ns)
    cid = await db.fetchval("SELECT id FROM cameras WHERE commune = 'palaiseau' AND slug = $1",
                            camera)
    segmenter: Segmenter[int] = Segmenter(segment_s=segment_s)
    segments = [s for i, f in enumerate(frames) for s in segmenter.feed(f, i)[0]]
    segments.append(segmenter.flush())  # type: ignore[arg-type]
    for seg in segments:
        muxed = mux_fmp4(seg)
        key = object_key("palaiseau", camera, seg.start_ns)
        await objects.put(bucket, key, muxed.data)
        await db.execute(
            "INSERT INTO segments (camera_id, start_time, end_time, object_key, frames, "
            "size_bytes, sha256, mask_version, codec, width, height) VALUES ($1, $2, $3, $4, $5, "
            "$6, $7, 1, 'h264', 160, 120)", cid, utc(seg.start_ns), utc(seg.end_ns), key,
            len(seg.frames), len(muxed.data), muxed.sha256)
    return [f.capture_time_ns for f in frames]
