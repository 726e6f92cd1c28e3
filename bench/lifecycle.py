"""Is the lifecycle backstop on time? SeaweedFS (the object store of every deployment) with its
lifecycle worker passing every `--refresh` seconds; `--objects` recordings whose one-day rule falls
due at staggered instants over the next `--spread` seconds (backdated in the filer: S3 rules count
whole days). Prints, per object, how late after its due instant it was erased, against the
worker's pass interval (the lateness one expects: up to one pass).

    python -m bench.lifecycle [--objects 200] [--refresh 10] [--spread 60]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from vigie.local import servers
from vigie.local.seaweed_filer import backdate
from vigie.plumbing.storage.objects import ObjectStore

from bench.common import percentile

DAY = 86_400


async def measure(objects: int, refresh_s: float, spread_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="vigie-bench-lifecycle-") as folder:
        s3 = servers.start_seaweedfs(Path(folder) / "s3")
        worker = servers.start_lifecycle_worker(s3, refresh_s=refresh_s)
        try:
            store = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key)
            bucket = "bench-recordings"
            await store.ensure_buckets([bucket])
            assert await store.set_expiry_rules(bucket, {"palaiseau/": 1})
            filer = f"127.0.0.1:{s3.filer_grpc_port}"
            start = time.time() + 10
            due: dict[str, float] = {}
            for i in range(objects):
                key = f"palaiseau/gare/2026/11/30/10/{i:05d}.mp4"
                await store.put(bucket, key, b"segment")
                at = int(start + spread_s * i / max(1, objects - 1))
                await asyncio.to_thread(backdate, filer, bucket, key, at - DAY)
                due[key] = at
            erased: dict[str, float] = {}
            deadline = start + spread_s + 4 * refresh_s + 30
            while len(erased) < objects and time.time() < deadline:
                present = {o.key for o in await store.list_objects(bucket, prefix="palaiseau/")}
                now = time.time()
                for key in due:
                    if key not in present and key not in erased:
                        erased[key] = now
                await asyncio.sleep(0.2)
        finally:
            worker.stop()
            s3.process.stop(timeout_s=20)
    late = [erased[k] - due[k] for k in erased]
    return {"objects": objects, "erased": len(erased), "early": sum(x < 0 for x in late),
            "p50": percentile(late, 50) if late else float("nan"),
            "p95": percentile(late, 95) if late else float("nan"),
            "max": max(late) if late else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--refresh", type=float, default=10.0, help="worker pass interval (s)")
    parser.add_argument("--spread", type=float, default=60.0, help="due instants over (s)")
    args = parser.parse_args()
    r = asyncio.run(measure(args.objects, args.refresh, args.spread))
    print(f"objects {r['objects']}, erased {r['erased']}, erased before due {r['early']}")
    print(f"lateness after due: p50 {r['p50']:.1f} s, p95 {r['p95']:.1f} s, max {r['max']:.1f} s")
    print(f"baseline: the worker's pass interval {args.refresh:g} s; "
          f"max lateness / interval = {r['max'] / args.refresh:.2f}")


if __name__ == "__main__":
    main()
