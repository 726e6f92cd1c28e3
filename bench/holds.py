"""Placing a hold's copies under object lock: each segment read back, checked against its SHA-256
and put under a legal hold (what `vigie.custody.holds` does since issue 25), beside the server-side copy it
replaced (SeaweedFS ignores a legal hold asked on a copy) in the same run, on the same SeaweedFS;
then retention's erasure of every version once released.

    python -m bench.holds [--segments 30] [--megabytes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

from minio.commonconfig import CopySource
from vigie.local import servers
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from bench.common import median


async def _run(segments: int, size: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="vigie-bench-holds-") as tmp:
        server = servers.start_seaweedfs(Path(tmp) / "s3")
        try:
            store = ObjectStore(server.endpoint, server.access_key, server.secret_key)
            buckets = Buckets.with_prefix("bench")
            await store.ensure_buckets(buckets.all(), object_lock=buckets.locked())
            assert await store.object_lock(buckets.holds)
            keys = [f"palaiseau/gare/2026/11/30/10/{i:04d}.mp4" for i in range(segments)]
            digests = {}
            for key in keys:  # incompressible, as video is
                data = os.urandom(size)
                digests[key] = hashlib.sha256(data).hexdigest()
                await store.put(buckets.recordings, key, data)
            client = store._client  # noqa: SLF001 - the baseline calls the SDK directly

            async def server_side(run: int) -> None:
                for key in keys:
                    await asyncio.to_thread(client.copy_object, buckets.evidence,
                                            f"copy/{run}/{key}",
                                            CopySource(buckets.recordings, key))

            async def checked_and_locked(run: int) -> None:
                for key in keys:
                    data = await store.get(buckets.recordings, key)
                    assert hashlib.sha256(data).hexdigest() == digests[key]
                    await store.put_held(buckets.holds, f"holds/{run}/{key}", data,
                                         content_type="video/mp4")

            copy_s, lock_s, erase_s = [], [], []
            for run in range(runs):
                t = time.perf_counter()
                await server_side(run)
                copy_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                await checked_and_locked(run)
                lock_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                assert not await store.erase(buckets.holds,
                                             [f"holds/{run}/{k}" for k in keys])
                erase_s.append(time.perf_counter() - t)
            assert await store.versions(buckets.holds, "") == []
        finally:
            server.process.stop()
    total_mb = segments * size / 2**20
    base, ours = median(copy_s), median(lock_s)
    print(f"{segments} segments of {size / 2**20:.1f} MiB ({total_mb:.0f} MiB), median of {runs}:")
    print(f"  server-side copy (before)            {base:6.2f} s  {total_mb / base:6.0f} MiB/s")
    print(f"  read, SHA-256, put under legal hold   {ours:6.2f} s  {total_mb / ours:6.0f} MiB/s"
          f"  ({ours / base:.2f}x the copy)")
    print(f"  erase every version (legal hold lifted) {median(erase_s):4.2f} s  "
          f"({median(erase_s) / segments * 1000:.0f} ms a copy)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=30)
    parser.add_argument("--megabytes", type=float, default=5.0,
                        help="per segment (a 60-s 1080p segment is about 5–15 MB)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_run(args.segments, int(args.megabytes * 2**20), args.runs))


if __name__ == "__main__":
    main()
