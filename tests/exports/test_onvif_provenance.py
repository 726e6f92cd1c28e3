"""Issue 21: each exported video also as a signed ONVIF Export File Format file that ONVIF tools
and openssl check, and provenance from the moment of recording — the recorder's signed chain of
segments travels in the package, so a holder of the export key alone cannot pass other pictures,
a changed time or a removed segment off as Vigie's recording (R13, R17; invariant 4)."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import av
import pytest
from vigie.custody.exports.create import ExportResult, create_export
from vigie.custody.exports.onvif import EPOCH_1601, find_box, verify_file
from vigie.custody.exports.verify import verify_package
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.security.signing import SigningKey

from tests.exports.helpers import RECORDING_KEY, REQUISITION, recorded
from tests.retention.helpers import camera, commune

pytestmark = pytest.mark.integration


def _top_level(data: bytes) -> list[tuple[bytes, int, int]]:
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        boxes.append((kind, at, size))
        at += size
    assert at == len(data), "boxes cover the file exactly"
    return boxes


def _cstrings(data: bytes, count: int) -> tuple[list[str], bytes]:
    out = []
    for _ in range(count):
        text, _, data = data.partition(b"\0")
        out.append(text.decode())
    return out, data


def _resign(folder: Path, key: SigningKey) -> None:
    """What an insider holding the export key could do: rewrite the hashes and sign again."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (folder / entry["path"]).read_bytes()
        entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    body = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()
    (folder / "manifest.json").write_bytes(body)
    (folder / "manifest.sig").write_bytes(key.sign(body))
    lines = []
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        name = line.split("  ", 1)[1]
        lines.append(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    (folder / "SHA256SUMS.sig").write_bytes(key.sign((folder / "SHA256SUMS").read_bytes()))


def _edit_manifest(folder: Path, change: Any) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2)
                                          + "\n")


async def _export(db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
                  key: SigningKey) -> tuple[ExportResult, datetime]:
    objects, buckets = store
    await commune(db)
    cid = await camera(db, "gare")
    await db.execute("UPDATE cameras SET name = 'Gare RER', location = 'Place de la gare', "
                     "latitude = 48.7145, longitude = 2.2457, sensor_index = 2 WHERE id = $1", cid)
    t0 = datetime.now(UTC).replace(microsecond=250_000) - timedelta(hours=1)
    await recorded(db, objects, buckets.recordings, cid, start=t0, seconds=10)
    result = await create_export(db, objects, buckets, key=key, cameras=["palaiseau/gare"],
                                 start=t0 - timedelta(seconds=2), end=t0 + timedelta(seconds=12),
                                 requisition=REQUISITION, out_dir=tmp_path / "out")
    return result, t0


async def test_the_onvif_export_file_is_signed_fragmented_and_says_where_and_who_R17(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    key = SigningKey.generate()
    result, t0 = await _export(db, store, tmp_path, key)
    manifest = json.loads((result.folder / "manifest.json").read_text())
    [part] = manifest["cameras"][0]["parts"]
    path = result.folder / part["onvif"]
    data = path.read_bytes()

    boxes = _top_level(data)
    kinds = [k for k, _, _ in boxes]
    assert kinds[:2] == [b"ftyp", b"moov"] and kinds[-1] == b"meta" and b"mfra" not in kinds
    moofs = [(at, size) for k, at, size in boxes if k == b"moof"]
    assert len(moofs) >= 2
    for at, size in moofs:  # every fragment carries its decode time (ONVIF EFF 'Timing')
        assert find_box(data[at:at + size], [b"moof", b"traf", b"tfdt"]) is not None
    # Location: moov/udta/loci, role 1, 16.16 degrees.
    moov_at, moov_size = boxes[1][1], boxes[1][2]
    loci = find_box(data[moov_at:moov_at + moov_size], [b"moov", b"udta", b"loci"])
    assert loci is not None
    body = data[moov_at + loci[0] + 12:moov_at + loci[0] + loci[1]]
    [place], rest = _cstrings(body[2:], 1)
    longitude, latitude = struct.unpack(">ii", rest[1:9])
    assert place == "Place de la gare" and rest[0] == 1
    assert (latitude / 65536, longitude / 65536) == (pytest.approx(48.7145, abs=1e-4),
                                                     pytest.approx(2.2457, abs=1e-4))
    # The surveillance export box: export unit, time, operator; the camera per track.
    meta = data[boxes[-1][1]:]
    suep_at, suep_size = find_box(meta, [b"meta", b"suep"]) or (0, 0)
    suep = meta[suep_at + 8:suep_at + suep_size]
    assert suep[0] == 1, "version 1"
    (unit, url, mac), rest = _cstrings(suep[4:], 3)
    exported = datetime(1904, 1, 1, tzinfo=UTC) + timedelta(seconds=struct.unpack(">Q",
                                                                                    rest[:8])[0])
    [operator], rest = _cstrings(rest[8:], 1)
    assert unit == "Vigie" and operator == "agent 4521"
    assert abs((exported - datetime.now(UTC)).total_seconds()) < 120
    count, track = struct.unpack(">IH", rest[:6])
    (name, source_url, _, line), _ = _cstrings(rest[6:], 4)
    assert (count, track, name, source_url, line) == (1, 1, "Gare RER", "vigie:palaiseau/gare",
                                                      "2")
    assert "rtsp" not in data[-4000:].decode(errors="replace").lower()
    # Corrected start time: the capture time of the first frame, in 100 ns since 1601.
    cstb = find_box(meta, [b"meta", b"ipro", b"sinf", b"cstb"])
    assert cstb is not None
    _, _, ticks = struct.unpack(">IIQ", meta[cstb[0] + 8:cstb[0] + 24])
    assert EPOCH_1601 + timedelta(microseconds=ticks // 10) == datetime.fromisoformat(
        part["start"].replace("Z", "+00:00"))
    schm = find_box(meta, [b"meta", b"ipro", b"sinf", b"schm"])
    assert schm is not None and meta[schm[0] + 12:schm[0] + 20] == b"oeff\x00\x01\x00\x00"

    # One file per stretch: the package's video is the ONVIF file, and it plays every frame.
    assert part["onvif"] == part["video"]
    with av.open(str(path)) as onvif_file:
        assert sum(1 for _ in onvif_file.decode(video=0)) == 10 * 25

    # The signature with standard tools: RSASSA-PSS SHA-256 salt 20 over the file with the
    # signature's bytes set to zero, checked with the certificate's key (LISEZMOI.txt's commands).
    sibo = find_box(meta, [b"meta", b"ipro", b"sinf", b"schi", b"sibo"])
    cert = find_box(meta, [b"meta", b"ipro", b"sinf", b"schi", b"cert"])
    assert sibo is not None and cert is not None and sibo[1] - 8 == 256
    assert part["onvif_signature"]["signature_offset"] == boxes[-1][1] + sibo[0] + 8
    readme = (result.folder / "LISEZMOI.txt").read_text()
    lines = readme.splitlines()
    begin = lines.index(f"  f={part['onvif']}")
    script = "\n".join(line.strip() for line in lines[begin:begin + 6])
    assert script.splitlines()[-1].startswith("openssl dgst -sha256 -sigopt rsa_padding_mode:pss")
    work = tmp_path / "check"
    shutil.copytree(result.folder, work)
    checked = subprocess.run(["bash", "-e", "-c", script], cwd=work, capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked
    issuer = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", "cert.der", "-noout",
                             "-issuer"], cwd=work, capture_output=True, text=True, check=True)
    assert key.fingerprint() in issuer.stdout
    # The same commands on a file with one bit of its pictures changed: refused.
    flipped = bytearray(data)
    flipped[moofs[1][0] + moofs[1][1] + 100] ^= 0x01
    (work / part["onvif"]).write_bytes(bytes(flipped))
    refused = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "Verification failure" in refused.stdout + refused.stderr
    assert verify_file(path, key.public_pem()) == ""
    other = SigningKey.generate()
    assert "not issued by" in verify_file(path, other.public_pem())

    assert "does not hold" in verify_file(work / part["onvif"])


async def test_the_package_carries_the_recorders_chain_and_catches_what_the_export_key_alone_cannot_hide(  # noqa: E501
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    key = SigningKey.generate()
    result, _ = await _export(db, store, tmp_path, key)
    folder = result.folder
    manifest = json.loads((folder / "manifest.json").read_text())
    [part] = manifest["cameras"][0]["parts"]
    assert manifest["recording_keys"] == {
        RECORDING_KEY.fingerprint(): RECORDING_KEY.public_pem().decode()}
    verdict = verify_package(folder, trusted_fingerprint=key.fingerprint())
    assert verdict.ok and verdict.chained == len(part["segments"]) == 3 and not verdict.notes

    # Other pictures in place of the recorded ones (the last segment's frames repeated), the
    # package re-signed with the export key: the recorder's signatures expose it.
    swapped = tmp_path / "swapped"
    shutil.copytree(folder, swapped)
    video = swapped / part["video"]
    with av.open(str(folder / part["video"])) as src, av.open(str(video), "w") as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(video=0) if p.size]
        payloads = [bytes(p) for p in packets]
        for packet, payload in zip(packets, payloads[-len(payloads) // 3:] * 4, strict=False):
            copy = av.Packet(payload)
            copy.stream, copy.time_base = stream, packet.time_base
            copy.pts, copy.dts, copy.is_keyframe = packet.pts, packet.dts, packet.is_keyframe
            out.mux(copy)
    _resign(swapped, key)
    verdict = verify_package(swapped, trusted_fingerprint=key.fingerprint())
    assert f"{part['video']}: its pictures are not the ones the recorder signed" in \
        verdict.problems

    # A changed capture time in the manifest, re-signed: the link no longer matches its fields.
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)

    def later(m: dict[str, Any]) -> None:
        m["cameras"][0]["parts"][0]["segments"][1]["provenance"]["start"] = \
            "2020-01-01T00:00:00.000000Z"
    _edit_manifest(moved, later)
    _resign(moved, key)
    [problem] = verify_package(moved).problems
    assert "does not match its fields" in problem

    # A segment taken out of the middle (and of the listing): the chain is broken there.
    cut = tmp_path / "cut"
    shutil.copytree(folder, cut)
    _edit_manifest(cut, lambda m: m["cameras"][0]["parts"][0]["segments"].pop(1))
    _resign(cut, key)
    [problem] = verify_package(cut).problems
    assert "chain is broken" in problem

    # A recording key nobody published signing a forged link: refused like a bad signature.
    forged = tmp_path / "forged"
    shutil.copytree(folder, forged)
    impostor = SigningKey.generate()

    def impostor_keys(m: dict[str, Any]) -> None:
        m["recording_keys"] = {RECORDING_KEY.fingerprint(): impostor.public_pem().decode()}
    _edit_manifest(forged, impostor_keys)
    _resign(forged, key)
    assert any("signature does not hold" in p for p in verify_package(forged).problems)


async def test_segments_recorded_without_a_recording_key_are_said_unsigned_not_passed_off(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    objects, buckets = store
    await commune(db)
    cid = await camera(db, "gare")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await recorded(db, objects, buckets.recordings, cid, start=t0, seconds=6, recording_key=None)
    key = SigningKey.generate()
    result = await create_export(db, objects, buckets, key=key, cameras=["palaiseau/gare"],
                                 start=t0, end=t0 + timedelta(seconds=6), requisition=REQUISITION,
                                 out_dir=tmp_path / "out")
    verdict = verify_package(result.archive)
    assert verdict.ok and verdict.chained == 2
    assert len(verdict.notes) == 2 and all("not signed by the recorder" in n
                                           for n in verdict.notes)
