"""The object store, through the minio SDK; blocking calls run in a thread.

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
from minio.commonconfig import ENABLED, CopySource, Filter, Tag, Tags
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from vigie.log import get_logger
from vigie.settings import CommonSettings

log = get_logger(__name__)

# Errors of the network call: the endpoint is down, hangs, or answers 5xx.
TRANSIENT_STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    OSError,
    TimeoutError,
)


@dataclass(frozen=True)
class Buckets:
    recordings: str
    evidence: str
    exports: str

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Buckets:
        p = f"{prefix}-" if prefix else ""
        return cls(recordings=f"{p}recordings", evidence=f"{p}evidence", exports=f"{p}exports")

    def all(self) -> tuple[str, str, str]:
        return (self.recordings, self.evidence, self.exports)


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
        self._tagging: bool | None = None

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

    async def ensure_buckets(self, names: Iterable[str]) -> None:
        for name in names:
            if not await asyncio.to_thread(self._client.bucket_exists, name):
                try:
                    await asyncio.to_thread(self._client.make_bucket, name)
                    log.info("bucket_created", bucket=name)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

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

    async def get(self, bucket: str, key: str) -> bytes:
        def _get() -> bytes:
            response = self._client.get_object(bucket, key)
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
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
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

    async def copy(self, source_bucket: str, source_key: str, bucket: str, key: str) -> bool:
        """Server-side copy; False when the source does not exist (any more)."""
        try:
            await asyncio.to_thread(self._client.copy_object, bucket, key,
                                    CopySource(source_bucket, source_key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return False
            raise
        return True

    async def supports_tagging(self, bucket: str) -> bool:
        """Probed once: rclone's S3 server takes `PUT ?tagging` for a PUT of the object itself and
        replaces the object's content with the tagging XML. Tag nothing where that happens."""
        if self._tagging is None:
            key, body = ".vigie-probe/tagging", b"vigie tagging probe"
            await self.put(bucket, key, body)
            try:
                await self.set_tags(bucket, key, {"probe": "1"})
                self._tagging = (await self.get(bucket, key) == body
                                 and await self.get_tags(bucket, key) == {"probe": "1"})
            except (S3Error, InvalidResponseError, ValueError):
                self._tagging = False
            finally:
                await self.delete(bucket, key)
            if not self._tagging:
                log.warning("object_tagging_unsupported", bucket=bucket,
                            consequence="held copies are known by key prefix and database only")
        return self._tagging

    async def set_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        object_tags = Tags.new_object_tags()
        object_tags.update(tags)
        await asyncio.to_thread(self._client.set_object_tags, bucket, key, object_tags)

    async def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        tags = await asyncio.to_thread(self._client.get_object_tags, bucket, key)
        return dict(tags or {})

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

    async def set_tag_expiry_rule(self, bucket: str, tag: tuple[str, str], days: int) -> bool:
        """Expire the objects carrying ``tag`` after ``days`` (held evidence, once released)."""
        config = LifecycleConfig([Rule(
            ENABLED, rule_filter=Filter(tag=Tag(*tag)),
            rule_id=f"expire-{tag[0]}-{tag[1]}", expiration=Expiration(days=days))])
        try:
            await asyncio.to_thread(self._client.set_bucket_lifecycle, bucket, config)
        except (S3Error, InvalidResponseError) as exc:
            log.warning("lifecycle_rules_unsupported", bucket=bucket, error=type(exc).__name__)
            return False
        return True

    async def get_tag_expiry_rules(self, bucket: str) -> dict[tuple[str, str], int]:
        config = await asyncio.to_thread(self._client.get_bucket_lifecycle, bucket)
        return {(r.rule_filter.tag.key, r.rule_filter.tag.value): int(r.expiration.days)
                for r in (config.rules if config else [])
                if r.rule_filter and r.rule_filter.tag and r.expiration and r.expiration.days}

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
