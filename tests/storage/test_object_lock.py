"""Evidence copies of holds under S3 object lock (issue 25; REGULATION.md R18, R4): while a hold
stands, no identity — the object store's administrator included — erases a copy by accident or in
bulk; once it is released, retention erases every version, so nothing of it is left behind a delete
marker. An endpoint without object lock still gets a working (plain) holds bucket."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from minio import Minio
from minio.error import S3Error
from vigie.custody.holds import move_legacy_copies
from vigie.local import servers
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from tests.harness import unique

pytestmark = pytest.mark.integration

KEY = "holds/7/palaiseau/gare/2026/11/30/10/seg.mp4"


async def test_a_held_copy_survives_every_delete_until_retention_lifts_its_hold_R18_R4(
    s3_server: servers.SeaweedServer, store: tuple[ObjectStore, Buckets],
    service_store: Callable[[str], ObjectStore],
) -> None:
    admin, buckets = store
    assert await admin.object_lock(buckets.holds), "the holds bucket is made with object lock"
    assert not await admin.object_lock(buckets.evidence), "stills and checkpoints: a plain bucket"
    retention = service_store("retention")
    await retention.put_held(buckets.holds, KEY, b"held copy")
    assert await admin.legal_hold(buckets.holds, KEY)
    [version] = await admin.versions(buckets.holds, KEY)

    # The administrator's own keys: a plain delete only hides the copy behind a marker, and
    # deleting the version itself is refused while the legal hold stands.
    raw = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False,
                region="us-east-1")
    await admin.delete(buckets.holds, KEY)
    with pytest.raises(S3Error) as refused:
        raw.remove_object(buckets.holds, KEY, version_id=version.version_id)
    assert refused.value.code == "AccessDenied"
    assert raw.get_object(buckets.holds, KEY, version_id=version.version_id).read() == b"held copy"
    # The gateway cannot erase it either.
    with pytest.raises(S3Error) as refused:
        raw_gateway = Minio(s3_server.endpoint, *s3_server.as_service("viewer-gateway"),
                            secure=False, region="us-east-1")
        raw_gateway.remove_object(buckets.holds, KEY, version_id=version.version_id)
    assert refused.value.code == "AccessDenied"

    # Retention, once the hold is released: the legal hold lifted, every version and marker gone.
    assert await retention.erase(buckets.holds, [KEY]) == []
    assert await admin.versions(buckets.holds, "holds/7/") == []


async def test_copies_made_before_the_holds_bucket_are_moved_under_lock_by_init_R18(
    store: tuple[ObjectStore, Buckets],
) -> None:
    admin, buckets = store
    await admin.put(buckets.evidence, KEY, b"older copy")
    await admin.put(buckets.evidence, "offences/palaiseau/1/1.jpg", b"still")
    assert await move_legacy_copies(admin, evidence=buckets.evidence, holds=buckets.holds) == 1
    assert await admin.get(buckets.holds, KEY) == b"older copy"
    assert await admin.legal_hold(buckets.holds, KEY)
    assert [o.key for o in await admin.list_objects(buckets.evidence)] == [
        "offences/palaiseau/1/1.jpg"], "the stills stay; the copy is not left behind"
    assert await move_legacy_copies(admin, evidence=buckets.evidence, holds=buckets.holds) == 0


async def test_an_endpoint_without_object_lock_gets_a_plain_holds_bucket(
    rclone_server: servers.S3Server,
) -> None:
    objects = ObjectStore(rclone_server.endpoint, rclone_server.access_key,
                          rclone_server.secret_key)
    buckets = Buckets.with_prefix(unique("nolock"))
    await objects.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    assert not await objects.object_lock(buckets.holds)
    await objects.put(buckets.holds, KEY, b"copy")
    assert await objects.erase(buckets.holds, [KEY]) == []
    assert await objects.list_objects(buckets.holds) == []


async def test_a_holds_bucket_made_after_the_question_is_seen_locked(
    s3_server: servers.SeaweedServer,
) -> None:
    """A service asking before `vigie init` made the bucket must not remember « no lock » and go
    on putting copies without a legal hold once it exists."""
    objects = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    buckets = Buckets.with_prefix(unique("late"))
    assert not await objects.object_lock(buckets.holds)
    await objects.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    assert await objects.object_lock(buckets.holds)
    await objects.erase_prefix(buckets.holds, "")
