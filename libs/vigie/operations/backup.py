"""`vigie backup`: the database — metadata, accounts, the register — dumped on a schedule, and
dumps older than the retention pruned (issue 25; REGULATION.md R4, R12, R38).

The database holds no image: recordings live in the object store and are not backed up by Vigie,
so a backup never keeps footage past its retention. What a dump does hold (segment metadata,
journal entries, accounts) is kept at most `keep_days` (30 at most, the legal maximum retention),
and the register's own retention (R15) still applies to what is restored from it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from minio.error import S3Error
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigie.plumbing.db.programs import pg_bin
from vigie.plumbing.log import get_logger
from vigie.plumbing.storage.objects import TRANSIENT_STORAGE_ERRORS, ObjectStore

log = get_logger(__name__)

MAX_KEEP_DAYS = 30
PREFIX, SUFFIX = "vigie-", ".dump"
ENCRYPTED = ".age"  # vigie-….dump.age: age-encrypted (age-encryption.org/v1) to the recipients
STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    pass


def _without_password(dsn: str) -> tuple[str, str | None]:
    """The DSN for pg_dump's command line (which `ps` shows) and the password, for its env."""
    parts = urlsplit(dsn)
    password = unquote(parts.password) if parts.password is not None else None
    netloc = parts.netloc.rsplit("@", 1)
    if password is not None and len(netloc) == 2:
        user = netloc[0].split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}@{netloc[1]}")
    return urlunsplit(parts), password


def dump(dsn: str, folder: Path, *, schema: str | None = None,
         now: datetime | None = None) -> Path:
    """One custom-format dump (pg_restore reads it), written 0600 and renamed when complete."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f"{PREFIX}{moment.strftime(STAMP)}{SUFFIX}"
    partial = target.with_suffix(".part")
    url, password = _without_password(dsn)
    env = {**os.environ, **({"PGPASSWORD": password} if password else {})}
    argv = [pg_bin("pg_dump"), "--format=custom", "--file", str(partial), "--dbname", url]
    if schema:
        argv += ["--schema", schema]
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        detail = result.stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise BackupError(f"pg_dump failed: {detail[0][:300]}")
    partial.replace(target)
    return target


def recipients_from(text: str) -> list[Any]:
    """The age public keys (`age1…`, comma- or space-separated) dumps are encrypted to. Their
    private halves are kept off the database host (R38): a stolen dump or a read of the off-site
    bucket gives nothing; restoring needs `age -d -i <identity>` where the key is kept."""
    from pyrage import RecipientError, x25519

    keys = [k for k in re.split(r"[,\s]+", text.strip()) if k]
    try:
        return [x25519.Recipient.from_str(k) for k in keys]
    except RecipientError as exc:
        raise BackupError(f"VIGIE_BACKUP_RECIPIENTS: not an age public key (age1…): {exc}") \
            from None


def encrypt(dumped: Path, recipients: list[Any]) -> Path:
    """Encrypt a dump to the recipients (`<name>.dump.age`, 0600, renamed when complete) and
    remove the clear one."""
    import pyrage

    target = dumped.with_name(dumped.name + ENCRYPTED)
    partial = target.with_suffix(".part")
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    try:
        pyrage.encrypt_file(str(dumped), str(partial), recipients)
    except (OSError, pyrage.EncryptError) as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"encrypting {dumped.name} failed: {exc}") from None
    partial.replace(target)
    dumped.unlink()
    return target


def _ours(name: str) -> bool:
    return name.startswith(PREFIX) and (name.endswith(SUFFIX) or name.endswith(SUFFIX + ENCRYPTED))


def prune(folder: Path, *, keep_days: int, now: datetime | None = None) -> list[Path]:
    """Delete the dumps, encrypted or not, older than `keep_days` (by the instant in their
    name)."""
    if not 1 <= keep_days <= MAX_KEEP_DAYS:
        raise BackupError(f"keep 1 to {MAX_KEEP_DAYS} days of dumps (the legal maximum "
                          f"retention), not {keep_days}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    gone = []
    for path in sorted(p for p in folder.glob(f"{PREFIX}*") if _ours(p.name)):
        taken = _taken(path.name)
        if taken is not None and taken < cutoff:
            path.unlink()
            gone.append(path)
    return gone


COPY_FAILED: tuple[type[BaseException], ...] = (S3Error, *TRANSIENT_STORAGE_ERRORS)


class OffsiteSettings(BaseSettings):
    """Where each dump is copied off the host (issue 35: dumps on the host's own volume die with
    it). Another site's S3 endpoint — not the deployment's own object store, which shares the
    host under Compose. Unset endpoint: no copy."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_BACKUP_S3_", extra="ignore", frozen=True)

    endpoint: str = Field(default="", description="host:port of the remote S3 (empty: no copy)")
    bucket: str = Field(default="", description="its bucket for the dumps (created if absent)")
    access_key: str = Field(default="", description="an identity that may write that bucket")
    secret_key: SecretStr = Field(default=SecretStr(""), description="its secret key")
    secure: bool = Field(default=True, description="HTTPS (always, off the host)")
    tls_ca: Path | None = Field(default=None, description="CA of its certificate (default: "
                                "the system's)")
    region: str = Field(default="us-east-1")

    @model_validator(mode="after")
    def _complete(self) -> OffsiteSettings:
        if self.endpoint and not (self.bucket and self.access_key and
                                  self.secret_key.get_secret_value()):
            raise ValueError("VIGIE_BACKUP_S3_ENDPOINT needs VIGIE_BACKUP_S3_BUCKET, "
                             "VIGIE_BACKUP_S3_ACCESS_KEY and VIGIE_BACKUP_S3_SECRET_KEY")
        return self

    def store(self) -> ObjectStore | None:
        if not self.endpoint:
            return None
        return ObjectStore(self.endpoint, self.access_key, self.secret_key.get_secret_value(),
                           secure=self.secure, region=self.region, timeout_s=60,
                           ca_file=str(self.tls_ca) if self.tls_ca else None)


def _taken(name: str) -> datetime | None:
    if not _ours(name):
        return None
    stamp = name[len(PREFIX):].removesuffix(ENCRYPTED).removesuffix(SUFFIX)
    try:
        return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None  # not one of ours


async def copy_offsite(store: ObjectStore, bucket: str, dumped: Path, *, keep_days: int,
                       now: datetime | None = None) -> list[str]:
    """Copy one dump into the remote bucket, check it arrived whole, and delete the remote dumps
    older than ``keep_days`` (R4 holds there too). Returns the names deleted."""
    if not 1 <= keep_days <= MAX_KEEP_DAYS:
        raise BackupError(f"keep 1 to {MAX_KEEP_DAYS} days of dumps, not {keep_days}")
    size = await asyncio.to_thread(os.path.getsize, dumped)
    try:
        await store.ensure_buckets([bucket])
        await store.put_file(bucket, dumped.name, str(dumped))
        arrived = await store.stat(bucket, dumped.name)
        if arrived is None or arrived.size_bytes != size:
            raise BackupError(f"the copy of {dumped.name} off the host is incomplete")
        cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
        old = [o.key for o in await store.list_objects(bucket, prefix=PREFIX)
               if (t := _taken(o.key)) is not None and t < cutoff]
        failed = await store.erase(bucket, old) if old else []
    except COPY_FAILED as exc:
        raise BackupError(f"copying {dumped.name} off the host failed: "
                          f"{getattr(exc, 'code', None) or type(exc).__name__}") from exc
    if failed:
        raise BackupError(f"{dumped.name} copied off the host, but {len(failed)} remote dumps "
                          f"older than {keep_days} days could not be deleted")
    return old
