"""Recordings as the recorder leaves them, for the export tests."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from vigie.custody import provenance
from vigie.custody.exports.package import Requisition
from vigie.plumbing.storage.objects import ObjectStore
from vigie.records.announced_keys import announce
from vigie.security.signing import SigningKey

from services.recorder.core import Segmenter, mux_fmp4, object_key
from tests.recorder.frames import video_frames

REQUISITION = Requisition(reference="PV 2026/001234", officer="OPJ Martin, commissariat de Massy",
                          recipient="Commissariat de Massy", medium="clé USB n° 12",
                          reason="dégradations sur abribus", created_by="agent 4521")


RECORDING_KEY = SigningKey.generate()


async def recorded(db: asyncpg.Pool, objects: ObjectStore, bucket: str, cid: int, *,
                    start: datetime, seconds: int, slug: str = "gare",
                    recording_key: SigningKey | None = RECORDING_KEY,
                    ) -> list[tuple[datetime, datetime, int]]:
    """Real masked H.264 cut into 4-s fMP4 segments, stored, registered and chained (signed with
    `recording_key`) as the recorder does."""
    if recording_key is not None:
        await announce(db, recording_key, purpose="recording", service="recorder")
    start_ns = int(start.timestamp() * 1e9)
    segmenter: Segmenter[None] = Segmenter(segment_s=4.0)
    segments = []
    for frame in video_frames(slug, seconds * 25, start_ns=start_ns):
        closed, _ = segmenter.feed(frame, None)
        segments += closed
    last = segmenter.flush()
    segments += [last] if last else []
    stored = []
    for seg in segments:
        muxed = mux_fmp4(seg)
        key = object_key("palaiseau", slug, seg.start_ns)
        await objects.put(bucket, key, muxed.data)
        begin = datetime.fromtimestamp(seg.start_ns / 1e9, UTC)
        end = datetime.fromtimestamp(seg.end_ns / 1e9, UTC)
        async with db.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO segments (camera_id, start_time, end_time, object_key, frames, "
                "size_bytes, sha256, mask_version, codec, width, height) VALUES ($1, $2, $3, $4, "
                "$5, $6, $7, 1, 'h264', 160, 120)", cid, begin, end, key, len(seg.frames),
                len(muxed.data), muxed.sha256)
            await provenance.append(
                conn, recording_key, camera_id=cid, camera=f"palaiseau/{slug}", object_key=key,
                start=begin, end=end, sha256_hex=muxed.sha256,
                payload_sha256=muxed.payload_sha256, frames=muxed.packets, mask_version=1)
        stored.append((begin, end, len(seg.frames)))
    return stored


