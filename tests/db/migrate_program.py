"""Apply the migrations from a separate process (test_migrations runs two at once)."""

import asyncio
import sys

import asyncpg
from vigie.plumbing.db.migrate import migrate
from vigie.plumbing.log import configure_logging


async def main(dsn: str, schema: str) -> None:
    configure_logging(fmt="console")  # logs to stderr; stdout carries the result
    conn = await asyncpg.connect(dsn)
    try:
        print(",".join(await migrate(conn, schema=schema)))
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
