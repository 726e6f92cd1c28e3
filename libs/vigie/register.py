"""The register of accesses and operations (`audit_log`, REGULATION.md R7, R12–R15; DESIGN.md
invariant 4): every writer goes through `record`, so that what a row holds, and how it is chained,
is decided in one place.

Tamper evidence: each row carries the SHA-256 of its own content and of the previous row's hash, so
an edited row no longer matches its hash and a deleted row breaks the link after it. A cut tail (the
last rows deleted) leaves a valid but shorter chain: checkpoints, written periodically and signed
(HMAC-SHA256 with a key from the settings), name the head of the chain at that time, so a chain that
no longer reaches a checkpoint's head is detected. Writers are serialised by a transaction-scoped
advisory lock, so eight writers at once still leave one chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

REGISTER_LOCK = 0x56494731
GENESIS = "0" * 64

INSERT_SQL = """
INSERT INTO audit_log (id, at, actor, action, commune, cameras, period_start, period_end, reason,
                       recipients, outcome, details, prev_hash, hash)
OVERRIDING SYSTEM VALUE
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14)
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


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat() if t is not None else None


def row_hash(row_id: int, at: datetime, entry: Entry, prev_hash: str) -> str:
    """SHA-256 of the row's canonical JSON, chained to the previous row's hash."""
    canonical = json.dumps(
        [row_id, _iso(at), entry.actor, entry.action, entry.commune, list(entry.cameras),
         _iso(entry.period_start), _iso(entry.period_end), entry.reason, entry.recipients,
         entry.outcome, json.loads(json.dumps(entry.details, default=str)), prev_hash],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record(conn: asyncpg.Connection | asyncpg.Pool, entry: Entry, *,
                 at: datetime | None = None) -> int:
    """Append one row, chained. Inside the caller's transaction when given a connection in one
    (the row commits with what it records); `at` only for importing dated rows (tests, purge)."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c, c.transaction():
            return await _append(c, entry, at)
    if not conn.is_in_transaction():
        async with conn.transaction():
            return await _append(conn, entry, at)
    return await _append(conn, entry, at)


async def _append(conn: asyncpg.Connection, entry: Entry, at: datetime | None) -> int:
    # Held until commit: the next writer reads this row as its predecessor.
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
                       REGISTER_LOCK)
    prev = await conn.fetchval("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
    row_id = int(await conn.fetchval(
        "SELECT nextval(pg_get_serial_sequence('audit_log', 'id'))"))
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    prev_hash = prev or GENESIS
    digest = row_hash(row_id, moment, entry, prev_hash)
    await conn.execute(
        INSERT_SQL, row_id, moment, entry.actor, entry.action, entry.commune, list(entry.cameras),
        entry.period_start, entry.period_end, entry.reason, entry.recipients, entry.outcome,
        json.dumps(entry.details, default=str), prev_hash, digest)
    return row_id


def _entry(row: asyncpg.Record) -> Entry:
    return Entry(actor=row["actor"], action=row["action"], commune=row["commune"],
                 cameras=list(row["cameras"]), period_start=row["period_start"],
                 period_end=row["period_end"], reason=row["reason"],
                 recipients=row["recipients"], outcome=row["outcome"],
                 details=json.loads(row["details"]))


# --- checkpoints ---------------------------------------------------------------------------------

def sign(key: bytes, last_id: int, last_hash: str, kind: str) -> str:
    return hmac.new(key, f"{kind}:{last_id}:{last_hash}".encode(), hashlib.sha256).hexdigest()


async def checkpoint(conn: asyncpg.Connection | asyncpg.Pool, key: bytes, *,
                     kind: str = "periodic") -> int | None:
    """Sign the current head of the chain; None when nothing was written since the last one."""
    head = await conn.fetchrow("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
    if head is None:
        return None
    last = await conn.fetchval("SELECT max(last_id) FROM audit_checkpoints WHERE kind = $1", kind)
    if kind == "periodic" and last == head["id"]:
        return None
    await conn.execute(
        "INSERT INTO audit_checkpoints (kind, last_id, last_hash, signature) VALUES ($1, $2, $3, $4)",
        kind, head["id"], head["hash"], sign(key, head["id"], head["hash"], kind))
    return int(head["id"])


UNSIGNED_AGE_SQL = """
SELECT coalesce(extract(epoch FROM now() - min(at)), 0)::float8 FROM audit_log
WHERE id > (SELECT coalesce(max(last_id), 0) FROM audit_checkpoints WHERE kind = 'periodic')
"""


async def unsigned_age_s(conn: asyncpg.Connection | asyncpg.Pool) -> float:
    """How long the oldest entry no checkpoint covers has waited (0: the whole chain is signed)."""
    return float(await conn.fetchval(UNSIGNED_AGE_SQL))


# --- verification --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    ok: bool
    rows: int
    first_broken_id: int | None = None
    problem: str | None = None
    checkpoints: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "first_broken_id": self.first_broken_id,
                "problem": self.problem, "checkpoints": self.checkpoints}


async def verify(conn: asyncpg.Connection, key: bytes, *, batch: int = 5000) -> Verification:
    """Walk the chain in id order; name the first row that is edited, missing or cut off."""
    checkpoints = await conn.fetch("SELECT * FROM audit_checkpoints ORDER BY id")
    for cp in checkpoints:
        if not hmac.compare_digest(cp["signature"],
                                   sign(key, cp["last_id"], cp["last_hash"], cp["kind"])):
            return Verification(False, 0, cp["last_id"], f"checkpoint {cp['id']} has a bad "
                                "signature (forged, or another key)", len(checkpoints))
    purges = [cp for cp in checkpoints if cp["kind"] == "purge"]
    anchor_id, prev = (purges[-1]["last_id"], purges[-1]["last_hash"]) if purges else (0, GENESIS)
    heads = {cp["last_id"]: cp["last_hash"] for cp in checkpoints if cp["kind"] == "periodic"}
    seen: dict[int, str] = {}
    count, last_id, prev_id = 0, anchor_id, anchor_id
    while True:
        rows = await conn.fetch("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                                last_id, batch)
        for row in rows:
            count += 1
            if row["prev_hash"] != prev:
                what = "missing before it (deleted)" if row["prev_hash"] else "not chained"
                return Verification(False, count, row["id"],
                                    f"row {row['id']}: a row is {what}: its link does not match "
                                    f"row {prev_id}", len(checkpoints))
            if row_hash(row["id"], row["at"], _entry(row), row["prev_hash"]) != row["hash"]:
                return Verification(False, count, row["id"],
                                    f"row {row['id']} was edited: its content does not match its "
                                    "hash", len(checkpoints))
            prev, prev_id = row["hash"], row["id"]
            if row["id"] in heads:
                seen[row["id"]] = row["hash"]
        if len(rows) < batch:
            break
        last_id = rows[-1]["id"]
    for head_id, head_hash in sorted(heads.items()):
        if head_id <= anchor_id:
            continue
        if seen.get(head_id) != head_hash:
            return Verification(False, count, head_id,
                                f"the chain no longer reaches row {head_id}, signed as its head "
                                "by a checkpoint: rows were cut from its end", len(checkpoints))
    return Verification(True, count, None, None, len(checkpoints))


# --- the register's own retention (R15) -----------------------------------------------------------

async def purge(conn: asyncpg.Connection, key: bytes, *, keep_months: int) -> int:
    """Delete the whole months older than `keep_months`, behind a signed 'purge' checkpoint naming
    the last deleted row, from which the rest of the chain still verifies. Only the table's owner
    (the migrations' role) can: the append-only trigger lets nobody else delete."""
    async with conn.transaction():
        await conn.execute("SET LOCAL vigie.register_purge = 'on'")
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
                           REGISTER_LOCK)
        cutoff = await conn.fetchval(
            "SELECT date_trunc('month', now() - make_interval(months => $1))", keep_months)
        # A prefix of the chain: everything before the first row of a month still kept.
        first_kept = await conn.fetchval("SELECT min(id) FROM audit_log WHERE at >= $1", cutoff)
        last = await conn.fetchrow(
            "SELECT id, hash FROM audit_log WHERE $1::bigint IS NULL OR id < $1 "
            "ORDER BY id DESC LIMIT 1", first_kept)
        if last is None:
            return 0
        await conn.execute(
            "INSERT INTO audit_checkpoints (kind, last_id, last_hash, signature) "
            "VALUES ('purge', $1, $2, $3)",
            last["id"], last["hash"], sign(key, last["id"], last["hash"], "purge"))
        deleted = int((await conn.execute("DELETE FROM audit_log WHERE id <= $1",
                                          last["id"])).split()[-1])
    await record(conn, Entry(actor="vigie audit purge", action="register.purged",
                             period_end=cutoff,
                             details={"rows": deleted, "through_id": last["id"],
                                      "keep_months": keep_months}))
    return deleted
