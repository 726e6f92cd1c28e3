"""The SHA-256 of a recording's picture data: every non-empty video packet's bytes, in stored
order. A remux without re-encoding (the package's MP4s, the ONVIF export) keeps them byte for byte,
so the hash the recorder signed for a segment can be checked on an exported video, where the file's
own SHA-256 cannot (docs/exports.md, "Provenance")."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import av


def packets(source: bytes | Path) -> Iterator[bytes]:
    """The video packets' bytes, empty ones left out (the muxers' end-of-stream flushes)."""
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), "r") as media:
        stream = media.streams.video[0]
        for packet in media.demux(stream):
            if packet.dts is not None and packet.size:
                yield bytes(packet)


def payload_sha256(source: bytes | Path) -> tuple[str, int]:
    """(SHA-256 of the picture data, packets)."""
    digest, count = hashlib.sha256(), 0
    for data in packets(source):
        digest.update(data)
        count += 1
    return digest.hexdigest(), count


def split_payload(source: bytes | Path, frames: list[int]) -> list[str] | None:
    """The picture-data SHA-256 of consecutive runs of `frames` packets (one run per segment of a
    joined video); None when the video does not hold exactly that many packets."""
    digests: list[str] = []
    it = packets(source)
    for count in frames:
        digest = hashlib.sha256()
        for _ in range(count):
            data = next(it, None)
            if data is None:
                return None
            digest.update(data)
        digests.append(digest.hexdigest())
    return digests if next(it, None) is None else None
