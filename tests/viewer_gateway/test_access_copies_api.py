"""The redacted copy that answers a right-of-access request (issue 23, R22), over the API with the
retention service's steps taken under its own identities (as_retention): the editor's pictures of the held
recording, the copy asked with the requester's box, built from the hold's evidence copies with the
window's pictures only (the first one is the right one), everything outside the box blurred and
the inside kept, a preview that must be approved before download and before the request can be
answered with it, the package sealed (manifest naming the recordings' hashes, French letter);
rejection and expiry erase it; bad input refused with nothing half-made. Issue 34: approved by
someone other than who asked (four eyes); a box wider than a third of the picture waits for a
second approval before it is built; pictures decided as playback (training, hand-over)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import av
import cv2
import numpy as np
import pytest
from vigie.custody.access_copies import build_next_copy, erase_expired_copies
from vigie.custody.exports.verify import verify_package
from vigie.media.masks import yuv_planes
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records.audit_register import Entry, record
from vigie.security.accounts import create_user
from vigie.security.signing import SigningKey
from vigie.service import Runtime

from tests.viewer_gateway.conftest import PASSWORD, GatewayUnderTest, copy_holds
from tests.viewer_gateway.recordings import record_minute

pytestmark = pytest.mark.integration
KEEP = [0, 40, 96, 56]  # the frame number's region in tests.recorder.frames' pictures
ELSEWHERE = [110, 0, 50, 40]  # a corner with nothing in it


async def _recorded(db: asyncpg.Pool, store: tuple[ObjectStore, Buckets]) -> datetime:
    """30 s of recording that starts off the whole second, as a camera's does."""
    objects, buckets = store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2, milliseconds=630)
    await record_minute(db, objects, buckets.recordings, start_ns=int(start.timestamp() * 1e9),
                        seconds=30)
    return start


async def _request(client: Any, start: datetime, retention: Runtime,
                   seconds: int = 30) -> dict[str, Any]:
    """A request opened, and its hold copied by the retention service (as it would within
    seconds)."""
    made = await client.post("/api/access-requests", json={
        "commune": "palaiseau", "requester": "M. Paul Martin", "contact": "paul@example.org",
        "identity_document": "passeport", "identity_checked_by": "brigadier Morel",
        "cameras": ["gare"], "period_start": start.isoformat(),
        "period_end": (start + timedelta(seconds=seconds)).isoformat()})
    assert made.status_code == 201, made.text
    await copy_holds(retention)
    return dict(made.json())


async def _second_supervisor(gateway: GatewayUnderTest, db: asyncpg.Pool) -> None:
    await create_user(db, username="supervisor-2", full_name="Second", password=PASSWORD,
                      roles=["supervisor"], communes=["palaiseau"], designated_by="le maire",
                      designation_expires=date.today() + timedelta(days=365), agent_number="A-2",
                      trained_on=date.today() - timedelta(days=10))


def _copy(start: datetime, box: list[int], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "camera": "gare", "period_start": (start + timedelta(seconds=5)).isoformat(),
        "period_end": (start + timedelta(seconds=25)).isoformat(),
        "keep": [{"t": 0, "box": box}, {"t": 20, "box": box}], "assist": False}
    body.update(overrides)
    return body


async def _source_lumas(db: asyncpg.Pool, store: tuple[ObjectStore, Buckets]) -> list[np.ndarray]:
    """Every recorded picture's luma, in capture order."""
    objects, buckets = store
    lumas: list[np.ndarray] = []
    for key in await db.fetch("SELECT object_key FROM segments ORDER BY start_time"):
        data = await objects.get(buckets.recordings, key["object_key"])
        with av.open(io.BytesIO(data), format="mp4") as inp:
            lumas += [yuv_planes(f.reformat(format="yuv420p"))[0].copy()
                      for f in inp.decode(video=0)]
    return lumas


def _lumas(video: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(video), format="mp4") as inp:
        return [yuv_planes(f.reformat(format="yuv420p"))[0].copy() for f in inp.decode(video=0)]


def _region(luma: np.ndarray, box: list[int]) -> np.ndarray:
    x, y, w, h = box
    return luma[y:y + h, x:x + w].astype(np.float64)


def _detail(plane: np.ndarray) -> float:
    return float(cv2.Laplacian(plane, cv2.CV_64F).var())


async def _built(retention: Runtime, key: SigningKey) -> int | None:
    """The retention service's copy step, under its own database role and storage identity."""
    return await build_next_copy(retention.require_pool(), retention.require_store(),
                                 retention.buckets, key)


async def test_a_copy_is_made_previewed_approved_downloaded_and_answers_the_request_R22(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    tmp_path: Path, as_retention: Runtime,
) -> None:
    start = await _recorded(db, store)
    source = await _source_lumas(db, store)
    key = SigningKey.generate()
    async with aclosing(await gateway.login("supervisor")) as client:
        request = await _request(client, start, as_retention)
        rid = request["id"]
        # The editor: what is held, a picture at a time (the recording's size), proposals.
        held = (await client.get(f"/api/access-requests/{rid}/held")).json()
        assert [h["camera"] for h in held] == ["gare"]
        assert datetime.fromisoformat(held[0]["start"]) <= start + timedelta(milliseconds=1)
        at = start + timedelta(seconds=12, milliseconds=10)
        picture = await client.get(f"/api/access-requests/{rid}/still",
                                   params={"camera": "gare", "at": at.isoformat()})
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        assert (picture.headers["x-picture-width"], picture.headers["x-picture-height"]) == (
            "160", "120")
        filmed = datetime.fromisoformat(picture.headers["x-picture-time"])
        assert abs((filmed - at).total_seconds()) <= 0.04, "the picture shown at that time"
        proposals = await client.get(f"/api/access-requests/{rid}/proposals",
                                     params={"camera": "gare", "at": at.isoformat()})
        assert proposals.status_code == 200
        assert proposals.json()["faces"] == [], "no face in a picture of digits"
        assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = "
                                 "'access_request.still_viewed'") == 1

        asked = await client.post(f"/api/access-requests/{rid}/copies", json=_copy(start, KEEP))
        assert asked.status_code == 202, asked.text
        copy = asked.json()
        cid = copy["id"]
        assert copy["state"] == "queued" and copy["percent"] == 0
        # Nothing goes out before the operator approved what they watched.
        early = await client.post(f"/api/access-requests/{rid}/answer", json={"kind": "copy"})
        assert early.status_code == 409 and "approved" in early.json()["detail"]
        assert (await client.get(f"/api/access-requests/{rid}/copies/{cid}/download")
                ).status_code == 409

        assert await _built(as_retention, key) == cid
        assert await _built(as_retention, key) is None
        copy = (await client.get(f"/api/access-requests/{rid}/copies/{cid}")).json()
        assert copy["state"] == "preview" and copy["percent"] == 100, copy
        assert copy["frames"] == 500 and copy["block_px"] == 8
        assert (await client.get(f"/api/access-requests/{rid}/copies/{cid}/download")
                ).status_code == 409, "a preview is not released"
        preview = await client.get(f"/api/access-requests/{rid}/copies/{cid}/video")
        assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"
        redacted = _lumas(preview.content)
        # The window's pictures and only them: the first is the one filmed 5 s in (frame 125).
        assert len(redacted) == 500
        for k in (0, 137, 499):
            same = np.abs(_region(redacted[k], KEEP) - _region(source[125 + k], KEEP)).mean()
            other = np.abs(_region(redacted[k], KEEP) - _region(source[125 + k + 3], KEEP)).mean()
            assert same < 4.0 < other, (k, same, other)

        alone = await client.post(f"/api/access-requests/{rid}/copies/{cid}/approve")
        assert alone.status_code == 409 and "four eyes" in alone.text, "who asked cannot approve"
        await _second_supervisor(gateway, db)
        async with aclosing(await gateway.login("supervisor-2")) as second:
            approved = await second.post(f"/api/access-requests/{rid}/copies/{cid}/approve")
            assert approved.status_code == 200 and approved.json()["approved_by"] == "supervisor-2"
            again = await second.post(f"/api/access-requests/{rid}/copies/{cid}/approve")
            assert again.status_code == 409
        package = await client.get(f"/api/access-requests/{rid}/copies/{cid}/download")
        assert package.status_code == 200, package.text
        archive = tmp_path / "copie.zip"
        archive.write_bytes(package.content)
        verdict = verify_package(archive, trusted_fingerprint=key.fingerprint())
        assert verdict.ok, verdict.problems
        assert any("right-of-access copy" in n for n in verdict.notes), verdict.notes
        with zipfile.ZipFile(archive) as z:
            root = copy["package"]
            manifest = json.loads(z.read(f"{root}/manifest.json"))
            letter = z.read(f"{root}/LETTRE.txt").decode()
            video = z.read(f"{root}/copie-gare.mp4")
        assert video == preview.content, "the preview is the video sent"
        held_hashes = {r["sha256"] for r in await db.fetch(
            "SELECT sha256 FROM hold_items WHERE hold_id = $1", request["hold_id"])}
        assert manifest["format"] == "vigie-access-copy/1"
        assert {s["sha256"] for s in manifest["source"]} <= held_hashes
        assert len(manifest["source"]) == 3, "the 10-s segments the window overlaps"
        assert manifest["redaction"]["method"] == "inverse"
        assert manifest["redaction"]["keep"][0]["box"] == KEEP
        assert f"n° {rid}" in letter and "CNIL" in letter and "flouté" in letter
        assert "rtsp" not in json.dumps(manifest).lower()
        assert "-in SHA256SUMS -sigfile SHA256SUMS.sig" in letter
        # A second video slipped into the copy with its SHA256SUMS line is refused (issue 34).
        grown = tmp_path / "copie-grossie.zip"
        grown.write_bytes(package.content)
        with zipfile.ZipFile(grown, "a") as z:
            sums = z.read(f"{root}/SHA256SUMS").decode()
            z.writestr(f"{root}/autre.mp4", b"another picture")
        rewritten = tmp_path / "copie-reecrite.zip"
        with zipfile.ZipFile(grown) as src, zipfile.ZipFile(rewritten, "w") as dst:
            for item in src.infolist():
                data = src.read(item)
                if item.filename == f"{root}/SHA256SUMS":
                    data = (sums + hashlib.sha256(b"another picture").hexdigest()
                            + "  autre.mp4\n").encode()
                dst.writestr(item.filename, data)
        refused = verify_package(rewritten, trusted_fingerprint=key.fingerprint())
        assert any("autre.mp4: a file the signed manifest does not list" in p
                   for p in refused.problems), refused.problems

        answered = await client.post(f"/api/access-requests/{rid}/answer", json={"kind": "copy"})
        assert answered.status_code == 200, answered.text
        actions = [r["action"] for r in await db.fetch(
            "SELECT action FROM audit_log WHERE action LIKE 'access_request.copy%' ORDER BY id")]
        assert actions == ["access_request.copy_requested", "access_request.copy_made",
                           "access_request.copy_previewed", "access_request.copy_approved",
                           "access_request.copy_downloaded"]
        # Closing releases the hold; the approved copy follows its own 30 days.
        assert (await client.post(f"/api/access-requests/{rid}/close")).status_code == 200
        objects, buckets = store
        assert await erase_expired_copies(db, objects, buckets) == 0
        await db.execute("UPDATE access_copies SET expires_at = now() - interval '1 s'")
        assert await erase_expired_copies(db, objects, buckets) == 1
        gone = await client.get(f"/api/access-requests/{rid}/copies/{cid}/download")
        assert gone.status_code == 410
        assert await objects.list_objects(buckets.exports, prefix="palaiseau/acces/") == []


async def test_outside_the_kept_box_the_detail_is_gone_and_a_rejected_copy_is_erased_R22(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    objects, buckets = store
    start = await _recorded(db, store)
    source = await _source_lumas(db, store)
    async with aclosing(await gateway.login("supervisor")) as client:
        rid = (await _request(client, start, as_retention))["id"]
        cid = (await client.post(f"/api/access-requests/{rid}/copies",
                                 json=_copy(start, ELSEWHERE))).json()["id"]
        await _built(as_retention, SigningKey.generate())
        redacted = _lumas((await client.get(
            f"/api/access-requests/{rid}/copies/{cid}/video")).content)
        for k in (0, 250):
            kept, blurred = _detail(_region(redacted[k], KEEP)), _detail(
                _region(source[125 + k], KEEP))
            assert kept < 0.2 * blurred, "the digits outside the kept box are not legible"
        rejected = await client.post(f"/api/access-requests/{rid}/copies/{cid}/reject",
                                     json={"reason": "la personne n'est pas dans la zone"})
        assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
        assert (await client.post(f"/api/access-requests/{rid}/copies/{cid}/approve")
                ).status_code == 409, "a rejected copy is never released"
        assert await erase_expired_copies(db, objects, buckets) == 1
        assert await objects.list_objects(buckets.exports, prefix="palaiseau/acces/") == []
        assert (await client.get(f"/api/access-requests/{rid}/copies/{cid}/video")
                ).status_code == 409
        erased = await db.fetchrow("SELECT * FROM audit_log WHERE action = "
                                   "'access_request.copy_erased'")
        assert erased["reason"] == "rejected"


async def test_an_altered_evidence_copy_makes_no_copy_R22(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    objects, buckets = store
    start = await _recorded(db, store)
    async with aclosing(await gateway.login("supervisor")) as client:
        request = await _request(client, start, as_retention)
        rid = request["id"]
        cid = (await client.post(f"/api/access-requests/{rid}/copies",
                                 json=_copy(start, KEEP))).json()["id"]
        item = await db.fetchval("SELECT evidence_key FROM hold_items WHERE hold_id = $1 "
                                 "ORDER BY segment_start OFFSET 1 LIMIT 1", request["hold_id"])
        await objects.put(buckets.holds, item, b"altered after the hold")
        # Read by its version, the held copy stays what it was: a copy made before versions were
        # recorded is read as the current version, and this one was altered.
        await db.execute("UPDATE hold_items SET version_id = NULL WHERE evidence_key = $1", item)
        await _built(as_retention, SigningKey.generate())
        failed = (await client.get(f"/api/access-requests/{rid}/copies/{cid}")).json()
        assert failed["state"] == "failed" and "SHA-256" in failed["error"]
        assert await objects.list_objects(buckets.exports, prefix="palaiseau/acces/") == []


async def test_bad_copies_are_refused_with_nothing_made_R22_R9(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    start = await _recorded(db, store)
    async with aclosing(await gateway.login("supervisor")) as client:
        rid = (await _request(client, start, as_retention))["id"]
        url = f"/api/access-requests/{rid}/copies"
        for body, status, reason in (
                (_copy(start, [120, 80, 60, 50]), 400, "outside the 160x120 picture"),
                (_copy(start, KEEP, keep=[{"t": 5, "box": KEEP}, {"t": 2, "box": KEEP}]), 400,
                 "times must increase"),
                (_copy(start, [10, 10, 0, 20]), 400, "positive width"),
                (_copy(start, [-4, 10, 20, 20]), 422, "greater than or equal"),
                (_copy(start, KEEP, keep=[{"t": 40, "box": KEEP}]), 400, "after the copy's end"),
                (_copy(start, KEEP, period_end=(start + timedelta(minutes=31)).isoformat()),
                 400, "30 minutes at most"),
                (_copy(start, KEEP, period_start=(start - timedelta(minutes=5)).isoformat()),
                 400, "within the held period"),
                (_copy(start, KEEP, camera="chantier"), 400, "does not name the camera"),
                (_copy(start, KEEP, period_end=(start + timedelta(seconds=4)).isoformat()),
                 400, "ends before it starts"),
                (_copy(start, KEEP, keep=[]), 422, "at least 1"),
                (_copy(start, KEEP, extra=1), 422, "extra")):
            refused = await client.post(url, json=body)
            assert refused.status_code == status and reason in refused.text, (reason,
                                                                               refused.text)
        # A period never recorded, and one erased before the request: nothing held, and the
        # answer says which, from the register (R24).
        never = start - timedelta(hours=5)
        empty = (await _request(client, never, as_retention))["id"]
        nothing = await client.post(f"/api/access-requests/{empty}/copies",
                                    json=_copy(never, KEEP))
        assert nothing.status_code == 400 and "nothing was recorded" in nothing.json()["detail"]
        erased_at = start - timedelta(hours=3)
        await record(db, Entry(actor="retention", action="deletion", commune="palaiseau",
                               cameras=["palaiseau/gare"], period_start=erased_at,
                               period_end=erased_at + timedelta(minutes=5), reason="retention",
                               details={"segments": 5, "objects": 5}))
        gone = (await _request(client, erased_at, as_retention))["id"]
        nothing = await client.post(f"/api/access-requests/{gone}/copies",
                                    json=_copy(erased_at, KEEP))
        assert nothing.status_code == 400, nothing.text
        assert "it was erased on" in nothing.json()["detail"]
        assert "(retention)" in nothing.json()["detail"]
        missing = await client.get(f"/api/access-requests/{rid}/still", params={
            "camera": "gare", "at": (start + timedelta(minutes=1)).isoformat()})
        assert missing.status_code == 404 and "nothing of gare is held" in missing.text
        assert (await client.get(f"/api/access-requests/{rid}/copies/999")).status_code == 404
        assert await db.fetchval("SELECT count(*) FROM access_copies") == 0

        # Another commune's supervisor sees nothing of it (R9); an anonymous caller neither.
        other = await create_user(db, username="sup-ballain", full_name="x", password=PASSWORD,
                                  roles=["supervisor"], communes=["ballainvilliers"],
                                  designated_by="le maire",
                                  designation_expires=date.today() + timedelta(days=365),
                                  agent_number="B-1")
        if other.totp_secret:
            gateway.totp["sup-ballain"] = other.totp_secret
        async with aclosing(await gateway.login("sup-ballain")) as stranger:
            for path in ("held", "copies", f"still?camera=gare&at={start.isoformat()}"):
                got = await stranger.get(f"/api/access-requests/{rid}/{path.replace('+', '%2B')}")
                assert got.status_code == 404, (path, got.text)
            posted = await stranger.post(url, json=_copy(start, KEEP))
            assert posted.status_code == 404
        async with gateway.client() as anonymous:
            assert (await anonymous.get(f"{url}")).status_code == 401
            assert (await anonymous.post(url, json=_copy(start, KEEP))).status_code == 401
        async with aclosing(await gateway.login("operator")) as operator:
            assert (await operator.get(url)).status_code == 403, "no rights-requests permission"
        assert await db.fetchval("SELECT count(*) FROM access_copies") == 0


async def test_a_build_interrupted_by_a_crash_is_taken_again_once_silent_R22(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    """A retention service killed mid-copy leaves it `building`: another builder leaves it alone
    while its heartbeat is fresh, takes it again once silent, and the objects are the copy's own
    (a second build overwrites them: nothing left behind)."""
    objects, buckets = store
    start = await _recorded(db, store)
    async with aclosing(await gateway.login("supervisor")) as client:
        rid = (await _request(client, start, as_retention))["id"]
        cid = (await client.post(f"/api/access-requests/{rid}/copies",
                                 json=_copy(start, KEEP))).json()["id"]
        await db.execute("UPDATE access_copies SET state = 'building', started_at = now(), "
                         "beat_at = now() - interval '10 s'")
        assert await _built(as_retention, SigningKey.generate()) is None, "still alive"
        await db.execute("UPDATE access_copies SET beat_at = now() - interval '2 min'")
        assert await _built(as_retention, SigningKey.generate()) == cid
        assert (await client.get(f"/api/access-requests/{rid}/copies/{cid}")).json()[
            "state"] == "preview"
        stored = sorted(o.key for o in await objects.list_objects(buckets.exports,
                                                                 prefix="palaiseau/acces/"))
        assert stored == [f"palaiseau/acces/copie-{cid}.mp4", f"palaiseau/acces/copie-{cid}.zip"]


async def test_a_wide_kept_box_waits_for_a_second_person_before_it_is_built_issue_34(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    """A « redacted » copy keeping the whole picture sharp blurs nothing: it is not built until
    someone other than who asked approves that box, and that person cannot be the asker."""
    start = await _recorded(db, store)
    await _second_supervisor(gateway, db)
    whole = [0, 0, 160, 120]
    async with aclosing(await gateway.login("supervisor")) as client:
        rid = (await _request(client, start, as_retention))["id"]
        asked = (await client.post(f"/api/access-requests/{rid}/copies",
                                   json=_copy(start, whole))).json()
        assert asked["state"] == "pending" and asked["keep_share"] == 1.0, asked
        assert await _built(as_retention, SigningKey.generate()) is None, "not built yet"
        alone = await client.post(f"/api/access-requests/{rid}/copies/{asked['id']}/approve-box")
        assert alone.status_code == 409 and "four eyes" in alone.text
        small = (await client.post(f"/api/access-requests/{rid}/copies",
                                   json=_copy(start, KEEP))).json()
        assert small["state"] == "queued" and small["keep_share"] < 1 / 3
    async with aclosing(await gateway.login("supervisor-2")) as second:
        box = await second.post(f"/api/access-requests/{rid}/copies/{asked['id']}/approve-box")
        assert box.status_code == 200 and box.json()["state"] == "queued"
        assert box.json()["wide_approved_by"] == "supervisor-2"
    assert await _built(as_retention, SigningKey.generate()) == asked["id"]
    journal = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'access_request.copy%' ORDER BY id")]
    assert "access_request.copy_box_approved" in journal
    # The database holds the rule too: no approver is the asker.
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE access_copies SET approved_by = created_by WHERE id = $1",
                         small["id"])


async def test_held_pictures_are_decided_as_playback_training_and_handover_issue_34_R11_R27(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    """The access request's pictures need only `rights_requests` no longer: an untrained
    supervisor (R11) and a municipal supervisor while the national police hold the commune (R27)
    are refused as for a playback; a picture shown is journaled with the request as its reason."""
    start = await _recorded(db, store)
    at = (start + timedelta(seconds=3)).isoformat()
    async with aclosing(await gateway.login("supervisor")) as client:
        rid = (await _request(client, start, as_retention))["id"]
        shown = await client.get(f"/api/access-requests/{rid}/still",
                                 params={"camera": "gare", "at": at})
        assert shown.status_code == 200
        reason = await db.fetchval("SELECT reason FROM audit_log WHERE action = "
                                   "'access_request.still_viewed'")
        assert reason == f"droit d'accès : demande n° {rid}"
        await db.execute("UPDATE users SET trained_on = NULL WHERE username = 'supervisor'")
        untrained = await client.get(f"/api/access-requests/{rid}/still",
                                     params={"camera": "gare", "at": at})
        assert untrained.status_code == 403 and "R11" in untrained.text
        await db.execute("UPDATE users SET trained_on = current_date - 5 "
                         "WHERE username = 'supervisor'")
        switched = await client.post("/api/communes/palaiseau/handover", json={
            "holder": "national_police", "reason": "renfort de nuit"})
        assert switched.status_code == 200, switched.text
        for path in ("still", "proposals"):
            refused = await client.get(f"/api/access-requests/{rid}/{path}",
                                       params={"camera": "gare", "at": at})
            assert refused.status_code == 403 and "R27" in refused.text, (path, refused.text)
