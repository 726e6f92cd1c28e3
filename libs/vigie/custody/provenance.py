"""The recorder's signed chain of segments (docs/exports.md, "Provenance").

Each stored segment adds a link to its camera's chain: the link is the SHA-256 of a short text
naming the camera, the segment's times, its file's and its picture data's SHA-256, its frames, its
mask version and the previous link, and the recorder signs that text with the recording key
(Ed25519) as it stores the segment. A package carries the links of what it holds, so an investigator
can check that the footage is what Vigie recorded at the time — not only what it exported — and
that nothing was taken out between two consecutive segments.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import asyncpg

from vigie.security.signing import SigningKey, signature_holds

FORMAT = "vigie-segment/1"
GENESIS = "0" * 64  # the previous link of a camera's first segment
CHAIN_LOCK = 7_421_022  # with the camera id: one writer per chain, even without a lease


@dataclass(frozen=True)
class Link:
    camera: str  # COMMUNE/CAMERA
    seq: int
    start: datetime
    end: datetime
    sha256: str
    payload_sha256: str
    frames: int
    mask_version: int
    prev: str

    def message(self) -> bytes:
        """What is hashed and signed: one field per line, UTF-8, no trailing newline."""
        fields = [FORMAT, self.camera, str(self.seq), iso(self.start), iso(self.end),
                  self.sha256, self.payload_sha256, str(self.frames), str(self.mask_version),
                  self.prev]
        return "\n".join(fields).encode()

    def link(self) -> str:
        return sha256(self.message()).hexdigest()

    @classmethod
    def from_dict(cls, camera: str, d: dict[str, Any]) -> Link:
        return cls(camera=camera, seq=int(d["seq"]), start=_parse(d["start"]),
                   end=_parse(d["end"]), sha256=str(d["sha256"]),
                   payload_sha256=str(d["payload_sha256"]), frames=int(d["frames"]),
                   mask_version=int(d["mask_version"]), prev=str(d["prev"]))


def iso(moment: datetime) -> str:
    # Microseconds always written: the same instant gives the same text on every machine.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


HEAD_SQL = """
SELECT seq, link FROM segment_chain WHERE camera_id = $1 ORDER BY seq DESC LIMIT 1
"""
APPEND_SQL = """
INSERT INTO segment_chain (camera_id, seq, start_time, end_time, object_key, sha256,
                           payload_sha256, frames, mask_version, prev_link, link, signature,
                           key_fingerprint)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
"""


async def append(conn: asyncpg.Connection, key: SigningKey | None, *, camera_id: int,
                 camera: str, object_key: str, start: datetime, end: datetime, sha256_hex: str,
                 payload_sha256: str, frames: int, mask_version: int) -> Link:
    """Add the segment's link, in the caller's transaction (the one that records the segment, with
    the camera's ownership row locked: one writer per camera)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", CHAIN_LOCK, camera_id)
    head = await conn.fetchrow(HEAD_SQL, camera_id)
    link = Link(camera=camera, seq=(head["seq"] + 1) if head else 1, start=start, end=end,
                sha256=sha256_hex, payload_sha256=payload_sha256, frames=frames,
                mask_version=mask_version, prev=head["link"] if head else GENESIS)
    signature = base64.b64encode(key.sign(link.message())).decode() if key else None
    await conn.execute(APPEND_SQL, camera_id, link.seq, start, end, object_key, sha256_hex,
                       payload_sha256, frames, mask_version, link.prev, link.link(), signature,
                       key.fingerprint() if key else None)
    return link


def check_link(link: Link, expected: str, signature: str | None, public_pem: bytes | None) -> str:
    """'' when the link's text hashes to `expected` and the signature holds; else the reason."""
    if link.link() != expected:
        return "its link does not match its fields (changed after recording)"
    if signature is None or public_pem is None:
        return "not signed by the recorder (no recording key at the time)"
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return "its signature is not base64"
    if not signature_holds(public_pem, link.message(), raw):
        return "the recorder's signature does not hold (changed, or another key)"
    return ""
