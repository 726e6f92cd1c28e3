"""Each service's object-store identity tries, against SeaweedFS, what its policy must refuse
(issue 25; REGULATION.md R4, R12, R38). The identities and policies are the ones `make run` and
production use (vigie.plumbing.storage.identities)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from minio.error import S3Error
from vigie.plumbing.catalog import SERVICES
from vigie.plumbing.storage.identities import (
    Keys,
    identity_name,
    key_env,
    policies_markdown,
    policy,
    seaweedfs_config,
)
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from tests.harness import REPO

pytestmark = pytest.mark.integration

Store = Callable[[str], ObjectStore]


async def _refused(what: Awaitable[Any]) -> None:
    with pytest.raises(S3Error) as caught:
        await what
    assert caught.value.code == "AccessDenied"


async def _fill(admin: ObjectStore, buckets: Buckets) -> None:
    await admin.put(buckets.recordings, "palaiseau/gare/seg.mp4", b"segment")
    await admin.put_held(buckets.holds, "holds/1/palaiseau/gare/seg.mp4", b"held")
    await admin.put(buckets.evidence, "offences/palaiseau/1/1.jpg", b"still")
    await admin.put(buckets.exports, "requisitions/1.zip", b"export")


@pytest.mark.parametrize("service", ["ingest", "masking"])
async def test_ingest_and_masking_reach_nothing_in_the_object_store_R38(
    store: tuple[ObjectStore, Buckets], service_store: Store, service: str,
) -> None:
    admin, buckets = store
    await _fill(admin, buckets)
    s3 = service_store(service)
    await _refused(s3.get(buckets.recordings, "palaiseau/gare/seg.mp4"))
    await _refused(s3.list_objects(buckets.recordings))
    await _refused(s3.put(buckets.recordings, "palaiseau/gare/x.mp4", b"x"))
    await _refused(s3.get(buckets.evidence, "offences/palaiseau/1/1.jpg"))


async def test_the_recorder_stores_recordings_and_cannot_delete_one_R4(
    store: tuple[ObjectStore, Buckets], service_store: Store,
) -> None:
    admin, buckets = store
    await _fill(admin, buckets)
    recorder = service_store("recorder")
    await recorder.put(buckets.recordings, "palaiseau/gare/new.mp4", b"new")
    assert await recorder.get(buckets.recordings, "palaiseau/gare/new.mp4") == b"new"
    await _refused(recorder.delete(buckets.recordings, "palaiseau/gare/seg.mp4"))
    assert await recorder.delete_many(buckets.recordings, ["palaiseau/gare/seg.mp4"]) \
        == ["palaiseau/gare/seg.mp4"], "a bulk delete is refused object by object"
    await _refused(recorder.put(buckets.holds, "holds/2/x.mp4", b"x"))
    await _refused(recorder.get(buckets.exports, "requisitions/1.zip"))
    assert await admin.get(buckets.recordings, "palaiseau/gare/seg.mp4") == b"segment"


async def test_only_retention_deletes_recordings_R4(
    store: tuple[ObjectStore, Buckets], service_store: Store,
) -> None:
    admin, buckets = store
    await _fill(admin, buckets)
    for service in ("viewer-gateway", "verbalisation", "recorder", "ingest", "masking"):
        await _refused(service_store(service).delete(buckets.recordings, "palaiseau/gare/seg.mp4"))
    retention = service_store("retention")
    assert await retention.delete_many(buckets.recordings, ["palaiseau/gare/seg.mp4"]) == []
    assert await retention.set_expiry_rules(buckets.recordings, {"palaiseau/": 15})
    assert await admin.stat(buckets.recordings, "palaiseau/gare/seg.mp4") is None


async def test_the_gateway_reads_and_writes_nothing_retention_puts_the_hold_copies_R18(
    store: tuple[ObjectStore, Buckets], service_store: Store,
) -> None:
    """Issue 34: the gateway no longer copies a hold inside its request; the retention service
    does, in the background, with the right to put copies under legal hold (which `make run`'s
    retention once lacked, so that every export asked from the screen stayed « building »)."""
    admin, buckets = store
    await _fill(admin, buckets)
    gateway, retention = service_store("viewer-gateway"), service_store("retention")
    assert await gateway.get(buckets.recordings, "palaiseau/gare/seg.mp4") == b"segment"
    assert await gateway.get(buckets.exports, "requisitions/1.zip") == b"export"
    assert await gateway.object_lock(buckets.holds)
    assert await gateway.get(buckets.holds, "holds/1/palaiseau/gare/seg.mp4") == b"held"
    await _refused(gateway.put_held(buckets.holds, "holds/2/palaiseau/gare/seg.mp4", b"held"))
    version = await retention.put_held(buckets.holds, "holds/2/palaiseau/gare/seg.mp4", b"held")
    assert await admin.legal_hold(buckets.holds, "holds/2/palaiseau/gare/seg.mp4", version)
    await _refused(retention.put(buckets.holds, "elsewhere/seg.mp4", b"x"))
    # The gateway erases nothing there: neither a copy, nor a version of one.
    await _refused(gateway.delete(buckets.holds, "holds/2/palaiseau/gare/seg.mp4"))
    await _refused(gateway.erase(buckets.holds, ["holds/2/palaiseau/gare/seg.mp4"]))
    await _refused(gateway.put(buckets.holds, "elsewhere/seg.mp4", b"x"))
    await _refused(gateway.put(buckets.recordings, "palaiseau/gare/forged.mp4", b"x"))
    await _refused(gateway.put(buckets.evidence, "offences/palaiseau/1/1.jpg", b"x"))
    await _refused(gateway.put(buckets.evidence, "register/checkpoints/1.json", b"x"))
    await _refused(gateway.put(buckets.exports, "requisitions/1.zip", b"x"))
    await _refused(gateway.delete(buckets.exports, "requisitions/1.zip"))


async def test_verbalisation_keeps_to_its_offences_R31(
    store: tuple[ObjectStore, Buckets], service_store: Store,
) -> None:
    admin, buckets = store
    await _fill(admin, buckets)
    verbalisation = service_store("verbalisation")
    await verbalisation.put(buckets.evidence, "offences/palaiseau/2/1.jpg", b"still")
    assert await verbalisation.get(buckets.evidence, "offences/palaiseau/1/1.jpg") == b"still"
    await verbalisation.delete(buckets.evidence, "offences/palaiseau/2/1.jpg")
    await _refused(verbalisation.get(buckets.holds, "holds/1/palaiseau/gare/seg.mp4"))
    await _refused(verbalisation.delete(buckets.holds, "holds/1/palaiseau/gare/seg.mp4"))
    await _refused(verbalisation.get(buckets.recordings, "palaiseau/gare/seg.mp4"))
    await _refused(verbalisation.put(buckets.exports, "requisitions/2.zip", b"x"))


def test_the_identity_file_binds_each_service_to_its_policy() -> None:
    keys = {s: Keys(f"key-{s}", f"secret-{s}") for s in SERVICES}
    config = seaweedfs_config(Keys("admin", "admin-secret"), keys)
    policies = {p["name"]: json.loads(p["content"]) for p in config["policies"]}
    for service in SERVICES:
        (identity,) = [i for i in config["identities"] if i["name"] == identity_name(service)]
        assert identity["actions"] == [] and identity["policyNames"] == [identity_name(service)]
        assert policies[identity_name(service)] == policy(service)
    # docs/security.md shows every policy as it is.
    assert policies_markdown() in (REPO / "docs" / "security.md").read_text()


def test_s3_config_writes_the_identity_file_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "VIGIE_S3_ACCESS_KEY": "admin-key", "VIGIE_S3_SECRET_KEY": "admin-sec"}
    for service in SERVICES:
        access, secret = key_env(service)
        env[access], env[secret] = f"key-{service}", f"secret-{service}"
    out, policies = tmp_path / "s3.json", tmp_path / "minio"
    cmd = [sys.executable, "-m", "vigie.cli.main", "s3-config", "--output", str(out),
           "--minio-policies", str(policies)]
    subprocess.run(cmd, env=env, check=True, timeout=60)
    assert out.stat().st_mode & 0o777 == 0o600, "it holds every service's secret key"
    config = json.loads(out.read_text())
    expected = seaweedfs_config(Keys("admin-key", "admin-sec"),
                                {s: Keys(f"key-{s}", f"secret-{s}") for s in SERVICES})
    assert config == expected
    for service in SERVICES:
        assert json.loads((policies / f"{identity_name(service)}.json").read_text()) \
            == policy(service)
    del env[key_env("recorder")[1]]
    missing = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "VIGIE_S3_SECRET_KEY_RECORDER" in missing.stderr
