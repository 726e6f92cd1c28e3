"""Recordings encrypted at rest (issue 25; REGULATION.md R38): SeaweedFS, as `make run`, the suite,
Compose and Kubernetes start it, writes no object's bytes in clear on its volumes; the same
server without the option does (which proves the check can fail)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from vigie.local import servers
from vigie.plumbing.storage.objects import Buckets, ObjectStore

pytestmark = pytest.mark.integration


def _found_in_files(folder: Path, needle: bytes) -> list[Path]:
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            try:
                if needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


@pytest.mark.parametrize("encrypt", [True, False])
async def test_no_recording_lies_in_clear_on_the_volumes_R38(tmp_path: Path,
                                                            encrypt: bool) -> None:
    server = servers.start_seaweedfs(tmp_path / "s3", encrypt=encrypt)
    marker = b"VIGIE-CLEAR-" + secrets.token_hex(16).encode()
    try:
        store = ObjectStore(server.endpoint, server.access_key, server.secret_key)
        buckets = Buckets.with_prefix("rest")
        await store.ensure_buckets(buckets.all(), object_lock=buckets.locked())
        # 200 kB that do not compress (SeaweedFS gzips what does): kept in volume chunks.
        body = marker + secrets.token_bytes(200_000) + marker
        await store.put(buckets.recordings, "palaiseau/gare/seg.mp4", body)
        assert await store.get(buckets.recordings, "palaiseau/gare/seg.mp4") == body
    finally:
        server.process.stop()
    leaked = _found_in_files(tmp_path / "s3" / "data", marker)
    if encrypt:
        assert leaked == [], f"recording bytes in clear in {leaked}"
    else:
        assert leaked, "without the option SeaweedFS writes them in clear (the check can fail)"
