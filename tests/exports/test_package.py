"""Requisition exports (R13, R17, R18; invariant 1): a hold placed on what the requisition covers,
a package built from the evidence copies that plays (the stored masked H.264, joined without
re-encoding) and that anyone verifies with `sha256sum -c` and `openssl pkeyutl -verify` alone —
the very commands LISEZMOI.txt gives; one byte changed, a file added or another key is caught;
bad requests are refused with the reason and leave nothing half-written."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import av
import pytest
from pypdf import PdfReader
from vigie.custody.exports.create import create_export
from vigie.custody.exports.package import ExportError, Requisition, build_package
from vigie.custody.exports.texts import one_month_after
from vigie.custody.exports.verify import verify_package
from vigie.custody.holds import HoldRequest, create_hold
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.security.signing import SigningKey

from tests.exports.helpers import REQUISITION
from tests.exports.helpers import recorded as _recorded
from tests.retention.helpers import camera, commune

pytestmark = pytest.mark.integration

def _frames_in(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


async def test_a_requisition_export_plays_and_verifies_with_standard_tools_R17_R18(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    objects, buckets = store
    await commune(db)
    cid = await camera(db, "gare")
    await db.execute("UPDATE cameras SET name = 'Gare RER', location = 'Place de la gare' "
                     "WHERE id = $1", cid)
    t0 = datetime.now(UTC).replace(microsecond=250_000) - timedelta(hours=2)
    first = await _recorded(db, objects, buckets.recordings, cid, start=t0, seconds=10)
    later = t0 + timedelta(seconds=30)  # 20 s with nothing recorded between the two stretches
    second = await _recorded(db, objects, buckets.recordings, cid, start=later, seconds=6)
    key = SigningKey.generate()

    result = await create_export(
        db, objects, buckets, key=key, cameras=["palaiseau/gare"],
        start=t0 - timedelta(seconds=5), end=later + timedelta(seconds=20),
        requisition=REQUISITION, out_dir=tmp_path / "out")

    folder = result.folder
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        folder.name, result.archive.name], "nothing partial left beside the package"
    # The commands LISEZMOI.txt gives, as an investigator would run them.
    readme = (folder / "LISEZMOI.txt").read_text()
    assert "sha256sum -c SHA256SUMS" in readme and "openssl pkeyutl -verify" in readme
    sums = _run(["sha256sum", "-c", "SHA256SUMS"], folder)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    assert sums.stdout.count(": OK") == len((folder / "SHA256SUMS").read_text().splitlines())
    # SHA256SUMS itself is signed (issue 34): openssl alone ties the list to the key.
    assert "-in SHA256SUMS -sigfile SHA256SUMS.sig" in readme
    listed = _run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "cle-publique.pem",
                   "-rawin", "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig"], folder)
    assert listed.returncode == 0 and "Signature Verified Successfully" in listed.stdout, listed
    signed = _run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "cle-publique.pem",
                   "-rawin", "-in", "manifest.json", "-sigfile", "manifest.sig"], folder)
    assert signed.returncode == 0 and "Signature Verified Successfully" in signed.stdout, signed
    fingerprint = subprocess.run(
        "openssl pkey -pubin -in cle-publique.pem -outform DER | openssl dgst -sha256 -binary "
        "| openssl base64", shell=True, cwd=folder, capture_output=True, text=True, check=True)
    assert "SHA256:" + fingerprint.stdout.strip() == key.fingerprint()
    assert key.fingerprint() in readme

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["requisition"]["reference"] == "PV 2026/001234"
    [cam] = manifest["cameras"]
    assert cam["name"] == "Gare RER" and cam["location"] == "Place de la gare"
    assert cam["mask_versions"] == [1]
    # Two stretches, each one MP4 holding every stored frame (joined, not re-encoded).
    assert [len(p["segments"]) for p in cam["parts"]] == [3, 2]
    for part, stored in zip(cam["parts"], (first, second), strict=True):
        assert _frames_in(folder / part["video"]) == sum(n for _, _, n in stored)
        cues = (folder / part["captions"]).read_text().count(" --> ")
        span = (stored[-1][1] - stored[0][0]).total_seconds()
        assert span <= cues <= span + 1
    first_cue = (folder / cam["parts"][0]["captions"]).read_text().splitlines()[3]
    paris = t0.astimezone(ZoneInfo("Europe/Paris"))
    assert f"{paris:%d/%m/%Y %H:%M:%S}" in first_cue and "Gare RER (palaiseau/gare)" in first_cue
    # What the period asks for and storage does not hold is listed, not dropped.
    assert [g["why"] for g in cam["gaps"]] == ["not_recorded"] * 3
    assert "player.html" in {f["path"] for f in manifest["files"]}
    # The printable extraction record an officer files (French, with every video's SHA-256).
    record = "\n".join(page.extract_text() for page in PdfReader(
        folder / "proces-verbal-extraction.pdf").pages)
    # R6 (issue 40): the recipient is told to destroy its copy a month after transmission.
    until = one_month_after(manifest["created_at"])
    assert f"au plus tard le {until}" in " ".join(readme.split())
    for expected in ("Procès-verbal d'extraction", "PV 2026/001234", "OPJ Martin",
                     "agent 4521", "Commissariat de Massy", "clé USB n° 12", "Gare RER",
                     "Place de la gare", "non enregistré", key.fingerprint()[:20],
                     "Durée de conservation", f"au plus tard le {until}"):
        assert expected in " ".join(record.split()), expected  # lines wrap anywhere
    for part in cam["parts"]:
        digest = hashlib.sha256((folder / part["video"]).read_bytes()).hexdigest()
        assert digest in record.replace("\n", ""), part["video"]
    player = (folder / "player.html").read_text()
    assert all(p["video"] in player for p in cam["parts"])
    assert "VTTCue" in player and "Gare RER (palaiseau/gare)" in player, "its time track inline"

    # The hold (R18) and the register (R13, R17) carry the requisition's reference.
    [hold] = await db.fetch("SELECT kind, reference, state FROM holds")
    assert dict(hold) == {"kind": "judicial_requisition", "reference": "PV 2026/001234",
                          "state": "active"}
    entry = await db.fetchrow("SELECT actor, recipients, details FROM audit_log "
                              "WHERE action = 'export.created'")
    details = json.loads(entry["details"])
    assert entry["actor"] == "agent 4521" and entry["recipients"] == "Commissariat de Massy"
    assert details["reference"] == "PV 2026/001234"
    assert details["manifest_sha256"] == hashlib.sha256(
        (folder / "manifest.json").read_bytes()).hexdigest() == result.manifest_sha256

    # Vigie's own check, on the folder and on the ZIP, then on damaged copies.
    assert verify_package(folder, trusted_fingerprint=key.fingerprint()).ok
    assert verify_package(result.archive, trusted_fingerprint=key.fingerprint()).ok
    # Intact but unanchored: a package re-signed with any key would say the same, so the CLI
    # does not say « OK » without the deployment's fingerprint or public key (issue 34).
    cli = _run([sys.executable, "-m", "vigie.cli.main", "export", "verify", str(result.archive)],
               tmp_path)
    assert cli.returncode == 3 and "NOT TIED TO THE DEPLOYMENT" in cli.stderr, cli
    cli = _run([sys.executable, "-m", "vigie.cli.main", "export", "verify", str(result.archive),
                "--fingerprint", key.fingerprint()], tmp_path)
    assert cli.returncode == 0 and "the deployment's" in cli.stdout, cli.stderr
    (tmp_path / "published.pem").write_bytes(key.public_pem())
    cli = _run([sys.executable, "-m", "vigie.cli.main", "export", "verify", str(result.archive),
                "--public-key", str(tmp_path / "published.pem")], tmp_path)
    assert cli.returncode == 0, cli.stderr

    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    video = damaged / cam["parts"][1]["video"]
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    video.write_bytes(bytes(data))
    assert _run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], damaged).returncode != 0
    verdict = verify_package(damaged)
    assert not verdict.ok and verdict.problems[0].startswith(cam["parts"][1]["video"])
    cli = _run([sys.executable, "-m", "vigie.cli.main", "export", "verify", str(damaged)],
               tmp_path)
    assert cli.returncode == 1 and cam["parts"][1]["video"] in cli.stderr

    grown = tmp_path / "grown.zip"
    shutil.copy(result.archive, grown)
    with zipfile.ZipFile(grown, "a") as z:
        z.writestr(f"{result.export_id}/videos/extra.mp4", b"not from Vigie")
    assert "videos/extra.mp4" in verify_package(grown).problems[0]

    # A video added with its line in SHA256SUMS: `sha256sum -c` is fooled, the signatures are not
    # — neither SHA256SUMS.sig nor, for a package without it, the signed manifest (issue 34, R17).
    added = tmp_path / "added"
    shutil.copytree(folder, added)
    (added / "videos" / "extra.mp4").write_bytes(b"not from Vigie")
    with (added / "SHA256SUMS").open("a") as sums_file:
        sums_file.write(f"{hashlib.sha256(b'not from Vigie').hexdigest()}  videos/extra.mp4\n")
    assert _run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], added).returncode == 0
    added_verdict = verify_package(added, trusted_fingerprint=key.fingerprint())
    assert any(p.startswith("SHA256SUMS.sig:") for p in added_verdict.problems)
    assert any("videos/extra.mp4: a file the signed manifest does not list" in p
               for p in added_verdict.problems)
    (added / "SHA256SUMS.sig").unlink()
    unsigned_sums = verify_package(added, trusted_fingerprint=key.fingerprint())
    assert not unsigned_sums.ok and "videos/extra.mp4" in unsigned_sums.problems[0]

    # Two members of one name: a viewer may show the first, a verifier read the last.
    twice = tmp_path / "twice.zip"
    shutil.copy(result.archive, twice)
    first_video = cam["parts"][0]["video"]
    with zipfile.ZipFile(twice, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr(f"{result.export_id}/{first_video}", b"another picture")
    twice_verdict = verify_package(twice, trusted_fingerprint=key.fingerprint())
    assert twice_verdict.problems == [f"{first_video}: twice in the ZIP (a viewer may show the "
                                      "other one)"]

    # Re-signed by another key, with that key put in the package: the package is consistent
    # with itself (SHA256SUMS rewritten too) but not with the deployment's fingerprint.
    forged = tmp_path / "forged"
    shutil.copytree(folder, forged)
    other = SigningKey.generate()
    (forged / "manifest.sig").write_bytes(other.sign((forged / "manifest.json").read_bytes()))
    (forged / "cle-publique.pem").write_bytes(other.public_pem())
    lines = [f"{hashlib.sha256((forged / n).read_bytes()).hexdigest()}  {n}" for n in
             (line.split("  ", 1)[1] for line in (folder / "SHA256SUMS").read_text().splitlines())]
    (forged / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    (forged / "SHA256SUMS.sig").write_bytes(other.sign((forged / "SHA256SUMS").read_bytes()))
    # The ONVIF files' certificates still lead to the deployment's key, not to the new one.
    forged_verdict = verify_package(forged)
    assert not forged_verdict.ok
    assert all("not issued by the package's export key" in p for p in forged_verdict.problems)
    refused = verify_package(forged, trusted_fingerprint=key.fingerprint())
    assert not refused.ok and any("another key" in p for p in refused.problems)
    (forged / "manifest.sig").write_bytes(key.sign(b"something else"))
    assert "signature" in verify_package(forged).problems[-1]


@pytest.mark.parametrize(("made", "until"), [
    ("2026-01-31T10:00:00+00:00", "28/02/2026"),   # a shorter month: its last day
    ("2026-12-15T23:30:00+00:00", "16/01/2027"),   # Paris is already the 16th; a new year
    ("2026-03-10T09:00:00+00:00", "10/04/2026"),
])
def test_a_recipients_copy_is_kept_one_calendar_month_R6(made: str, until: str) -> None:
    assert one_month_after(made) == until


async def test_bad_requests_are_refused_with_the_reason_and_leave_nothing_R17(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    objects, buckets = store
    await commune(db)
    await camera(db, "gare")
    key = SigningKey.generate()
    now = datetime.now(UTC)
    out = tmp_path / "out"

    async def export(cameras: list[str], start: datetime, end: datetime,
                     requisition: Requisition = REQUISITION) -> None:
        await create_export(db, objects, buckets, key=key, cameras=cameras, start=start, end=end,
                            requisition=requisition, out_dir=out)

    hour = timedelta(hours=1)
    cases = [
        (["palaiseau/inconnue"], now - hour, now, REQUISITION, "inconnue"),
        (["gare"], now - hour, now, REQUISITION, "COMMUNE/CAMERA"),
        (["palaiseau/gare"], now - hour, now,
         Requisition("", "OPJ", "dest", "clé", "motif", "agent"), "requisition reference"),
        (["palaiseau/gare"], now - 4 * 24 * hour, now, REQUISITION, "longer than 72 h"),
        (["palaiseau/gare"], now - hour, now + hour, REQUISITION, "future"),
        (["palaiseau/gare"], now, now - hour, REQUISITION, "ends before it starts"),
    ]
    for cameras, start, end, requisition, reason in cases:
        with pytest.raises(ExportError, match=reason):
            await export(cameras, start, end, requisition)
    assert await db.fetchval("SELECT count(*) FROM holds") == 0
    assert not out.exists() or not any(out.iterdir())


async def test_an_altered_evidence_copy_stops_the_export_R17(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    """A version put over a held copy changes nothing: the export reads the version put under
    legal hold. A copy whose bytes differ from the hash taken at the hold (one made before
    versions were recorded, read as the current version) exports nothing."""
    objects, buckets = store
    await commune(db)
    cid = await camera(db, "gare")
    t0 = datetime.now(UTC) - timedelta(hours=1)
    await _recorded(db, objects, buckets.recordings, cid, start=t0, seconds=8)
    request = HoldRequest.parse(dict(
        kind="judicial_requisition", reference="PV 1", commune="palaiseau", cameras=["gare"],
        period_start=t0, period_end=t0 + timedelta(seconds=8), requested_by="agent",
        reason="dégradations", review_on=date.today()))
    report = await create_hold(db, objects, recordings=buckets.recordings,
                               holds=buckets.holds, request=request)
    key = await db.fetchval("SELECT evidence_key FROM hold_items ORDER BY segment_start DESC")
    assert await db.fetchval("SELECT version_id FROM hold_items WHERE evidence_key = $1", key)
    data = await objects.get(buckets.holds, key)
    await objects.put(buckets.holds, key, data[:-1] + bytes([data[-1] ^ 0xFF]))
    (tmp_path / "held").mkdir()
    made = await build_package(db, objects, holds=buckets.holds, hold_ids=[report.hold_id],
                               requisition=REQUISITION,
                               periods={"palaiseau/gare": (t0, t0 + timedelta(seconds=8))},
                               missing={}, key=SigningKey.generate(), out_dir=tmp_path / "held",
                               export_id="held")
    assert made.exists(), "the held version, not the one put over it"
    await db.execute("UPDATE hold_items SET version_id = NULL WHERE evidence_key = $1", key)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match="does not match its SHA-256"):
        await build_package(db, objects, holds=buckets.holds, hold_ids=[report.hold_id],
                            requisition=REQUISITION,
                            periods={"palaiseau/gare": (t0, t0 + timedelta(seconds=8))},
                            missing={}, key=SigningKey.generate(), out_dir=out, export_id="x")
    assert list(out.iterdir()) == [], "nothing half-written"


async def test_a_second_export_of_one_requisition_reuses_its_hold_R18(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    objects, buckets = store
    await commune(db)
    cid = await camera(db, "gare")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    stored = await _recorded(db, objects, buckets.recordings, cid, start=t0, seconds=12)
    key = SigningKey.generate()
    wide = await create_export(db, objects, buckets, key=key, cameras=["palaiseau/gare"],
                               start=t0, end=t0 + timedelta(seconds=12), requisition=REQUISITION,
                               out_dir=tmp_path / "a")
    # The officer asks again for a part of it (another medium): the same hold, no new copies.
    narrow = await create_export(db, objects, buckets, key=key, cameras=["palaiseau/gare"],
                                 start=t0 + timedelta(seconds=5), end=t0 + timedelta(seconds=7),
                                 requisition=REQUISITION, out_dir=tmp_path / "b")
    assert narrow.hold_ids == wide.hold_ids
    assert await db.fetchval("SELECT count(*) FROM holds") == 1
    assert await db.fetchval("SELECT count(*) FROM hold_items") == len(stored)
    manifest = json.loads((narrow.folder / "manifest.json").read_text())
    [part] = manifest["cameras"][0]["parts"]
    assert len(part["segments"]) == 1 and narrow.gaps == 0, "only the segment of 5–7 s"
    assert verify_package(narrow.folder, trusted_fingerprint=key.fingerprint()).ok
    details = json.loads(await db.fetchval(
        "SELECT details FROM audit_log WHERE action = 'export.created' ORDER BY id DESC LIMIT 1"))
    assert details["holds_reused"] == wide.hold_ids
    # Another requisition's reference is another hold (each released on its own).
    other = Requisition(**{**REQUISITION.__dict__, "reference": "PV 2026/009999"})
    third = await create_export(db, objects, buckets, key=key, cameras=["palaiseau/gare"],
                                start=t0, end=t0 + timedelta(seconds=4), requisition=other,
                                out_dir=tmp_path / "c")
    assert third.hold_ids != wide.hold_ids


async def test_an_overseas_communes_extraction_is_subtitled_in_its_own_legal_time_R36(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    """Issue 37: Europe/Paris was written in the code, so an extraction for Cayenne read five
    hours wrong on every subtitle handed to a court. The commune's `time_zone` says."""
    objects, buckets = store
    await commune(db)
    await db.execute("UPDATE communes SET time_zone = 'America/Cayenne' WHERE slug = 'palaiseau'")
    cid = await camera(db, "gare")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await _recorded(db, objects, buckets.recordings, cid, start=t0, seconds=4)
    result = await create_export(
        db, objects, buckets, key=SigningKey.generate(), cameras=["palaiseau/gare"],
        start=t0, end=t0 + timedelta(seconds=4), requisition=REQUISITION,
        out_dir=tmp_path / "out")
    [cam] = json.loads((result.folder / "manifest.json").read_text())["cameras"]
    assert cam["time_zone"] == "America/Cayenne"
    first_cue = (result.folder / cam["parts"][0]["captions"]).read_text().splitlines()[3]
    cayenne = t0.astimezone(ZoneInfo("America/Cayenne"))
    assert first_cue.startswith(f"{cayenne:%d/%m/%Y %H:%M:%S} (heure légale, America/Cayenne)")
    assert "heure légale, America/Cayenne" in (result.folder / "player.html").read_text()
    record = "\n".join(page.extract_text() for page in PdfReader(
        result.folder / "proces-verbal-extraction.pdf").pages)
    assert "heure légale, America/Cayenne" in record and "heure de Paris" not in record
    assert f"{cayenne:%d/%m/%Y à %H:%M:%S}" in record
