"""Background jobs in a table: requisition exports, right-of-access copies, the evidence copies of
a hold. Asked by the gateway (a row `queued`), taken by the retention service, which holds the keys
and the storage rights the internet-facing gateway does not.

One way for all of them (issue 34): a builder claims the oldest queued row, beats every
`BEAT_S` while it works (with its progress), and ends it in its own final state or `failed` with a
reason a person can read — whatever went wrong, a refused write included; a row is never left
« building » for good. A builder that dies (kill -9, the OOM killer) falls silent: after `STALE`
another one (or the same, restarted) takes the job again, `MAX_ATTEMPTS` times at most, then it is
`failed` with that reason. Any number of retention replicas may run: a row is claimed by one
(`FOR UPDATE SKIP LOCKED`).

A job table has the columns `id`, `state` (`queued`, `building`, …, `failed`), `percent`,
`created_at`, `started_at`, `beat_at`, `attempts`, `finished_at`, `error`. A row `building` with
no beat (claimed before beats existed) counts from its start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from minio.error import S3Error

from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger
from vigie.plumbing.storage.objects import TRANSIENT_STORAGE_ERRORS

log = get_logger(__name__)

BEAT_S = 5.0
STALE = timedelta(seconds=60)  # a build silent this long was interrupted: taken again
MAX_ATTEMPTS = 3


class JobRefused(ValueError):
    """A job that cannot be done as asked, with the reason a person can act on."""


@dataclass(frozen=True)
class JobTable:
    table: str  # a constant of the caller's, never user input

    def _sql(self, text: str) -> str:
        return text.replace("{t}", self.table)

    async def claim(self, pool: asyncpg.Pool) -> asyncpg.Record | None:
        """The oldest job waiting (or interrupted), now `building` and this builder's."""
        async with pool.acquire() as conn, conn.transaction():
            given_up = await conn.fetch(self._sql(
                "UPDATE {t} SET state = 'failed', finished_at = now(), error = $2 "
                "WHERE state = 'building' AND coalesce(beat_at, started_at) < now() - $1::interval "
                "AND attempts >= $3 RETURNING id"), STALE,
                f"the build was interrupted {MAX_ATTEMPTS} times (the builder stopped or was "
                "killed each time): ask again, and tell the operator", MAX_ATTEMPTS)
            for row in given_up:
                log.warning("job_given_up", table=self.table, job=row["id"])
            return await conn.fetchrow(self._sql(
                "UPDATE {t} SET state = 'building', started_at = now(), beat_at = now(), "
                "percent = 0, attempts = attempts + 1 "
                "WHERE id = (SELECT id FROM {t} WHERE state = 'queued' "
                "            OR (state = 'building' "
                "                AND coalesce(beat_at, started_at) < now() - $1::interval) "
                "            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING *"), STALE)

    async def fail(self, pool: asyncpg.Pool, job: int, reason: str) -> None:
        await pool.execute(self._sql(
            "UPDATE {t} SET state = 'failed', finished_at = now(), error = $2 "
            "WHERE id = $1 AND state = 'building'"), job, reason[:2000])

    @contextlib.asynccontextmanager
    async def beating(self, pool: asyncpg.Pool, job: int) -> AsyncIterator[Progress]:
        """Beats every BEAT_S with the progress the build reports, until the block ends."""
        progress = Progress()

        async def beat() -> None:
            while True:
                await asyncio.sleep(BEAT_S)
                try:
                    await pool.execute(self._sql(
                        "UPDATE {t} SET beat_at = now(), percent = $2 "
                        "WHERE id = $1 AND state = 'building'"), job, progress.percent)
                except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError) as exc:
                    log.warning("job_beat_missed", table=self.table, job=job,
                                error=type(exc).__name__)

        beater = asyncio.create_task(beat())
        try:
            yield progress
        finally:
            beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beater


@dataclass
class Progress:
    percent: int = 0

    def set(self, share: float) -> None:
        """`share` of the work done (0..1); shown at most 95 % until the job's end."""
        self.percent = max(0, min(95, int(share * 100)))


def failure_reason(exc: BaseException) -> str:
    """What to tell the person who asked, for an error no one foresaw: never a traceback (it is in
    the builder's log), never a secret."""
    if isinstance(exc, JobRefused):
        return str(exc)
    if isinstance(exc, S3Error):
        if exc.code == "AccessDenied":
            return ("the object store refused this service's write (AccessDenied): its identity "
                    "lacks a right — tell the operator (docs/security.md)")
        return f"the object store answered {exc.code}: tell the operator"
    if isinstance(exc, TRANSIENT_STORAGE_ERRORS):
        return "the object store did not answer: ask again in a few minutes"
    if isinstance(exc, (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError)):
        return "the database did not answer: ask again in a few minutes"
    return f"internal error ({type(exc).__name__}): tell the operator"


async def run_one(pool: asyncpg.Pool, jobs: JobTable,
                  build: Callable[[asyncpg.Record, Progress], Awaitable[Any]],
                  **log_fields: Any) -> int | None:
    """Claim a job, build it with a heartbeat, and end it `failed` with its reason if the build
    raises; `build` writes the job's success itself. Returns the job's id, None when idle."""
    row = await jobs.claim(pool)
    if row is None:
        return None
    job = int(row["id"])
    try:
        async with jobs.beating(pool, job) as progress:
            await build(row, progress)
    except asyncio.CancelledError:
        raise  # shutting down: the job is taken again after STALE
    except JobRefused as exc:
        await jobs.fail(pool, job, str(exc))
        log.warning("job_failed", table=jobs.table, job=job, reason=str(exc), **log_fields)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the job ends with a reason
        log.exception("job_failed", table=jobs.table, job=job, **log_fields)
        with contextlib.suppress(*TRANSIENT_DB_ERRORS, asyncpg.PostgresError):
            await jobs.fail(pool, job, failure_reason(exc))
    return job
