"""Check a package (folder or ZIP) with nothing but the package: every file against SHA256SUMS, no
file that SHA256SUMS does not list, the manifest's signature with the package's public key, the
manifest's own list of files, and, when given, the key's fingerprint against the one the
deployment publishes. The first problem is named; `vigie export verify` exits 1 on it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from vigie.exports.signing import fingerprint, signature_holds

SIGNED = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "cle-publique.pem"
SUMS = "SHA256SUMS"


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def _reader(package: Path) -> tuple[set[str], Callable[[str], bytes]]:
    """The package's file names (relative, POSIX) and a way to read each."""
    if package.is_dir():
        names = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
        return names, lambda name: (package / name).read_bytes()
    archive = zipfile.ZipFile(package)
    entries = [i.filename for i in archive.infolist() if not i.is_dir()]
    roots = {PurePosixPath(n).parts[0] for n in entries}
    prefix = f"{roots.pop()}/" if len(roots) == 1 and all("/" in n for n in entries) else ""
    names = {n.removeprefix(prefix) for n in entries}
    return names, lambda name: archive.read(prefix + name)


def verify_package(package: Path, *, trusted_fingerprint: str | None = None) -> Verdict:
    verdict = Verdict()
    try:
        names, read = _reader(package)
    except (OSError, zipfile.BadZipFile) as exc:
        return Verdict([f"{package}: not a package folder or ZIP ({exc})"])
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
    for name in sorted(names - set(listed) - {SUMS}):
        verdict.problems.append(f"{name}: a file {SUMS} does not list (added to the package)")
    public_key, body = read(PUBLIC_KEY), read(SIGNED)
    if not signature_holds(public_key, body, read(SIGNATURE)):
        verdict.problems.append(f"{SIGNATURE}: the signature of {SIGNED} does not hold with "
                                f"{PUBLIC_KEY} (changed, or signed by another key)")
    try:
        manifest = json.loads(body)
        declared = {f["path"]: f["sha256"] for f in manifest["files"]}
    except (ValueError, KeyError, TypeError):
        verdict.problems.append(f"{SIGNED}: not a Vigie manifest")
        return verdict
    for name, digest in sorted(declared.items()):
        if listed.get(name) != digest:
            verdict.problems.append(f"{name}: the signed manifest gives another SHA-256")
    try:
        verdict.fingerprint = fingerprint(public_key)
    except (ValueError, TypeError):
        verdict.problems.append(f"{PUBLIC_KEY}: not a public key")
        return verdict
    if trusted_fingerprint and verdict.fingerprint != trusted_fingerprint:
        verdict.problems.append(f"{PUBLIC_KEY}: fingerprint {verdict.fingerprint} is not the "
                                f"deployment's ({trusted_fingerprint}): signed by another key")
    verdict.files = len(listed)
    return verdict
