"""Two real retention processes sweeping the same database and bucket at once: every expired object
is deleted once, journaled once, and neither fails (REGULATION.md R7; issue 8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from services.recorder.core import object_key
from tests.conftest import settings_env
from tests.harness import eventually
from tests.retention.helpers import ago, camera, commune, keys, segment

pytestmark = pytest.mark.integration


async def test_two_sweepers_at_once_delete_each_expired_object_once_without_error_R7(
    settings_for: Callable[..., CommonSettings], streams: BusNames, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    expired: list[str] = []
    kept: set[str] = set()
    for slug in ("gare", "mairie"):
        cid = await camera(db, slug, days=2)
        for i in range(60):
            expired.append(await segment(db, objects, buckets.recordings, cid, slug=slug,
                                         end=ago(3, minutes=i)))
        kept.add(await segment(db, objects, buckets.recordings, cid, slug=slug, end=ago(1)))
        orphan = object_key("palaiseau", slug, int(ago(5).timestamp()) * 10**9)
        await objects.put(buckets.recordings, orphan, b"orphan")
    env = {**os.environ, **settings_env(settings_for("retention")), "VIGIE_LOG_FORMAT": "json",
           "VIGIE_RETENTION_SWEEP_INTERVAL_S": "0.3", "VIGIE_RETENTION_BATCH": "5",
           "VIGIE_RETENTION_HTTP_PORT": "0"}
    logs = [tmp_path / f"retention-{i}.log" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "vigie.cli.main", "service", "retention"],
                              env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
             for log in logs]
    try:
        await eventually(lambda: db.fetchval("SELECT count(*) = 2 FROM segments"), timeout_s=60,
                         message="the expired segments were not all erased")

        async def only_kept_left() -> bool:
            return await keys(objects, buckets.recordings) == kept

        await eventually(only_kept_left, timeout_s=30, message="orphans or segments left")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=30) for p in procs]
    assert codes == [0, 0]
    journal = await db.fetch("SELECT reason, details FROM audit_log WHERE action = 'deletion'")
    by_cause: dict[str, int] = {}
    for j in journal:
        details = json.loads(j["details"])
        by_cause[j["reason"]] = by_cause.get(j["reason"], 0) + details["objects"]
    assert by_cause == {"retention": 120, "orphan": 2}, "each deletion journaled exactly once"
    for log in logs:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        assert lines, f"{log.name}: no structured log"
        problems = [line for line in lines if line.get("level") in ("error", "critical")
                    or "retry_next_sweep" in line.get("event", "")]
        assert not problems, problems[:3]
