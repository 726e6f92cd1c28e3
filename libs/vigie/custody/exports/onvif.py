"""Each exported video also as an ONVIF Export File Format file (ONVIF EFF 1.1; docs/exports.md).

A fragmented MP4 (a `tfdt` in every fragment, no `mfra`) whose file-level `meta` box, written last,
holds the surveillance export box (`suep`: export unit, time, operator; per track the camera's
name, id and sensor), and the protection box (`ipro`/`sinf`, scheme 'oeff') with the corrected
start time (`cstb`), the signature (`sibo`) and its certificate (`cert`); the camera's location is
the `loci` box in the movie's `udta`.

The signature is the specification's default — RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 20, RSA 2048
— over the whole file with the signature's own bytes set to zero, so ONVIF tools check it. Its key
is made for the one file and thrown away; its X.509 certificate is issued by the deployment's
export key (Ed25519), whose fingerprint the deployment publishes: the file's signature leads back
to the same key as the package's manifest.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from vigie.security.signing import SigningKey

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_trailer"  # skip_trailer: no mfra
SIGNATURE_BYTES = 256  # RSA 2048
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20)
EPOCH_1904 = datetime(1904, 1, 1, tzinfo=UTC)
EPOCH_1601 = datetime(1601, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Source:
    track_id: int
    name: str  # the camera's name
    url: str  # vigie:COMMUNE/CAMERA — never the camera's RTSP address (credentials)
    line: str  # the sensor of a multi-sensor device, or ''


@dataclass(frozen=True)
class ExportInfo:
    unit_name: str
    unit_url: str
    operator: str
    exported_at: datetime
    start: datetime  # capture time of the media timeline's origin
    sources: tuple[Source, ...]
    place: str = ""
    latitude: float | None = None
    longitude: float | None = None


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _cstr(text: str) -> bytes:
    return text.replace("\0", " ").encode() + b"\0"


def _fixed_16_16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _language(code: str = "fra") -> bytes:
    packed = 0
    for char in code:
        packed = (packed << 5) | (ord(char) - 0x60)
    return struct.pack(">H", packed)


def loci(info: ExportInfo) -> bytes:
    """3GPP TS 26.244 location box: role 1 (real location), coordinates in 16.16 degrees."""
    assert info.latitude is not None and info.longitude is not None
    payload = (_language() + _cstr(info.place) + bytes([1]) + _fixed_16_16(info.longitude)
               + _fixed_16_16(info.latitude) + _fixed_16_16(0) + _cstr("earth")
               + _cstr("Vigie"))
    return full_box(b"loci", 0, 0, payload)


def suep(info: ExportInfo) -> bytes:
    seconds = int((info.exported_at - EPOCH_1904).total_seconds())
    payload = (_cstr(info.unit_name) + _cstr(info.unit_url) + _cstr("") + struct.pack(">Q", seconds)
               + _cstr(info.operator) + struct.pack(">I", len(info.sources)))
    for source in info.sources:
        payload += (struct.pack(">H", source.track_id) + _cstr(source.name) + _cstr(source.url)
                    + _cstr("") + _cstr(source.line))
    return full_box(b"suep", 1, 0, payload)


def cstb(info: ExportInfo) -> bytes:
    ticks = (info.start - EPOCH_1601) // timedelta(microseconds=1) * 10  # 100-ns since 1601
    payload = struct.pack(">I", len(info.sources))
    for source in info.sources:
        payload += struct.pack(">IQ", source.track_id, ticks)
    return box(b"cstb", payload)


def meta_box(info: ExportInfo, certificate_der: bytes, signature: bytes) -> bytes:
    """meta { hdlr, suep, ipro { sinf { cstb, schm 'oeff' 1.0, schi { sibo, cert } } } }."""
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I", 0) + b"null" + bytes(12) + _cstr("Vigie"))
    schm = full_box(b"schm", 0, 0, b"oeff" + struct.pack(">I", 0x00010000))
    schi = box(b"schi", box(b"sibo", signature) + box(b"cert", certificate_der))
    sinf = box(b"sinf", cstb(info) + schm + schi)
    ipro = full_box(b"ipro", 0, 0, struct.pack(">H", 1) + sinf)
    return full_box(b"meta", 0, 0, hdlr + suep(info) + ipro)


def certificate(key: SigningKey, signer: rsa.RSAPrivateKey, info: ExportInfo) -> bytes:
    """The one-file RSA key's certificate, issued by the export key (DER)."""
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigie"),
                        x509.NameAttribute(NameOID.COMMON_NAME, "Vigie — clé d'export"),
                        x509.NameAttribute(NameOID.SERIAL_NUMBER, key.fingerprint())])
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigie"),
                         x509.NameAttribute(NameOID.COMMON_NAME,
                                            f"Export ONVIF — {info.unit_name}"[:64])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(signer.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(info.exported_at - timedelta(minutes=5))
            .not_valid_after(info.exported_at + timedelta(days=365 * 30))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False,
                                         False), critical=True)
            .sign(key.private_key, algorithm=None))
    return cert.public_bytes(serialization.Encoding.DER)


class OnvifWriter:
    """A write-only file for the MP4 muxer (no seek: the muxer stays sequential) that puts the
    `loci` box into the movie header as it passes, hashes everything written, and on `finish`
    appends the signed `meta` box."""

    def __init__(self, target: BinaryIO, info: ExportInfo) -> None:
        self._target, self._info = target, info
        self._hash = hashlib.sha256()
        self._head = b""  # held until ftyp and moov have passed
        self._passing = info.latitude is None  # nothing to insert: straight through

    def write(self, data: bytes) -> int:
        if self._passing:
            self._out(bytes(data))
        else:
            self._head += bytes(data)
            patched = _insert_udta(self._head, loci(self._info))
            if patched is not None:
                self._passing, self._head = True, b""
                self._out(patched)
        return len(data)

    def _out(self, data: bytes) -> None:
        self._hash.update(data)
        self._target.write(data)

    def finish(self, key: SigningKey) -> None:
        if not self._passing:
            raise ValueError("the muxer wrote no movie header")
        signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = certificate(key, signer, self._info)
        unsigned = meta_box(self._info, cert, bytes(SIGNATURE_BYTES))
        self._hash.update(unsigned)
        signature = signer.sign(self._hash.digest(), PSS, Prehashed(hashes.SHA256()))
        signed = meta_box(self._info, cert, signature)
        assert len(signed) == len(unsigned)
        self._target.write(signed)


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the boxes in data[start:end] that are whole."""
    found, at, end = [], start, len(data) if end is None else end
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size == 1:
            if at + 16 > end:
                break
            size = struct.unpack(">Q", data[at + 8:at + 16])[0]
        elif size == 0:
            size = end - at
        if size < 8 or at + size > end:
            break
        found.append((kind, at, size))
        at += size
    return found


def _insert_udta(head: bytes, loci_box: bytes) -> bytes | None:
    """The bytes with `loci` put in moov's `udta` (made if the muxer wrote none), once ftyp and
    moov are whole; else None."""
    moov = next((b for b in _boxes(head) if b[0] == b"moov"), None)
    if moov is None:
        return None
    _, at, size = moov
    if struct.unpack(">I", head[at:at + 4])[0] == 1:
        raise ValueError("a 64-bit movie header is not expected here")
    udta = next((b for b in _boxes(head, at + 8, at + size) if b[0] == b"udta"), None)
    if udta is None:
        body = head[at + 8:at + size] + box(b"udta", loci_box)
    else:
        _, u_at, u_size = udta
        grown = struct.pack(">I", u_size + len(loci_box)) + head[u_at + 4:u_at + u_size] + loci_box
        body = head[at + 8:u_at] + grown + head[u_at + u_size:at + size]
    return head[:at] + box(b"moov", body) + head[at + size:]


# --- checking --------------------------------------------------------------------------------------

def find_box(data: bytes, path: list[bytes]) -> tuple[int, int] | None:
    """(offset, size) of the box at `path` (meta and full boxes' headers are skipped)."""
    start, end = 0, len(data)
    found: tuple[int, int] | None = None
    for depth, kind in enumerate(path):
        match = next((b for b in _boxes(data, start, end) if b[0] == kind), None)
        if match is None:
            return None
        _, at, size = match
        found = (at, size)
        header = 12 if kind in (b"meta", b"ipro") else 8
        start, end = at + header + (2 if kind == b"ipro" else 0), at + size
        del depth
    return found


def signature_layout(path: Path) -> dict[str, int]:
    """Where the signature and the certificate are in the file (for dd, LISEZMOI.txt): the
    top-level boxes are walked by their headers; only the final meta box is read."""
    with path.open("rb") as f:
        size, at, last = path.stat().st_size, 0, (b"", 0, 0)
        while at + 8 <= size:
            f.seek(at)
            length, kind = struct.unpack(">I4s", f.read(8))
            if length == 1:
                length = struct.unpack(">Q", f.read(8))[0]
            if length < 8:
                raise ValueError(f"{path.name}: a box of size {length}")
            last, at = (kind, at, length), at + length
        kind, meta_at, meta_size = last
        if kind != b"meta":
            raise ValueError(f"{path.name}: no meta box at the end")
        f.seek(meta_at)
        meta = f.read(meta_size)
    sibo = find_box(meta, [b"meta", b"ipro", b"sinf", b"schi", b"sibo"])
    cert = find_box(meta, [b"meta", b"ipro", b"sinf", b"schi", b"cert"])
    if sibo is None or cert is None:
        raise ValueError(f"{path.name}: no signature or certificate")
    return {"signature_offset": meta_at + sibo[0] + 8, "signature_length": sibo[1] - 8,
            "certificate_offset": meta_at + cert[0] + 8, "certificate_length": cert[1] - 8}


def verify_file(path: Path, export_public_pem: bytes | None = None) -> str:
    """'' when the file's ONVIF signature holds with its certificate (and, given the export key,
    the certificate was issued by it); else the reason. The file is read once, in blocks."""
    try:
        at = signature_layout(path)
    except (ValueError, OSError) as exc:
        return f"not an ONVIF export: {exc}"
    with path.open("rb") as f:
        f.seek(at["certificate_offset"])
        cert_der = f.read(at["certificate_length"])
        f.seek(at["signature_offset"])
        signature = f.read(at["signature_length"])
        f.seek(0)
        digest = hashlib.sha256()
        done, sig_at, sig_end = 0, at["signature_offset"], at["signature_offset"] + len(signature)
        for block in iter(lambda: f.read(1 << 20), b""):
            start, end = done, done + len(block)
            if start < sig_end and end > sig_at:  # the signature's bytes count as zeros
                lo, hi = max(sig_at, start) - start, min(sig_end, end) - start
                block = block[:lo] + bytes(hi - lo) + block[hi:]
            digest.update(block)
            done = end
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        public = cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            return "the certificate's key is not RSA"
        public.verify(signature, digest.digest(), PSS, Prehashed(hashes.SHA256()))
    except InvalidSignature:
        return "the ONVIF signature does not hold (the file was changed)"
    except ValueError as exc:
        return f"unreadable certificate: {exc}"
    if export_public_pem is not None:
        issuer = serialization.load_pem_public_key(export_public_pem)
        if not isinstance(issuer, Ed25519PublicKey):
            return "the export key is not Ed25519"
        try:
            issuer.verify(cert.signature, cert.tbs_certificate_bytes)
        except InvalidSignature:
            return "the certificate was not issued by the package's export key"
    return ""
