"""The register of accesses and operations (`audit_log`, REGULATION.md R7, R12): every writer goes
through `record`, so that what a row holds, and how it is chained, is decided in one place."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

INSERT_SQL = """
INSERT INTO audit_log (actor, action, commune, cameras, period_start, period_end, reason,
                       recipients, outcome, details)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
RETURNING id
"""


@dataclass(frozen=True)
class Entry:
    actor: str  # a user name, or the service that acted ("retention")
    action: str  # "deletion", "hold.created", "login", …
    commune: str | None = None
    cameras: Sequence[str] = ()  # "<commune>/<camera>"
    period_start: datetime | None = None
    period_end: datetime | None = None
    reason: str | None = None
    recipients: str | None = None
    outcome: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)


async def record(conn: asyncpg.Connection | asyncpg.Pool, entry: Entry) -> int:
    """Append one row; inside the caller's transaction when given a connection in one."""
    return int(await conn.fetchval(
        INSERT_SQL, entry.actor, entry.action, entry.commune, list(entry.cameras),
        entry.period_start, entry.period_end, entry.reason, entry.recipients, entry.outcome,
        json.dumps(entry.details, default=str)))
