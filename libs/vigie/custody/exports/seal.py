"""Sealing an evidence package (DESIGN.md "Evidence that leaves Vigie"): requisition exports and
offence hand-over files share it, so `vigie export verify` and the standard tools check either.
The manifest lists every file with its size and SHA-256 and is signed (Ed25519) by the
deployment's key, whose public half goes beside it; SHA256SUMS lists every file but itself and is
signed too (SHA256SUMS.sig), so that `openssl` and `sha256sum` alone check the whole package.
The verifier holds a package to exactly these files: one added, even with its line in SHA256SUMS,
is refused (issue 34)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from vigie.security.signing import SigningKey

SUMS = "SHA256SUMS"
SUMS_SIGNATURE = "SHA256SUMS.sig"
NOT_IN_SUMS = {SUMS, SUMS_SIGNATURE}
# Written after the manifest's list of files is taken: the only files it does not name.
SEAL_FILES = frozenset({"manifest.json", "manifest.sig", "cle-publique.pem", SUMS,
                        SUMS_SIGNATURE})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal(work: Path, manifest: dict[str, Any], key: SigningKey) -> bytes:
    """Write manifest.json (with the files already in `work`), its signature, the public key,
    SHA256SUMS and its signature; returns the manifest's bytes."""
    manifest["files"] = [
        {"path": p.relative_to(work).as_posix(), "size": p.stat().st_size,
         "sha256": sha256_file(p)}
        for p in sorted(work.rglob("*")) if p.is_file()]
    body = (json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n").encode()
    (work / "manifest.json").write_bytes(body)
    (work / "manifest.sig").write_bytes(key.sign(body))
    (work / "cle-publique.pem").write_bytes(key.public_pem())
    sums = [f"{sha256_file(p)}  {p.relative_to(work).as_posix()}"
            for p in sorted(work.rglob("*")) if p.is_file() and p.name not in NOT_IN_SUMS]
    listing = ("\n".join(sums) + "\n").encode()
    (work / SUMS).write_bytes(listing)
    (work / SUMS_SIGNATURE).write_bytes(key.sign(listing))
    return body


def zip_folder(folder: Path, target: Path, root: str) -> None:
    """Stored, not deflated: H.264 and JPEG do not compress, and a reader can seek into videos."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, f"{root}/{path.relative_to(folder).as_posix()}")
