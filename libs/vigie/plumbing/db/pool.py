"""The asyncpg pool, opened with bounded, logged retries; every connection uses Vigie's schema."""

from __future__ import annotations

import asyncio

import asyncpg

from vigie.plumbing.log import get_logger, redact
from vigie.plumbing.settings import CommonSettings

log = get_logger(__name__)

TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


async def create_pool(
    dsn: str, *, schema: str = "public", timeout_s: float = 60.0, max_size: int = 10
) -> asyncpg.Pool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    attempt = 0
    while True:
        attempt += 1
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=max_size,
                server_settings={"search_path": schema, "application_name": "vigie"},
                timeout=5,
            )
            assert pool is not None
            return pool
        except TRANSIENT_DB_ERRORS as exc:
            if asyncio.get_running_loop().time() >= deadline:
                raise ConnectionError(f"PostgreSQL unreachable after {attempt} attempts") from exc
            log.warning("postgres_connect_retry", attempt=attempt, error=redact(str(exc)))
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))


async def pool_from_settings(common: CommonSettings, *, max_size: int = 10) -> asyncpg.Pool:
    return await create_pool(
        common.postgres_dsn.get_secret_value(),
        schema=common.postgres_schema,
        timeout_s=common.connect_timeout_s,
        max_size=max_size,
    )
