"""The application's database role (REGULATION.md R12, R38 least privilege): the services connect
as it; the migrations' role owns the tables. On the register (and its checkpoints) the application
may only read and append: UPDATE, DELETE and TRUNCATE are not granted, so even a compromised service
cannot rewrite history, and the append-only triggers are a second wall it cannot disable (only the
owner can)."""

from __future__ import annotations

import asyncpg

APPEND_ONLY = ("audit_log", "audit_checkpoints")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_app_role(conn: asyncpg.Connection, *, schema: str, role: str,
                          password: str | None) -> None:
    """Create (or update) the login role and give it exactly the application's rights on `schema`."""
    exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
    r, s = _ident(role), _ident(schema)
    if not exists:
        await conn.execute(f"CREATE ROLE {r} LOGIN")
    if password is not None:
        # Utility statements take no parameters: quote the literal with PostgreSQL's own function.
        literal = await conn.fetchval("SELECT quote_literal($1)", password)
        await conn.execute(f"ALTER ROLE {r} LOGIN PASSWORD {literal}")
    await conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {r}")
    await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}")
    await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}")
    for table in APPEND_ONLY:
        await conn.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {s}.{_ident(table)} FROM {r}")
