"""Object storage round trips and lifecycle rules against SeaweedFS (the object store of `make run`
and production); rclone, an S3 endpoint without lifecycle rules, says so."""

from __future__ import annotations

import pytest
from vigie.local import servers
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from tests.harness import unique

pytestmark = pytest.mark.integration


async def test_storage_round_trips(store: tuple[ObjectStore, Buckets]) -> None:
    objects, buckets = store
    key = "palaiseau/gare/2026/11/23/10/2026-11-23T10:00:00Z.mp4"
    payload = bytes(range(256)) * 1000
    await objects.put(buckets.recordings, key, payload, content_type="video/mp4")
    assert await objects.get(buckets.recordings, key) == payload
    info = await objects.stat(buckets.recordings, key)
    assert info is not None and info.size_bytes == len(payload)
    await objects.put(buckets.recordings, "palaiseau/other/x.mp4", b"x")
    listed = [o.key for o in await objects.list_objects(buckets.recordings, prefix="palaiseau/gare/")]
    assert listed == [key]
    failed = await objects.delete_many(buckets.recordings, [key, "palaiseau/other/x.mp4", "absent"])
    assert failed == []
    assert await objects.stat(buckets.recordings, key) is None
    assert await objects.list_objects(buckets.recordings) == []


async def test_rclone_refuses_lifecycle_rules_and_says_so(rclone_server: servers.S3Server) -> None:
    objects = ObjectStore(rclone_server.endpoint, rclone_server.access_key,
                          rclone_server.secret_key)
    bucket = unique("t") + "-recordings"
    await objects.ensure_buckets([bucket])
    assert await objects.set_expiry_rules(bucket, {"palaiseau/": 15}) is False


async def test_lifecycle_rules_stored_and_read_back(s3_server: servers.S3Server) -> None:
    objects = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    bucket = unique("t") + "-recordings"
    await objects.ensure_buckets([bucket])
    rules = {"palaiseau/": 15, "ballainvilliers/": 30}
    assert await objects.set_expiry_rules(bucket, rules) is True
    assert await objects.get_expiry_rules(bucket) == rules
    assert await objects.set_expiry_rules(bucket, {"palaiseau/": 10}) is True
    assert await objects.get_expiry_rules(bucket) == {"palaiseau/": 10}


async def test_the_object_store_takes_as_many_buckets_as_the_suite_makes(
    s3_server: servers.S3Server,
) -> None:
    """Each bucket is a SeaweedFS collection that used to take seven volumes at its first write:
    the suite (buckets per test) exhausted the server's volumes and PUTs failed with
    InternalError in CI. Eighty buckets written and read back."""
    objects = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    prefix = unique("many")
    names = [f"{prefix}-{i:02d}" for i in range(80)]
    await objects.ensure_buckets(names)
    for name in names:
        await objects.put(name, "palaiseau/probe", name.encode())
    for name in names:
        assert await objects.get(name, "palaiseau/probe") == name.encode()
