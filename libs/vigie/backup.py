"""`vigie backup`: the database — metadata, accounts, the register — dumped on a schedule, and
dumps older than the retention pruned (issue 25; REGULATION.md R4, R12, R38).

The database holds no image: recordings live in the object store and are not backed up by Vigie,
so a backup never keeps footage past its retention. What a dump does hold (segment metadata,
journal entries, accounts) is kept at most `keep_days` (30 at most, the legal maximum retention),
and the register's own retention (R15) still applies to what is restored from it."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from vigie.local.servers import pg_bin
from vigie.log import get_logger

log = get_logger(__name__)

MAX_KEEP_DAYS = 30
PREFIX, SUFFIX = "vigie-", ".dump"
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


def prune(folder: Path, *, keep_days: int, now: datetime | None = None) -> list[Path]:
    """Delete the dumps older than `keep_days` (by the instant in their name)."""
    if not 1 <= keep_days <= MAX_KEEP_DAYS:
        raise BackupError(f"keep 1 to {MAX_KEEP_DAYS} days of dumps (the legal maximum "
                          f"retention), not {keep_days}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    gone = []
    for path in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")):
        try:
            taken = datetime.strptime(path.name[len(PREFIX):-len(SUFFIX)], STAMP).replace(
                tzinfo=UTC)
        except ValueError:
            continue  # not one of ours
        if taken < cutoff:
            path.unlink()
            gone.append(path)
    return gone
