"""The object store, through the minio SDK; blocking calls run in a thread.

The holds bucket is made with S3 object lock (which versions it): each evidence copy of a hold is
put under a legal hold, so no identity — the administrator's included — can erase it while the hold
stands; the retention service lifts the legal hold once the hold is released and erases every
version (docs/security.md "Evidence under object lock"). An endpoint without object lock gets a
plain bucket, and says so.

Lifecycle rules are set where the endpoint supports them (SeaweedFS, the object store of `make run`
and production, does and applies them). An endpoint that refuses them (rclone, with a misleading 409
BucketAlreadyExists) leaves the retention service alone to erase, and it says so.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from vigie.plumbing.log import get_logger
from vigie.plumbing.settings import CommonSettings

log = get_logger(__name__)

# Errors of the network call: the endpoint is down, hangs, or answers 5xx.
TRANSIENT_STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    OSError,
    TimeoutError,
)


# What endpoints answer for an object that is not (or no longer) there.
MISSING_OBJECT = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


@dataclass(frozen=True)
class Buckets:
    recordings: str
    evidence: str  # offence stills and hand-over files, the register's checkpoints
    exports: str
    holds: str  # evidence copies of holds, under object lock (vigie.custody.holds)

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Buckets:
        p = f"{prefix}-" if prefix else ""
        return cls(recordings=f"{p}recordings", evidence=f"{p}evidence", exports=f"{p}exports",
                   holds=f"{p}holds")

    def all(self) -> tuple[str, str, str, str]:
        return (self.recordings, self.evidence, self.exports, self.holds)

    def locked(self) -> tuple[str]:
        """The buckets made with object lock."""
        return (self.holds,)


@dataclass(frozen=True)
class Version:
    key: str
    version_id: str | None
    delete_marker: bool


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size_bytes: int
    etag: str | None
    last_modified: datetime | None


class ObjectStore:
    """Async facade over the minio client (one per process; the client is thread-safe)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = False,
        region: str = "us-east-1",
        timeout_s: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=urllib3.Retry(total=0),  # retries are ours, with backoff and events
            maxsize=16,
            # HTTPS verified against the deployment's CA (issue 25), or the system's.
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_file,
        )
        # region avoids the SDK's location lookup, which rclone answers with non-XML.
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        self._locked: dict[str, bool] = {}

    @classmethod
    def from_settings(cls, common: CommonSettings) -> ObjectStore:
        return cls(
            common.s3_endpoint,
            common.s3_access_key,
            common.s3_secret_key.get_secret_value(),
            secure=common.s3_secure,
            region=common.s3_region,
            ca_file=str(common.s3_tls_ca) if common.s3_tls_ca else None,
        )

    async def ensure_buckets(self, names: Iterable[str], *, object_lock: Iterable[str] = ()) -> None:
        """Create the buckets missing; those named in `object_lock` with object lock where the
        endpoint has it (it cannot be turned on later: an existing bucket is left as it is)."""
        locked = set(object_lock)
        for name in names:
            if not await asyncio.to_thread(self._client.bucket_exists, name):
                try:
                    await self._make_bucket(name, lock=name in locked)
                    log.info("bucket_created", bucket=name, object_lock=name in locked)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

    async def _make_bucket(self, name: str, *, lock: bool) -> None:
        if lock:
            try:
                await asyncio.to_thread(self._client.make_bucket, name, object_lock=True)
                return
            except (S3Error, InvalidResponseError) as exc:
                if isinstance(exc, S3Error) and exc.code in ("BucketAlreadyOwnedByYou",
                                                              "BucketAlreadyExists"):
                    raise
                log.warning("object_lock_unsupported", bucket=name, error=type(exc).__name__,
                            consequence="held copies are protected by the identities' policies "
                                        "only")
        await asyncio.to_thread(self._client.make_bucket, name)

    async def object_lock(self, bucket: str) -> bool:
        """Whether `bucket` was made with object lock (asked once per process)."""
        if bucket not in self._locked:
            try:
                # Both asked: an endpoint without object lock (rclone) answers the first with a
                # bucket listing, which the SDK reads as an empty configuration.
                await asyncio.to_thread(self._client.get_object_lock_config, bucket)
                versioning = await asyncio.to_thread(self._client.get_bucket_versioning, bucket)
                self._locked[bucket] = versioning.status == "Enabled"
            except (S3Error, InvalidResponseError) as exc:
                if isinstance(exc, S3Error) and exc.code == "AccessDenied":
                    raise
                if isinstance(exc, S3Error) and exc.code == "NoSuchBucket":
                    # Not made yet (`vigie init` to come): ask again, never remember "unlocked".
                    return False
                self._locked[bucket] = False
        return self._locked[bucket]

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> str:
        result = await asyncio.to_thread(
            self._client.put_object,
            bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            metadata=metadata,  # type: ignore[arg-type]
        )
        return str(result.etag)

    async def put_held(self, bucket: str, key: str, data: bytes, *,
                       content_type: str = "application/octet-stream") -> str | None:
        """Store an object under a legal hold where `bucket` has object lock; returns the version
        stored (None in a plain bucket), which readers then name: a later version put over it
        changes nothing of what they read."""
        lock = await self.object_lock(bucket)
        result = await asyncio.to_thread(
            self._client.put_object, bucket, key, io.BytesIO(data), len(data),
            content_type=content_type, legal_hold=lock)
        return result.version_id if lock else None

    async def legal_hold(self, bucket: str, key: str, version_id: str | None = None) -> bool:
        return bool(await asyncio.to_thread(self._client.is_object_legal_hold_enabled, bucket,
                                            key, version_id))

    async def versions(self, bucket: str, prefix: str) -> list[Version]:
        """Every version and delete marker under `prefix` (one "null" version where the bucket is
        not versioned)."""
        def _list() -> list[Version]:
            return [Version(str(o.object_name), o.version_id, bool(o.is_delete_marker))
                    for o in self._client.list_objects(bucket, prefix=prefix, recursive=True,
                                                       include_version=True)]

        return await asyncio.to_thread(_list)

    async def erase(self, bucket: str, keys: Iterable[str]) -> list[str]:
        """Erase objects for good: in a bucket with object lock, every version of each key, its
        legal hold lifted first (a plain delete would only hide it behind a delete marker).
        Returns the keys that failed."""
        wanted = list(keys)
        if not await self.object_lock(bucket):
            return await self.delete_many(bucket, wanted)
        found = [v for key in wanted for v in await self.versions(bucket, key) if v.key == key]
        return await self._erase_versions(bucket, found)

    async def erase_prefix(self, bucket: str, prefix: str) -> list[str]:
        """Erase for good everything under `prefix` (copies no row of the database names: a copy
        put before its holder was killed). Returns the keys that failed."""
        if not await self.object_lock(bucket):
            return await self.delete_many(bucket, [o.key for o in await self.list_objects(
                bucket, prefix)])
        return await self._erase_versions(bucket, await self.versions(bucket, prefix))

    async def _erase_versions(self, bucket: str, versions: list[Version]) -> list[str]:
        failed: list[str] = []
        lifted: list[Version] = []
        for v in versions:
            if not v.delete_marker:
                try:
                    await asyncio.to_thread(self._client.disable_object_legal_hold, bucket,
                                            v.key, v.version_id)
                except S3Error as exc:
                    if exc.code in ("NoSuchKey", "NoSuchVersion"):
                        continue  # gone since the listing
                    failed.append(v.key)  # still held: not deleted, tried again next time
                    continue
            lifted.append(v)

        def _delete() -> list[str]:
            errors = self._client.remove_objects(
                bucket, [DeleteObject(v.key, v.version_id) for v in lifted])
            return [str(e.name) for e in errors]

        return failed + (await asyncio.to_thread(_delete) if lifted else [])

    async def put_file(self, bucket: str, key: str, path: str, *,
                       content_type: str = "application/octet-stream") -> str:
        """Upload a file without reading it into memory (multipart for large ones)."""
        result = await asyncio.to_thread(self._client.fput_object, bucket, key, path,
                                         content_type=content_type)
        return str(result.etag)

    async def stream(self, bucket: str, key: str, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
        """An object's bytes, a chunk at a time (downloads of large files)."""
        response = await asyncio.to_thread(self._client.get_object, bucket, key)
        try:
            while True:
                block = await asyncio.to_thread(response.read, chunk)
                if not block:
                    return
                yield block
        finally:
            response.close()
            response.release_conn()

    async def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        """An object's bytes: its current version, or the version named."""
        def _get() -> bytes:
            response = self._client.get_object(bucket, key, version_id=version_id)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(_get)

    async def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            st = await asyncio.to_thread(self._client.stat_object, bucket, key)
        except S3Error as exc:
            if exc.code in MISSING_OBJECT:
                return None
            raise
        return ObjectInfo(str(st.object_name), int(st.size or 0), st.etag, st.last_modified)

    async def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        def _list() -> list[ObjectInfo]:
            return [
                ObjectInfo(str(o.object_name), int(o.size or 0), o.etag, o.last_modified)
                for o in self._client.list_objects(bucket, prefix=prefix, recursive=True)
            ]

        return await asyncio.to_thread(_list)

    async def delete(self, bucket: str, key: str) -> None:
        await asyncio.to_thread(self._client.remove_object, bucket, key)

    async def delete_many(self, bucket: str, keys: Iterable[str]) -> list[str]:
        """Batch delete; returns the keys that failed (deleting a missing key is not a failure)."""

        def _delete() -> list[str]:
            errors = self._client.remove_objects(bucket, [DeleteObject(k) for k in keys])
            return [str(e.name) for e in errors]

        return await asyncio.to_thread(_delete)

    async def set_expiry_rules(self, bucket: str, rules: dict[str, int]) -> bool:
        """One expiry rule per key prefix (days). False where the endpoint refuses lifecycle rules."""
        config = LifecycleConfig(
            [
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=prefix),
                    rule_id=f"expire-{prefix.strip('/') or 'all'}",
                    expiration=Expiration(days=days),
                )
                for prefix, days in sorted(rules.items())
            ]
        )
        try:
            await asyncio.to_thread(self._client.set_bucket_lifecycle, bucket, config)
        except (S3Error, InvalidResponseError) as exc:
            # rclone answers with a misleading 409 BucketAlreadyExists (not even parsed as S3).
            log.warning(
                "lifecycle_rules_unsupported",
                bucket=bucket,
                error=type(exc).__name__,
                consequence="the retention service alone erases expired recordings",
            )
            return False
        return True

    async def get_expiry_rules(self, bucket: str) -> dict[str, int]:
        config = await asyncio.to_thread(self._client.get_bucket_lifecycle, bucket)
        if config is None:
            return {}
        return {
            (r.rule_filter.prefix if r.rule_filter else "") or "": int(r.expiration.days)
            for r in config.rules
            if r.expiration and r.expiration.days
        }

    async def ping(self) -> None:
        await asyncio.to_thread(self._client.list_buckets)
