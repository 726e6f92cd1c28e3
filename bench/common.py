"""Shared helpers of the benchmarks: CPU time of this process and of children, percentiles."""

from __future__ import annotations

import asyncio
import resource
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from vigie.local.supervisor import default_footage

# The real clips beside the repository (../shared/footage, or VIGIE_FOOTAGE).
FOOTAGE = default_footage() or Path(__file__).resolve().parent.parent.parent / "shared" / "footage"


async def wait_until(check: Callable[[], Awaitable[object]], *, timeout_s: float,
                     what: str) -> None:
    """Poll an async condition every 0.2 s; a benchmark that cannot finish says what it waited
    for."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} (after {timeout_s:.0f} s)")
        await asyncio.sleep(0.2)


def cpu_self_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timed_child(argv: list[str], timeout_s: float) -> tuple[float, float]:
    """Run a command; return (wall seconds, CPU seconds it used)."""
    before = cpu_children_s()
    t0 = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s,
                   check=False)
    return time.monotonic() - t0, cpu_children_s() - before


async def seed_bench_cameras(dsn: str, urls: dict[str, str],
                             masks: list[dict[str, object]] | None = None) -> None:
    """Migrate, then one commune 'b' with one active camera per URL (and approved masks)."""
    import json

    import asyncpg
    from vigie.plumbing.db.migrate import migrate

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('b', 'B', 1) "
                           "ON CONFLICT DO NOTHING")
        # R3: masking films only cameras under a valid prefectoral authorisation.
        authorisation = await conn.fetchval(
            "INSERT INTO authorisations (commune, reference, granted_on, valid_until, purposes, "
            "recipients, retention_max_days, created_by) VALUES ('b', $1, current_date - 1, "
            "current_date + 365, '{protection des bâtiments publics}', '{municipal_police}', 30, "
            "'bench') RETURNING id", f"bench-{id(urls)}")
        for slug, url in urls.items():
            cid = await conn.fetchval("INSERT INTO cameras (commune, slug, name, state, "
                                      "authorisation_id) VALUES ('b', $1, $1, 'active', $2) "
                                      "RETURNING id", slug, authorisation)
            await conn.execute("INSERT INTO camera_sources VALUES ($1, $2)", cid, url)
            if masks is not None:
                await conn.execute(
                    "INSERT INTO masks (camera_id, version, document, author, approved_by, "
                    "approved_at) VALUES ($1, 1, $2::jsonb, 'bench', 'bench', now())", cid,
                    json.dumps({"schema_version": 1, "version": 1, "masks": masks}))
    finally:
        await conn.close()


def bench_settings(nats_url: str, probe_password: str, dsn: str):  # type: ignore[no-untyped-def]
    """As the harness's probe user, which stands in for cameras and reads every stream."""
    from vigie.local.servers import PROBE_USER
    from vigie.plumbing.settings import CommonSettings

    return CommonSettings(local_mode=True, nats_url=nats_url, nats_user=PROBE_USER,
                          nats_password=probe_password, postgres_dsn=dsn,
                          s3_endpoint="127.0.0.1:1", s3_access_key="unused",
                          s3_secret_key="unused")


def run_in_scratch(work: Callable[[Path], Awaitable[None]]) -> None:
    """A benchmark's main: quiet logs, a scratch folder under /tmp (readable by the postgres
    user), removed afterwards."""
    import asyncio
    import signal
    import tempfile

    from vigie.plumbing.log import configure_logging

    configure_logging(level="warning", fmt="console")
    # SIGTERM (a timeout, a Ctrl-C from a supervisor) ends the run through its `finally` blocks,
    # which stop what it started, as SIGINT does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        Path(tmp).chmod(0o755)
        asyncio.run(work(Path(tmp)))


# What VIDEO holds and what the recorder must store of it: one definition, in the library
# (the e2e tests and compose-check use it too).
from vigie.plumbing.bus.video_accounting import (  # noqa: E402
    RECORDER_GAP_NS,
    VideoHeader,
    video_frames_to_store,
    video_headers,
)

__all__ = ["RECORDER_GAP_NS", "VideoHeader", "video_frames_to_store", "video_headers"]


COSTS = Path(__file__).resolve().parent.parent / "libs" / "vigie" / "sizing" / "costs.json"


def record_cost(keys: list[str], value: float, bench: str) -> None:
    """Write a measured per-camera cost into the one file `vigie sizing` reads (--record)."""
    import datetime as dt
    import json

    costs = json.loads(COSTS.read_text())
    entry = costs
    for key in keys[:-1]:
        entry = entry.setdefault(key, {})
    entry[keys[-1]] = {"value": round(value, 4), "bench": bench,
                       "measured": dt.date.today().isoformat()}
    COSTS.write_text(json.dumps(costs, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded {'.'.join(keys)} = {value:.4g} in {COSTS}")
