"""Build an evidence package from a hold's evidence copies (docs/exports.md).

Per camera, the stored masked H.264 joined without re-encoding (masks stay applied: invariant 1),
one MP4 per stretch recorded without a gap, with a WebVTT track giving the capture date and time
(Paris) each second and the camera; what the period asks for and storage no longer holds is listed,
never dropped in silence. Every copy's SHA-256 is checked before use. The folder is written under a
temporary name and renamed when complete: nothing half-written is ever taken for a package.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import asyncpg
import av

from vigie.custody.exports.onvif import MOVFLAGS, ExportInfo, OnvifWriter, Source, signature_layout
from vigie.custody.exports.record_pdf import write_record
from vigie.custody.exports.seal import seal, sha256_file, zip_folder
from vigie.custody.exports.texts import lisez_moi, player_html, time_cues
from vigie.custody.provenance import iso as provenance_iso
from vigie.plumbing.refusals import Refusal
from vigie.plumbing.storage.objects import ObjectStore
from vigie.records.announced_keys import public_keys
from vigie.records.legal_time import DEFAULT_TIME_ZONE
from vigie.security.signing import SigningKey

FORMAT = "vigie-export/1"
JOIN_TOLERANCE_S = 2.0  # segments closer than this are one stretch (the recorder's gap rule)
TIME_BASE = Fraction(1, 90000)
Progress = Callable[[int], Awaitable[None]]


class ExportError(Refusal):
    """A refused export, with the reason a person can act on."""

    domain = "export"


class ExportConflict(ExportError):
    """The record's state does not allow it now (HTTP 409)."""

    kind = "conflict"


@dataclass(frozen=True)
class Requisition:
    reference: str  # PV or procedure number
    officer: str  # OPJ name and service
    recipient: str
    medium: str  # the medium or the transfer's id
    reason: str
    created_by: str


@dataclass
class Piece:
    evidence_key: str
    source_key: str
    start: datetime
    end: datetime
    sha256: str
    mask_version: int | None
    provenance: dict[str, Any] | None = None  # the recorder's signed link (vigie.custody.provenance)
    version_id: str | None = None  # the version put under legal hold (None: the current one)

    @classmethod
    def of(cls, row: asyncpg.Record) -> Piece:
        link = None
        if row["link"] is not None:
            link = {"seq": row["seq"], "start": provenance_iso(row["chain_start"]),
                    "end": provenance_iso(row["chain_end"]), "sha256": row["chain_sha256"],
                    "payload_sha256": row["payload_sha256"], "frames": row["frames"],
                    "mask_version": row["mask_version"], "prev": row["prev_link"],
                    "link": row["link"], "signature": row["signature"],
                    "key": row["key_fingerprint"]}
        return cls(row["evidence_key"], row["source_key"], row["segment_start"],
                   row["segment_end"], row["sha256"], row["mask_version"], link,
                   row["version_id"])


@dataclass
class CameraPart:
    pieces: list[Piece] = field(default_factory=list)

    @property
    def start(self) -> datetime:
        return self.pieces[0].start

    @property
    def end(self) -> datetime:
        return self.pieces[-1].end


ITEMS_SQL = """
SELECT h.commune, c.slug, c.name, c.location, c.latitude, c.longitude, c.sensor_index,
       co.time_zone,
       i.evidence_key, i.version_id, i.source_key, i.segment_start, i.segment_end, i.sha256,
       coalesce(s.mask_version, sc.mask_version) AS mask_version,
       sc.seq, sc.payload_sha256, sc.frames, sc.prev_link, sc.link, sc.signature,
       sc.key_fingerprint, sc.sha256 AS chain_sha256, sc.start_time AS chain_start,
       sc.end_time AS chain_end
FROM hold_items i JOIN holds h ON h.id = i.hold_id JOIN cameras c ON c.id = i.camera_id
JOIN communes co ON co.slug = h.commune
LEFT JOIN segments s ON s.object_key = i.source_key AND s.camera_id = i.camera_id
LEFT JOIN segment_chain sc ON sc.object_key = i.source_key AND sc.camera_id = i.camera_id
WHERE i.hold_id = ANY($1::bigint[]) AND i.erased_at IS NULL
  AND i.segment_start < $3 AND i.segment_end > $2
ORDER BY h.commune, c.slug, i.segment_start
"""


def stretches(pieces: list[Piece]) -> list[CameraPart]:
    parts: list[CameraPart] = []
    for piece in pieces:
        if parts and (piece.start - parts[-1].end).total_seconds() <= JOIN_TOLERANCE_S:
            parts[-1].pieces.append(piece)
        else:
            parts.append(CameraPart([piece]))
    return parts


def join_segments(segments: list[tuple[datetime, bytes | Path]], out_path: Path,
                  onvif: tuple[ExportInfo, SigningKey] | None = None) -> int:
    """Remux fragmented-MP4 segments (bytes, or files read one at a time) into one MP4 without
    re-encoding; returns the packets written. Given `onvif`, the MP4 is an ONVIF Export File
    Format file (fragmented, its signed meta box last): still an MP4 that browsers and players
    read, so a package holds each video once. Each segment's timestamps start at 0: they are
    shifted by the segment's start."""
    first_start = segments[0][0]
    packets = 0
    with contextlib.ExitStack() as stack:
        writer = None
        if onvif is None:
            out = stack.enter_context(av.open(str(out_path), "w", format="mp4",
                                              options={"movflags": "+faststart"}))
        else:
            writer = OnvifWriter(stack.enter_context(out_path.open("wb")), onvif[0])
            out = av.open(writer, "w", format="mp4", options={"movflags": MOVFLAGS})
        stream: Any = None
        last_dts = -1
        for start, data in segments:
            offset = round((start - first_start).total_seconds() * 90_000)
            source_file = str(data) if isinstance(data, Path) else io.BytesIO(data)
            with av.open(source_file, "r", format="mp4") as src:
                source = src.streams.video[0]
                if stream is None:  # the stored stream's own parameters, copied as they are
                    stream = out.add_stream_from_template(source)
                    stream.time_base = TIME_BASE
                for packet in src.demux(source):
                    if packet.dts is None or packet.size == 0:
                        continue
                    dts = int(packet.dts * packet.time_base / TIME_BASE) + offset
                    shown = packet.pts if packet.pts is not None else packet.dts
                    pts = int(shown * packet.time_base / TIME_BASE) + offset
                    dts = max(dts, last_dts + 1)
                    packet.stream = stream
                    packet.time_base = TIME_BASE
                    packet.dts, packet.pts = dts, max(pts, dts)
                    out.mux(packet)
                    last_dts = dts
                    packets += 1
        if writer is not None and onvif is not None:
            out.close()  # the fragments flushed before the signed meta box goes last
            writer.finish(onvif[1])
    return packets


def webvtt(start: datetime, end: datetime, *, camera: str, name: str, location: str,
           time_zone: str = DEFAULT_TIME_ZONE) -> str:
    """A cue per second: the capture date and time in the commune's legal time (R36), the
    camera's name and place."""
    lines = ["WEBVTT", ""]
    for second, text in time_cues(start, end, camera=camera, name=name, location=location,
                                  time_zone=time_zone):
        lines += [f"{_vtt_time(second)} --> {_vtt_time(second + 1)}", text, ""]
    return "\n".join(lines)


def _vtt_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def build_package(pool: asyncpg.Pool, store: ObjectStore, *, holds: str,
                        hold_ids: list[int],
                        requisition: Requisition, periods: dict[str, tuple[datetime, datetime]],
                        missing: dict[str, list[dict[str, str]]], key: SigningKey,
                        out_dir: Path, export_id: str, progress: Progress | None = None) -> Path:
    """The package folder `out_dir/<export_id>` and its ZIP beside it; returns the folder.
    `progress` hears the share of the evidence copies written into videos (0–100)."""
    # A reused hold may cover more than asked: only what overlaps the periods goes in.
    rows = await pool.fetch(ITEMS_SQL, hold_ids, min(p[0] for p in periods.values()),
                            max(p[1] for p in periods.values()))
    final = out_dir / export_id
    if final.exists():
        raise ExportError(f"{final} exists already", code="export.exists", id=export_id)
    work = out_dir / f".{export_id}.partial"
    shutil.rmtree(work, ignore_errors=True)
    (work / "videos").mkdir(parents=True)
    try:
        cameras = await _write_videos(store, holds, rows, work, periods, missing, progress,
                                      onvif=(key, requisition.created_by))
        manifest = _manifest(export_id, hold_ids, requisition, cameras, key)
        fingerprints = {p["provenance"]["key"] for c in cameras for part in c["parts"]
                        for p in part["segments"] if p.get("provenance") and
                        p["provenance"]["key"]}
        manifest["recording_keys"] = await public_keys(pool, fingerprints)
        # Hashing and zipping gigabytes: off the event loop.
        await asyncio.to_thread(_finish, work, manifest, key, out_dir, export_id)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        (out_dir / f".{export_id}.zip.partial").unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work.parent / f"{work.name}.pieces", ignore_errors=True)
    return final


def _finish(work: Path, manifest: dict[str, Any], key: SigningKey, out_dir: Path,
            export_id: str) -> None:
    """The texts, the manifest listing every file, its signature, SHA256SUMS, the ZIP; then the
    renames that make the package visible under its name."""
    for name, text in (("LISEZMOI.txt", lisez_moi(manifest)),
                       ("player.html", player_html(manifest))):
        (work / name).write_text(text, encoding="utf-8")
    write_record(work, manifest, {p.relative_to(work).as_posix(): sha256_file(p)
                                  for p in sorted((work / "videos").glob("*.mp4"))})
    seal(work, manifest, key)
    zip_folder(work, out_dir / f".{export_id}.zip.partial", export_id)
    work.rename(out_dir / export_id)
    (out_dir / f".{export_id}.zip.partial").rename(out_dir / f"{export_id}.zip")


async def _write_videos(store: ObjectStore, holds: str, rows: list[asyncpg.Record], work: Path,
                        periods: dict[str, tuple[datetime, datetime]],
                        missing: dict[str, list[dict[str, str]]],
                        progress: Progress | None, *,
                        onvif: tuple[SigningKey, str]) -> list[dict[str, Any]]:
    done, total = 0, max(1, len(rows))
    downloads = work.parent / f"{work.name}.pieces"  # outside the package, removed after
    downloads.mkdir()
    by_camera: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_camera.setdefault(f"{row['commune']}/{row['slug']}", []).append(row)
    cameras: list[dict[str, Any]] = []
    for camera_id, (start, end) in sorted(periods.items()):
        camera_rows = by_camera.get(camera_id, [])
        commune, slug = camera_id.split("/", 1)
        name = camera_rows[0]["name"] if camera_rows else slug
        location = camera_rows[0]["location"] if camera_rows else ""
        time_zone = camera_rows[0]["time_zone"] if camera_rows else DEFAULT_TIME_ZONE
        pieces = [Piece.of(r) for r in camera_rows]
        parts = []
        for n, part in enumerate(stretches(pieces), start=1):
            data: list[tuple[datetime, bytes | Path]] = []
            for piece in part.pieces:
                # One segment in memory at a time: an hour of 1080p is gigabytes.
                blob = await store.get(holds, piece.evidence_key, piece.version_id)
                if hashlib.sha256(blob).hexdigest() != piece.sha256:
                    raise ExportError(f"the evidence copy {piece.evidence_key} does not match its "
                                      "SHA-256: it was altered after the hold; nothing exported",
                                      code="evidence.altered", key=piece.evidence_key)
                scratch = downloads / f"{len(data):06d}.mp4"
                await asyncio.to_thread(scratch.write_bytes, blob)
                data.append((piece.start, scratch))
                done += 1
                if progress is not None:
                    await progress(done * 100 // total)
            base = f"{commune}-{slug}-{n}"
            first = camera_rows[0]
            info = ExportInfo(
                unit_name="Vigie", unit_url="", operator=onvif[1],
                exported_at=datetime.now(UTC).replace(microsecond=0), start=part.start,
                sources=(Source(1, name, f"vigie:{camera_id}",
                                "" if first["sensor_index"] is None
                                else str(first["sensor_index"])),),
                place=location, latitude=first["latitude"], longitude=first["longitude"])
            await asyncio.to_thread(join_segments, data, work / f"videos/{base}.mp4",
                                    (info, onvif[0]))
            await asyncio.to_thread(shutil.rmtree, downloads)
            downloads.mkdir()
            (work / f"videos/{base}.vtt").write_text(
                webvtt(part.start, part.end, camera=camera_id, name=name, location=location,
                       time_zone=time_zone),
                encoding="utf-8")
            parts.append({"video": f"videos/{base}.mp4", "captions": f"videos/{base}.vtt",
                          "onvif": f"videos/{base}.mp4",  # the same file: an ONVIF export
                          "onvif_signature": signature_layout(work / f"videos/{base}.mp4"),
                          "start": _iso(part.start), "end": _iso(part.end),
                          "segments": [{"source_key": p.source_key, "sha256": p.sha256,
                                        "start": _iso(p.start), "end": _iso(p.end),
                                        "mask_version": p.mask_version,
                                        "provenance": p.provenance} for p in part.pieces]})
        cameras.append({
            "camera": camera_id, "name": name, "location": location, "time_zone": time_zone,
            "period": {"start": _iso(start), "end": _iso(end)},
            "mask_versions": sorted({p.mask_version for p in pieces if p.mask_version is not None}),
            "parts": parts, "gaps": missing.get(camera_id, [])})
    return cameras


def _manifest(export_id: str, hold_ids: list[int], requisition: Requisition,
              cameras: list[dict[str, Any]], key: SigningKey) -> dict[str, Any]:
    return {
        "format": FORMAT, "export_id": export_id, "created_at": _iso(datetime.now(UTC)),
        "created_by": requisition.created_by, "holds": hold_ids,
        "requisition": {"reference": requisition.reference, "officer": requisition.officer,
                        "reason": requisition.reason},
        "recipient": requisition.recipient, "medium": requisition.medium,
        "signing_key": {"algorithm": "Ed25519", "fingerprint": key.fingerprint(),
                        "file": "cle-publique.pem"},
        "cameras": cameras,
    }
