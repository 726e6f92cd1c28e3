"""Check a package (folder or ZIP) with nothing but the package: exactly the files the signed
manifest lists (plus the seal's own files) — none missing, none added, none twice in a ZIP —, each
against its SHA-256, SHA256SUMS saying the same and signed, the manifest's signature with the
package's public key and, when given, the key's fingerprint against the one the deployment
publishes. Without that fingerprint nothing ties the package to the deployment: the verdict says
so (`anchored` is False) rather than « OK » (issue 34). The first problem is named; `vigie export
verify` exits 1 on it."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vigie.custody import provenance
from vigie.custody.exports import onvif
from vigie.custody.exports.seal import SEAL_FILES, SUMS, SUMS_SIGNATURE
from vigie.media.payload import split_payload
from vigie.security.signing import fingerprint, signature_holds

SIGNED = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "cle-publique.pem"
ACCESS_COPY = "vigie-access-copy/1"  # vigie.custody.access_copies.FORMAT (not imported: no DB here)
NOT_LISTED = frozenset({SUMS, SUMS_SIGNATURE})


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why
    chained: int = 0  # segments whose recorder's link was checked
    onvif: int = 0  # ONVIF export files whose own signature was checked
    anchored: bool = False  # the key is the one the deployment publishes (a fingerprint given)

    @property
    def ok(self) -> bool:
        """Intact as signed. Whether the signer is the deployment is `anchored`."""
        return not self.problems


@dataclass
class _Package:
    names: set[str]
    read: Callable[[str], bytes]
    path: Callable[[str], Path]  # a file on disk (a ZIP's member is extracted to scratch)


def _reader(package: Path, scratch: Path) -> _Package:
    """The package's file names (relative, POSIX) and ways to read each."""
    if package.is_dir():
        names = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
        return _Package(names, lambda name: (package / name).read_bytes(),
                        lambda name: package / name)
    archive = zipfile.ZipFile(package)
    entries = [i.filename for i in archive.infolist() if not i.is_dir()]
    roots = {PurePosixPath(n).parts[0] for n in entries}
    prefix = f"{roots.pop()}/" if len(roots) == 1 and all("/" in n for n in entries) else ""
    twice = sorted({n.removeprefix(prefix) for n in entries if entries.count(n) > 1})
    if twice:
        # A reader shows one of the two, the verifier would read another: refused outright.
        raise DuplicateMember(f"{twice[0]}: twice in the ZIP (a viewer may show the other one)")
    names = {n.removeprefix(prefix) for n in entries}

    def extracted(name: str) -> Path:
        target = scratch / hashlib.sha256(name.encode()).hexdigest()
        with archive.open(prefix + name) as src, target.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        return target

    return _Package(names, lambda name: archive.read(prefix + name), extracted)


class DuplicateMember(ValueError):
    pass


def verify_package(package: Path, *, trusted_fingerprint: str | None = None) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="vigie-verify-") as scratch:
        return _verify(package, Path(scratch), trusted_fingerprint)


def _verify(package: Path, scratch: Path, trusted_fingerprint: str | None) -> Verdict:
    verdict = Verdict()
    try:
        pkg = _reader(package, scratch)
    except (OSError, zipfile.BadZipFile) as exc:
        return Verdict([f"{package}: not a package folder or ZIP ({exc})"])
    except DuplicateMember as exc:
        return Verdict([str(exc)])
    names, read = pkg.names, pkg.read
    unsafe = sorted(n for n in names if n.startswith("/") or ".." in PurePosixPath(n).parts)
    if unsafe:
        return Verdict([f"{unsafe[0]}: a path outside the package"])
    for needed in (SUMS, SIGNED, SIGNATURE, PUBLIC_KEY):
        if needed not in names:
            verdict.problems.append(f"{needed}: missing")
    if verdict.problems:
        return verdict
    listed: dict[str, str] = {}
    for line in read(SUMS).decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            verdict.problems.append(f"{SUMS}: malformed line {line[:80]!r}")
            return verdict
        listed[name] = digest
    for name in sorted(listed):
        if name not in names:
            verdict.problems.append(f"{name}: listed in {SUMS} but missing")
        elif hashlib.sha256(read(name)).hexdigest() != listed[name]:
            verdict.problems.append(f"{name}: its SHA-256 differs from {SUMS} (the file was changed)")
    for name in sorted(names - set(listed) - NOT_LISTED):
        verdict.problems.append(f"{name}: a file {SUMS} does not list (added to the package)")
    public_key, body = read(PUBLIC_KEY), read(SIGNED)
    if not signature_holds(public_key, body, read(SIGNATURE)):
        verdict.problems.append(f"{SIGNATURE}: the signature of {SIGNED} does not hold with "
                                f"{PUBLIC_KEY} (changed, or signed by another key)")
    if SUMS_SIGNATURE in names:
        if not signature_holds(public_key, read(SUMS), read(SUMS_SIGNATURE)):
            verdict.problems.append(f"{SUMS_SIGNATURE}: the signature of {SUMS} does not hold "
                                    f"with {PUBLIC_KEY} (changed, or signed by another key)")
    else:
        verdict.notes.append(f"{SUMS} is not signed (a package made before it was): its lines "
                             "are checked against the signed manifest instead")
    try:
        manifest = json.loads(body)
        declared = {f["path"]: f["sha256"] for f in manifest["files"]}
    except (ValueError, KeyError, TypeError):
        verdict.problems.append(f"{SIGNED}: not a Vigie manifest")
        return verdict
    for name, digest in sorted(declared.items()):
        if listed.get(name) != digest:
            verdict.problems.append(f"{name}: the signed manifest gives another SHA-256")
    # Exactly what the signature covers: a file the signed manifest does not name is not
    # evidence, whatever SHA256SUMS says of it.
    for name in sorted(names - set(declared) - SEAL_FILES):
        verdict.problems.append(f"{name}: a file the signed manifest does not list (added to "
                                "the package)")
    try:
        verdict.fingerprint = fingerprint(public_key)
    except (ValueError, TypeError):
        verdict.problems.append(f"{PUBLIC_KEY}: not a public key")
        return verdict
    if trusted_fingerprint and verdict.fingerprint != trusted_fingerprint:
        verdict.problems.append(f"{PUBLIC_KEY}: fingerprint {verdict.fingerprint} is not the "
                                f"deployment's ({trusted_fingerprint}): signed by another key")
    verdict.anchored = bool(trusted_fingerprint) and verdict.fingerprint == trusted_fingerprint
    verdict.files = len(listed)
    if not verdict.problems:  # the media checks stand on files the signature covers
        _check_media(pkg, manifest, public_key, verdict)
    return verdict


def _check_media(pkg: _Package, manifest: dict[str, Any], export_pem: bytes,
                 verdict: Verdict) -> None:
    """Each ONVIF file's own signature; each segment's link from the recorder (its fields, its
    signature, its place after the previous segment) and its picture data in both videos."""
    keys = {fp: pem.encode() for fp, pem in manifest.get("recording_keys", {}).items()}
    if manifest.get("format") == ACCESS_COPY:
        verdict.notes.append(f"a right-of-access copy: redacted, so re-encoded — its pictures are "
                             f"new; manifest.json names the {len(manifest.get('source', []))} "
                             "recording(s) it was made from, with their SHA-256")
    for camera in manifest.get("cameras", []):
        for part in camera.get("parts", []):
            if part.get("onvif"):
                problem = onvif.verify_file(pkg.path(part["onvif"]), export_pem)
                if problem:
                    verdict.problems.append(f"{part['onvif']}: {problem}")
                verdict.onvif += 1
            _check_chain(pkg, camera["camera"], part, keys, verdict)


def _check_chain(pkg: _Package, camera: str, part: dict[str, Any], keys: dict[str, bytes],
                 verdict: Verdict) -> None:
    segments = part.get("segments", [])
    links = [s.get("provenance") for s in segments]
    if not all(links):
        verdict.notes.append(f"{part['video']}: {sum(1 for x in links if not x)} segment(s) "
                             "recorded without the recorder's chain (before it existed)")
        return
    previous: dict[str, Any] | None = None
    for seg, data in zip(segments, links, strict=True):
        assert data is not None
        link = provenance.Link.from_dict(camera, data)
        if data["sha256"] != seg["sha256"]:
            verdict.problems.append(f"{part['video']}: segment {seg['start']}: the recorder "
                                    "signed another file than the evidence copy")
            return
        problem = provenance.check_link(link, data["link"], data.get("signature"),
                                        keys.get(data.get("key") or ""))
        if problem.startswith("not signed"):
            verdict.notes.append(f"{part['video']}: segment {seg['start']}: {problem}")
        elif problem:
            verdict.problems.append(f"{part['video']}: segment {seg['start']}: {problem}")
            return
        if previous is not None and (link.prev != previous["link"]
                                     or link.seq != previous["seq"] + 1):
            verdict.problems.append(f"{part['video']}: the recorder's chain is broken before "
                                    f"{seg['start']} (a segment was taken out)")
            return
        previous = data
    frames = [int(d["frames"]) for d in links if d]
    expected = [d["payload_sha256"] for d in links if d]
    for video in dict.fromkeys((part["video"], part.get("onvif"))):  # one file, or two
        if video and split_payload(pkg.path(video), frames) != expected:
            verdict.problems.append(f"{video}: its pictures are not the ones the recorder "
                                    "signed")
            return
    verdict.chained += len(segments)
