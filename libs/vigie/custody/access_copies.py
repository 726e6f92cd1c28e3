"""The redacted copy that answers a right-of-access request (R22; docs/right-of-access.md).

The operator marks where the requester is (the keep track: a box at chosen times, seconds from
the copy's start, interpolated between them) on pictures of the request's hold; `request_copy`
checks and records it. A box wider than WIDE_KEEP_SHARE of the picture would release third parties
unblurred: such a copy waits (`pending`), before it is even built, for the approval of that box by
someone other than who asked (`approve_wide`). Four eyes (issue 34).

The retention service, which holds the export key and reads the evidence
bucket, builds queued copies one at a time (`build_next_copy`): the held segments of that camera
and window, each checked against its SHA-256, decoded, blurred everywhere but the requester's box
(and the detectors' boxes inside it), encoded H.264 MP4, sealed as a package with a French note to
the person and a manifest naming the recordings it was made from. The copy is a **preview** until
someone other than who asked for it approves it (`approve`, journaled) — only then can it be
downloaded — or rejects it.
Copies are kept 30 days, then erased by the retention service (`erase_expired_copies`); a rejected
or failed one at once, a preview never approved once its request is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from vigie.custody import scratch as scratch_dirs
from vigie.custody.exports.package import ITEMS_SQL, Piece
from vigie.custody.exports.seal import seal, zip_folder
from vigie.custody.jobs import JobRefused, JobTable, Progress, run_one
from vigie.custody.redaction.blur import BLOCK_FRACTION
from vigie.custody.redaction.keep import KeepError, KeepTrack
from vigie.custody.redaction.redact import Piece as Segment
from vigie.custody.redaction.redact import RedactError, redact_segments
from vigie.plumbing.log import get_logger
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records import legal_time
from vigie.records.announced_keys import public_keys
from vigie.records.audit_register import Entry, record
from vigie.security.signing import SigningKey

log = get_logger(__name__)

FORMAT = "vigie-access-copy/1"
MAX_COPY = timedelta(minutes=30)  # per copy: a request names a place and a time
KEPT = timedelta(days=30)  # a copy made for an answer, then erased (docs/right-of-access.md)
# A kept box larger than this share of the picture needs a second person's approval before the
# copy is built (docs/right-of-access.md): a person fills a third of a picture only up close.
WIDE_KEEP_SHARE = 1 / 3
SCRATCH = "vigie-copy-"

LIST_SQL = """
SELECT id, request_id, commune, camera, period_start, period_end, keep, assist, created_by,
       created_at, state, percent, finished_at, error, package, size_bytes, manifest_sha256,
       frames, block_px, proposed, approved_by, approved_at, rejected_by, rejected_reason,
       expires_at, erased_at, keep_share, wide_approved_by, wide_approved_at
FROM access_copies WHERE request_id = $1 AND ($2::bigint IS NULL OR id = $2) ORDER BY id
"""
ERASABLE_SQL = """
SELECT c.id, c.request_id, c.commune, c.camera, c.object_key, c.video_key, c.state,
       c.period_start, c.period_end
FROM access_copies c JOIN access_requests r ON r.id = c.request_id
WHERE c.erased_at IS NULL AND (c.object_key IS NOT NULL OR c.video_key IS NOT NULL)
  AND (c.state IN ('rejected', 'failed') OR c.expires_at < now()
       OR (c.state = 'preview' AND r.state = 'closed'))
ORDER BY c.id LIMIT $1
FOR UPDATE OF c SKIP LOCKED
"""


class CopyError(Refusal):
    """A refused copy, with the reason a person can act on."""

    domain = "copy"


class CopyConflict(CopyError):
    """The record's state does not allow it now (HTTP 409)."""

    kind = "conflict"


@dataclass(frozen=True)
class CopyAsked:
    request_id: int
    camera: str
    start: datetime
    end: datetime
    keep: KeepTrack
    assist: bool
    by: str


def keep_json(track: KeepTrack) -> list[dict[str, Any]]:
    return [{"t": k.t, "box": list(k.box)} for k in track.keys]


async def held_request(conn: asyncpg.Connection | asyncpg.Pool, request_id: int,
                       communes: tuple[str, ...]) -> asyncpg.Record:
    """The request (in the caller's communes) and its hold's period; LookupError otherwise."""
    row = await conn.fetchrow(
        "SELECT r.*, h.period_start AS held_start, h.period_end AS held_end, h.state AS hold_state, "
        "c.time_zone FROM access_requests r LEFT JOIN holds h ON h.id = r.hold_id "
        "JOIN communes c ON c.slug = r.commune WHERE r.id = $1",
        request_id)
    if row is None or row["commune"] not in communes:
        raise NotFound(f"no access request {request_id} in your communes",
                       code="access_request.not_found", id=request_id)
    return row


async def held_pieces(pool: asyncpg.Pool, request: asyncpg.Record, camera: str, start: datetime,
                      end: datetime) -> list[asyncpg.Record]:
    """The hold's evidence copies of one camera that overlap [start, end), in time order."""
    if request["hold_id"] is None:
        return []
    rows = await pool.fetch(ITEMS_SQL, [request["hold_id"]], start, end)
    return [r for r in rows if r["slug"] == camera]


async def evidence_bytes(store: ObjectStore, buckets: Buckets, row: asyncpg.Record) -> bytes:
    """An evidence copy, checked against the hash taken when it was held."""
    blob = await store.get(buckets.holds, row["evidence_key"], row["version_id"])
    if hashlib.sha256(blob).hexdigest() != row["sha256"]:
        raise CopyConflict(f"the evidence copy {row['evidence_key']} does not match its SHA-256: "
                        "it was altered after the hold; nothing made from it",
                        code="evidence.altered", key=row["evidence_key"])
    return blob


def check_window(request: asyncpg.Record, camera: str, start: datetime, end: datetime) -> None:
    """The copy's camera and window lie within what the request asked for and holds."""
    if request["state"] == "closed":
        raise CopyConflict("the request is closed", code="access_request.closed")
    if camera not in request["cameras"]:
        raise CopyError(f"the request does not name the camera {camera!r}",
                        code="copy.camera_not_requested", camera=camera)
    if start.tzinfo is None or end.tzinfo is None:
        raise CopyError("times must carry their offset (2026-11-29T14:00:00+01:00)",
                        code="period.no_offset")
    if end <= start:
        raise CopyError("the period ends before it starts", code="period.ends_before_start")
    if end - start > MAX_COPY:
        raise CopyError(f"a copy covers {MAX_COPY.total_seconds() / 60:.0f} minutes at most: "
                        "make one copy per moment the person appears",
                        code="copy.too_long", minutes=round(MAX_COPY.total_seconds() / 60))
    if request["hold_id"] is None or request["hold_state"] != "active":
        raise CopyError("nothing of this request is held: the period had been erased when it "
                        "was received (the deletion-proof extract says when)",
                        code="copy.nothing_held")
    if start < request["held_start"] or end > request["held_end"]:
        raise CopyError(f"the copy must lie within the held period, from "
                        f"{_local(request['held_start'], request['time_zone'])} to "
                        f"{_local(request['held_end'], request['time_zone'])}",
                        code="copy.outside_held_period", start=request["held_start"].isoformat(),
                        end=request["held_end"].isoformat())


async def request_copy(pool: asyncpg.Pool, asked: CopyAsked, communes: tuple[str, ...], *,
                       picture: tuple[int, int] | None) -> int:
    """Checked (CopyError with the reason), recorded, journaled; built in the background.
    `picture` is the held recording's size, when known: the boxes must fit in it."""
    duration = (asked.end - asked.start).total_seconds()
    last = asked.keep.keys[-1].t
    if last > duration:
        raise CopyError(f"the requester's box is placed at t={last:g} s, after the copy's end "
                        f"({duration:g} s)", code="copy.box_after_end", at=last, duration=duration)
    if picture is None:
        # Without the picture's size the box's share is unknown: treated as wide (fail closed).
        share = 1.0
    else:
        try:
            asked.keep.check_inside(*picture)
        except KeepError as exc:
            raise CopyError.carrying(exc) from None
        share = asked.keep.largest_share(*picture)
    wide = share > WIDE_KEEP_SHARE
    async with pool.acquire() as conn, conn.transaction():
        request = await held_request(conn, asked.request_id, communes)
        await conn.execute("SELECT 1 FROM access_requests WHERE id = $1 FOR UPDATE",
                           asked.request_id)
        check_window(request, asked.camera, asked.start, asked.end)
        copy_id = int(await conn.fetchval(
            "INSERT INTO access_copies (request_id, commune, camera, period_start, period_end, "
            "keep, assist, created_by, keep_share, state) VALUES ($1, $2, $3, $4, $5, $6::jsonb, "
            "$7, $8, $9, $10) RETURNING id", asked.request_id, request["commune"], asked.camera,
            asked.start, asked.end, json.dumps(keep_json(asked.keep)), asked.assist, asked.by,
            share, "pending" if wide else "queued"))
        await record(conn, Entry(
            actor=asked.by, action="access_request.copy_requested", commune=request["commune"],
            cameras=[f"{request['commune']}/{asked.camera}"], period_start=asked.start,
            period_end=asked.end,
            details={"request": asked.request_id, "copy": copy_id, "boxes": len(asked.keep.keys),
                     "assist": asked.assist, "keep_share": round(share, 3),
                     "pending_second_approval": wide}))
    return copy_id


async def approve_wide(pool: asyncpg.Pool, request_id: int, copy_id: int, *, by: str) -> None:
    """A second person approves a kept box wider than WIDE_KEEP_SHARE: the copy is built."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _copy_row(conn, request_id, copy_id)
        if row["state"] != "pending":
            raise CopyConflict(f"the copy is {row['state']}: only a pending copy's box is approved",
                               code="copy.not_pending", state=row["state"])
        _four_eyes(row, by)
        await conn.execute("UPDATE access_copies SET state = 'queued', wide_approved_by = $2, "
                           "wide_approved_at = now() WHERE id = $1", copy_id, by)
        await record(conn, Entry(
            actor=by, action="access_request.copy_box_approved", commune=row["commune"],
            cameras=[f"{row['commune']}/{row['camera']}"], period_start=row["period_start"],
            period_end=row["period_end"],
            details={"request": request_id, "copy": copy_id, "asked_by": row["created_by"],
                     "keep_share": round(float(row["keep_share"] or 1.0), 3)}))


async def _copy_row(conn: asyncpg.Connection, request_id: int, copy_id: int) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM access_copies WHERE id = $1 AND request_id = $2 "
                              "FOR UPDATE", copy_id, request_id)
    if row is None:
        raise NotFound(f"no copy {copy_id} for request {request_id}",
                       code="copy.not_found", id=copy_id)
    return row


def _four_eyes(row: asyncpg.Record, by: str) -> None:
    if by == row["created_by"]:
        raise CopyConflict(f"the copy was asked for by {row['created_by']}: someone else approves "
                        "it (four eyes)", code="copy.four_eyes")


async def list_copies(pool: asyncpg.Pool, request_id: int,
                      copy_id: int | None = None) -> list[dict[str, Any]]:
    rows = await pool.fetch(LIST_SQL, request_id, copy_id)
    return [{**dict(r), "keep": json.loads(r["keep"])} for r in rows]


async def approve(pool: asyncpg.Pool, request_id: int, copy_id: int, *, by: str) -> None:
    """Someone other than who asked watched the preview: the copy can be downloaded and sent
    (journaled)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _copy_row(conn, request_id, copy_id)
        if row["state"] != "preview" or row["erased_at"] is not None:
            raise CopyConflict(f"the copy is {row['state']}: only a preview can be approved",
                               code="copy.not_previewed", state=row["state"])
        _four_eyes(row, by)
        await conn.execute("UPDATE access_copies SET state = 'approved', approved_by = $2, "
                           "approved_at = now() WHERE id = $1", copy_id, by)
        await record(conn, Entry(
            actor=by, action="access_request.copy_approved", commune=row["commune"],
            cameras=[f"{row['commune']}/{row['camera']}"], period_start=row["period_start"],
            period_end=row["period_end"],
            details={"request": request_id, "copy": copy_id, "package": row["package"],
                     "manifest_sha256": row["manifest_sha256"]}))


async def reject(pool: asyncpg.Pool, request_id: int, copy_id: int, *, by: str,
                 reason: str) -> None:
    """Not fit to send (a box missed the person, a third party recognisable): never released,
    erased by the next retention sweep; the operator makes another."""
    if not reason.strip():
        raise CopyError("say what is wrong with the copy", code="copy.rejection_reason_required")
    async with pool.acquire() as conn, conn.transaction():
        row = await _copy_row(conn, request_id, copy_id)
        if row["state"] not in ("pending", "queued", "preview"):
            raise CopyConflict(f"the copy is {row['state']}: it cannot be rejected",
                               code="copy.not_rejectable", state=row["state"])
        await conn.execute("UPDATE access_copies SET state = 'rejected', rejected_by = $2, "
                           "rejected_reason = $3, finished_at = coalesce(finished_at, now()) "
                           "WHERE id = $1", copy_id, by, reason.strip())
        await record(conn, Entry(
            actor=by, action="access_request.copy_rejected", commune=row["commune"],
            cameras=[f"{row['commune']}/{row['camera']}"], reason=reason.strip(),
            details={"request": request_id, "copy": copy_id}))


COPIES = JobTable("access_copies")


async def build_next_copy(pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets,
                          key: SigningKey) -> int | None:
    """Build the oldest queued copy, if any (vigie.custody.jobs); returns its id."""
    await asyncio.to_thread(scratch_dirs.sweep, SCRATCH)

    async def build(row: asyncpg.Record, progress: Progress) -> None:
        scratch = await asyncio.to_thread(scratch_dirs.make, SCRATCH)
        try:
            done = await _build(pool, store, buckets, key, row, scratch, progress)
        except (CopyError, RedactError) as exc:
            raise JobRefused(str(exc)) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        await pool.execute(
            "UPDATE access_copies SET state = 'preview', percent = 100, finished_at = now(), "
            "package = $2, object_key = $3, video_key = $4, size_bytes = $5, "
            "manifest_sha256 = $6, frames = $7, block_px = $8, proposed = $9, "
            "expires_at = now() + $10::interval WHERE id = $1 AND state = 'building'",
            row["id"], *done, KEPT)
        log.info("access_copy_ready", commune=row["commune"], camera=row["camera"],
                 copy=row["id"])

    return await run_one(pool, COPIES, build)


async def _build(pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets, key: SigningKey,
                 row: asyncpg.Record, scratch: Path, progress: Progress) -> tuple[Any, ...]:
    request = await held_request(pool, row["request_id"], (row["commune"],))
    start, end = row["period_start"], row["period_end"]
    items = await held_pieces(pool, request, row["camera"], start, end)
    if not items:
        raise CopyError("the hold has no recording of this camera in that window (erased "
                        "before the request, or never recorded)", code="copy.nothing_recorded")
    segments: list[Segment] = []
    for n, item in enumerate(items):
        path = scratch / f"{n:05d}.mp4"
        await asyncio.to_thread(path.write_bytes, await evidence_bytes(store, buckets, item))
        segments.append(Segment(path, (item["segment_start"] - start).total_seconds()))
    keep = KeepTrack.parse(json.dumps(row["keep"] if isinstance(row["keep"], list)
                                      else json.loads(row["keep"])))
    package = (f"acces-DA{row['request_id']}-{row['id']}-{row['commune']}-{row['camera']}-"
               f"{secrets.token_hex(3)}")
    work = scratch / package
    work.mkdir()
    video = f"copie-{row['camera']}.mp4"
    result = await asyncio.to_thread(
        redact_segments, keep, segments, (end - start).total_seconds(), work / video,
        assist=row["assist"], progress=progress.set)
    pieces = [Piece.of(i) for i in items]
    fingerprints = {p.provenance["key"] for p in pieces if p.provenance and p.provenance["key"]}
    commune_name, time_zone = await pool.fetchrow(
        "SELECT name, time_zone FROM communes WHERE slug = $1", row["commune"]) or (None, None)
    manifest = {
        "format": FORMAT, "package": package, "created_at": _iso(datetime.now(UTC)),
        "created_by": row["created_by"],
        "request": {"id": row["request_id"], "reference": f"DA-{row['request_id']}",
                    "commune": row["commune"], "hold": request["hold_id"]},
        "camera": {"id": f"{row['commune']}/{row['camera']}", "name": items[0]["name"],
                   "location": items[0]["location"]},
        "period": {"start": _iso(start), "end": _iso(end)},
        "time_zone": time_zone or legal_time.DEFAULT_TIME_ZONE,  # the commune's legal time
        "video": {"path": video, "codec": "H.264", "width": result.width,
                  "height": result.height, "frames": result.frames},
        # The recordings it was made from: each evidence copy's hash, and the recorder's signed
        # link where there is one (the copy itself is re-encoded: its pictures are new).
        "source": [{"source_key": p.source_key, "sha256": p.sha256, "start": _iso(p.start),
                    "end": _iso(p.end), "mask_version": p.mask_version,
                    "provenance": p.provenance} for p in pieces],
        "recording_keys": await public_keys(pool, fingerprints),
        "redaction": {"method": "inverse", "block_px": result.block,
                      "block_rule": f"max(8, short side / {BLOCK_FRACTION})",
                      "irreversible": True, "keep": keep_json(keep),
                      "detectors": bool(row["assist"]), "detector_boxes_blurred": result.proposed,
                      "frames_with_requester_box": result.kept_frames},
        "signing_key": {"algorithm": "Ed25519", "fingerprint": key.fingerprint(),
                        "file": "cle-publique.pem"},
    }
    note = letter(manifest, commune_name=commune_name or row["commune"])
    await asyncio.to_thread(_seal, work, manifest, note, key)
    body = await asyncio.to_thread((work / "manifest.json").read_bytes)
    archive = scratch / f"{package}.zip"
    await asyncio.to_thread(zip_folder, work, archive, package)
    # Named after the copy, not the package: a build taken again after a crash overwrites
    # what the first one uploaded rather than leaving it behind.
    object_key, video_key = (f"{row['commune']}/acces/copie-{row['id']}.zip",
                             f"{row['commune']}/acces/copie-{row['id']}.mp4")
    await store.put_file(buckets.exports, video_key, str(work / video), content_type="video/mp4")
    await store.put_file(buckets.exports, object_key, str(archive),
                         content_type="application/zip")
    size = (await asyncio.to_thread(archive.stat)).st_size
    await record(pool, Entry(
        actor=row["created_by"], action="access_request.copy_made", commune=row["commune"],
        cameras=[f"{row['commune']}/{row['camera']}"], period_start=start, period_end=end,
        details={"request": row["request_id"], "copy": row["id"], "package": package,
                 "manifest_sha256": hashlib.sha256(body).hexdigest(),
                 "sources": len(pieces), "frames": result.frames,
                 "key_fingerprint": key.fingerprint()}))
    return (package, object_key, video_key, size, hashlib.sha256(body).hexdigest(),
            result.frames, result.block, result.proposed)


def _seal(work: Path, manifest: dict[str, Any], note: str, key: SigningKey) -> None:
    (work / "LETTRE.txt").write_text(note, encoding="utf-8")
    seal(work, manifest, key)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _local(moment: datetime, time_zone: str) -> str:
    return f"{legal_time.local(moment, time_zone):%d/%m/%Y %H:%M:%S}"


def _in_legal_time(iso: str, time_zone: str) -> str:
    return f"{legal_time.local(datetime.fromisoformat(iso), time_zone):%d/%m/%Y à %H:%M:%S}"


def letter(manifest: dict[str, Any], *, commune_name: str) -> str:
    """The note to the person, in French: what the copy is, why others are blurred, how to check
    it was not altered, and where to turn if not satisfied."""
    camera, period = manifest["camera"], manifest["period"]
    zone = manifest.get("time_zone") or legal_time.DEFAULT_TIME_ZONE
    place = f" ({camera['location']})" if camera["location"] else ""
    return f"""Commune de {commune_name} — réponse à votre demande d'accès n° {manifest['request']['id']}

Vous avez demandé à accéder aux images de vidéoprotection vous concernant (article 15 du
règlement général sur la protection des données ; article L253-5 du code de la sécurité
intérieure). Ce dossier contient la copie de l'enregistrement de la caméra « {camera['name']} »{place},
du {_in_legal_time(period['start'], zone)} au {_in_legal_time(period['end'], zone)}
({legal_time.label(zone)}).

Pour protéger les droits des autres personnes filmées, tout ce qui dans l'image ne vous concerne
pas a été flouté de façon irréversible : seule la zone où vous apparaissez est restée nette, et
les visages ou véhicules d'autres personnes qui s'y trouvaient ont aussi été floutés. Les parties
privées (fenêtres, jardins, entrées d'immeubles) restent masquées, comme dans l'enregistrement.

Fichiers :
  - {manifest['video']['path']} : la vidéo (MP4, H.264), lisible par VLC ou un navigateur ;
  - manifest.json : la description de la copie, l'empreinte (SHA-256) des enregistrements dont elle
    est tirée et de chaque fichier ;
  - manifest.sig et cle-publique.pem : la signature de la commune (Ed25519) ;
  - SHA256SUMS et SHA256SUMS.sig : les empreintes, signées, pour vérifier qu'aucun fichier n'a
    été modifié ni ajouté (la copie ne contient que les fichiers listés ici) :
        openssl pkeyutl -verify -pubin -inkey cle-publique.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
        sha256sum -c SHA256SUMS
        openssl pkeyutl -verify -pubin -inkey cle-publique.pem -rawin -in manifest.json -sigfile manifest.sig

Cette copie vous est personnelle : elle peut montrer, même floutées, d'autres personnes ; ne la
diffusez pas. La commune la conserve {KEPT.days} jours, puis l'efface.

Si vous estimez que votre demande n'a pas été satisfaite, vous pouvez saisir la Commission
nationale de l'informatique et des libertés (CNIL, www.cnil.fr) ou la commission départementale
de vidéoprotection.
"""


async def erase_expired_copies(pool: asyncpg.Pool, store: ObjectStore, buckets: Buckets, *,
                               batch: int = 100) -> int:
    """Copies past their 30 days, rejected or failed ones, and previews of closed requests:
    objects deleted, then the row marked, journaled (run by the retention service)."""
    erased = 0
    async with pool.acquire() as conn, conn.transaction():
        for row in await conn.fetch(ERASABLE_SQL, batch):
            keys = [k for k in (row["object_key"], row["video_key"]) if k]
            if await store.delete_many(buckets.exports, keys):
                continue  # still there: the next sweep tries again
            await conn.execute("UPDATE access_copies SET erased_at = now() WHERE id = $1",
                               row["id"])
            await record(conn, Entry(
                actor="retention", action="access_request.copy_erased", commune=row["commune"],
                cameras=[f"{row['commune']}/{row['camera']}"], period_start=row["period_start"],
                period_end=row["period_end"],
                reason="expired" if row["state"] == "approved" else row["state"],
                details={"request": row["request_id"], "copy": row["id"]}))
            erased += 1
    return erased
