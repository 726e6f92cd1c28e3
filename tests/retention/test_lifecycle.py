"""The lifecycle backstop (invariant 3): one expiry rule per commune prefix, kept in step with the
communes' retention on SeaweedFS (the object store of `make run` and production), and applied by
its lifecycle worker on time; none on the holds bucket (legal holds, erased by retention); an
endpoint that refuses rules (rclone) makes `vigie status` say there is no backstop (R4)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from vigie.local import servers
from vigie.local.seaweed_filer import backdate
from vigie.local.status import BACKSTOP_SQL, render_text
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from services.retention.handlers import Lifecycle
from tests.harness import eventually, unique
from tests.retention.helpers import camera, commune, keys

pytestmark = pytest.mark.integration


async def test_rules_follow_a_retention_change_R4(
    db: asyncpg.Pool, s3_server: servers.SeaweedServer,
) -> None:
    objects = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    buckets = Buckets.with_prefix(unique("lc"))
    await objects.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    await commune(db, "palaiseau", 15)
    await commune(db, "ballainvilliers", 30)
    lifecycle = Lifecycle(db, objects, buckets)
    await lifecycle.sync()
    assert lifecycle.supported is True
    assert await objects.get_expiry_rules(buckets.recordings) == {
        "ballainvilliers/": 30, "palaiseau/": 15}
    # Packages: the retention service erases them at 30 days and journals it (issue 40); the
    # store's rule, a day later, is the backstop.
    assert await objects.get_expiry_rules(buckets.exports) == {"": 31}
    await db.execute("UPDATE communes SET retention_days = 10 WHERE slug = 'palaiseau'")
    await lifecycle.sync()
    assert await objects.get_expiry_rules(buckets.recordings) == {
        "ballainvilliers/": 30, "palaiseau/": 10}
    assert await db.fetchval(BACKSTOP_SQL) is True
    # No rule on the holds bucket: its copies are under legal hold until retention erases them.
    assert await objects.get_expiry_rules(buckets.holds) == {}


async def test_an_endpoint_without_lifecycle_rules_reports_no_backstop(
    db: asyncpg.Pool, rclone_server: servers.S3Server,
) -> None:
    objects = ObjectStore(rclone_server.endpoint, rclone_server.access_key,
                          rclone_server.secret_key)
    buckets = Buckets.with_prefix(unique("lc"))
    await objects.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    await commune(db, "palaiseau", 15)
    await camera(db, "gare")
    lifecycle = Lifecycle(db, objects, buckets)
    await lifecycle.sync()
    assert lifecycle.supported is False
    backstop = await db.fetchval(BACKSTOP_SQL)
    assert backstop is False
    text = render_text({"web": "-", "services": {}, "cameras": [], "lifecycle_backstop": backstop})
    assert "NO BACKSTOP" in text and "retention service alone erases" in text


async def test_a_refused_lifecycle_call_is_tried_again_not_given_up_R4(
    db: asyncpg.Pool, s3_server: servers.SeaweedServer,
) -> None:
    """Issue 17: one failed lifecycle call disabled the backstop until the service restarted."""
    objects = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    buckets = Buckets.with_prefix(unique("lc"))
    await commune(db, "palaiseau", 15)
    now = [1000.0]
    lifecycle = Lifecycle(db, objects, buckets, retry_s=600, clock=lambda: now[0])
    await lifecycle.sync()  # the bucket is not there yet: the endpoint refuses
    assert lifecycle.supported is False and await db.fetchval(BACKSTOP_SQL) is False
    await objects.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    now[0] += 60
    await lifecycle.sync()
    assert lifecycle.supported is False, "not hammered: tried again after the retry delay"
    now[0] += 600
    await lifecycle.sync()
    assert lifecycle.supported is True and await db.fetchval(BACKSTOP_SQL) is True
    assert await objects.get_expiry_rules(buckets.recordings) == {"palaiseau/": 15}


async def test_the_object_store_erases_a_recording_when_its_rule_falls_due_R4(
    db: asyncpg.Pool, s3_server: servers.SeaweedServer,
) -> None:
    """The backstop for real: SeaweedFS's lifecycle worker (as `make run` runs it) deletes an
    object when its commune's rule falls due, not before, and leaves another commune's alone. A
    rule counts whole days: the objects are backdated so that one falls due a few seconds from now
    (the lateness is measured by bench/lifecycle.py)."""
    objects = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    buckets = Buckets.with_prefix(unique("lc"))
    await objects.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    await commune(db, "palaiseau", 1)
    await commune(db, "ballainvilliers", 30)
    lifecycle = Lifecycle(db, objects, buckets)
    await lifecycle.sync()
    assert lifecycle.supported is True
    due_soon = "palaiseau/gare/2026/11/29/10/a.mp4"
    not_due = "palaiseau/gare/2026/11/29/10/b.mp4"
    other = "ballainvilliers/mairie/2026/11/01/10/c.mp4"
    for key in (due_soon, not_due, other):
        await objects.put(buckets.recordings, key, b"segment")
    now = int(time.time())
    day = 86_400
    filer = f"127.0.0.1:{s3_server.filer_grpc_port}"
    due = now + 4
    backdate(filer, buckets.recordings, due_soon, due - day)
    backdate(filer, buckets.recordings, not_due, now + 3_600 - day)  # due in an hour
    backdate(filer, buckets.recordings, other, now - 20 * day)  # 20 days old, kept 30

    assert due_soon in await keys(objects, buckets.recordings), "not erased before it is due"
    await eventually(lambda: _gone(objects, buckets.recordings, due_soon), timeout_s=30,
                     message="the due recording was not erased by the lifecycle worker")
    assert time.time() >= due, "erased before it was due"
    await asyncio.sleep(5)  # two more passes of the worker
    assert await keys(objects, buckets.recordings) == {not_due, other}


async def _gone(objects: ObjectStore, bucket: str, key: str) -> bool:
    return await objects.stat(bucket, key) is None
