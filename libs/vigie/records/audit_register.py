"""The register of accesses and operations (`audit_log`, REGULATION.md R7, R12–R15; DESIGN.md
invariant 4): every writer goes through `record`, so that what a row holds, and how it is chained,
is decided in one place.

Tamper evidence: each row carries the SHA-256 of its own content and of the previous row's hash, so
an edited row no longer matches its hash and a deleted row breaks the link after it. A cut tail (the
last rows deleted) leaves a valid but shorter chain: checkpoints, written periodically, numbered
without gaps and signed (Ed25519, by the retention service: the gateway does not hold the key),
name the head of the chain at that time, so a chain that no longer reaches a checkpoint's head is
detected; a copy of each checkpoint leaves the database (EVENTS, the evidence bucket), so cutting
the checkpoints with the rows is detected against any witness's copy. Writers are serialised by a
transaction-scoped advisory lock, so eight writers at once still leave one chain.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigie.security.signing import SigningKey

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
    # The id and the time are the database's (issue 34): the insert trigger refuses any other
    # id than the one just drawn, and a time outside this transaction, to every service's role.
    drawn = await conn.fetchrow(
        "SELECT nextval(pg_get_serial_sequence('audit_log', 'id')) AS id, "
        "clock_timestamp() AS at")
    row_id = int(drawn["id"])
    moment = (at or drawn["at"]).astimezone(UTC)
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

CHECKPOINT_LOCK = 0x56494733  # one checkpoint at a time: `seq` has no gaps
FORMAT = "vigie-register-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """A signed head of the chain: the retention service signs it with the register key (Ed25519,
    which the gateway does not hold), stores it, publishes it on EVENTS and in the evidence bucket,
    so that witnesses hold copies the database cannot take back."""

    seq: int
    kind: str  # periodic | purge
    last_id: int
    last_hash: str
    at: datetime
    fingerprint: str
    signature: str  # base64 of the Ed25519 signature of `message()`

    def message(self) -> bytes:
        return (f"{FORMAT}:{self.seq}:{self.kind}:{self.last_id}:{self.last_hash}:"
                f"{_iso(self.at)}").encode()

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "last_id": self.last_id,
                "last_hash": self.last_hash, "at": _iso(self.at),
                "fingerprint": self.fingerprint, "signature": self.signature}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Checkpoint:
        """A stored object, a line of `vigie events follow` (the event's own field names) or a
        row: what a witness kept."""
        at = d.get("at") or d.get("checkpoint_at")
        return cls(seq=int(d["seq"]), kind=str(d.get("checkpoint") or d["kind"]),
                   last_id=int(d["last_id"]), last_hash=str(d["last_hash"]),
                   at=at if isinstance(at, datetime) else datetime.fromisoformat(str(at)),
                   fingerprint=str(d["fingerprint"]), signature=str(d["signature"]))

    def verifies(self, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
        """None when a trusted key signed it; else what is wrong."""
        key = keys.get(self.fingerprint)
        if key is None:
            return f"checkpoint {self.seq} is signed by a key not trusted ({self.fingerprint})"
        try:
            key.verify(base64.b64decode(self.signature), self.message())
        except (InvalidSignature, ValueError):
            return f"checkpoint {self.seq} has a bad signature (forged, altered or re-signed)"
        return None


def legacy_sign(key: bytes, last_id: int, last_hash: str, kind: str) -> str:
    """Checkpoints made before issue 25: HMAC-SHA256 under VIGIE_REGISTER_KEY."""
    return hmac.new(key, f"{kind}:{last_id}:{last_hash}".encode(), hashlib.sha256).hexdigest()


async def _signed(conn: asyncpg.Connection, signer: SigningKey, kind: str, last_id: int,
                  last_hash: str) -> Checkpoint:
    """Insert the next checkpoint (the caller holds a transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
                       CHECKPOINT_LOCK)
    seq = int(await conn.fetchval("SELECT coalesce(max(seq), 0) + 1 FROM audit_checkpoints"))
    at = await conn.fetchval("SELECT date_trunc('milliseconds', clock_timestamp())")
    unsigned = Checkpoint(seq, kind, last_id, last_hash, at, signer.fingerprint(), "")
    made = replace(unsigned, signature=base64.b64encode(signer.sign(unsigned.message())).decode())
    await conn.execute(
        "INSERT INTO audit_checkpoints (seq, at, kind, last_id, last_hash, fingerprint, "
        "signature) VALUES ($1, $2, $3, $4, $5, $6, $7)", made.seq, made.at, kind, last_id,
        last_hash, made.fingerprint, made.signature)
    return made


async def checkpoint(pool: asyncpg.Pool | asyncpg.Connection, signer: SigningKey, *,
                     heartbeat_s: float | None = None) -> Checkpoint | None:
    """Sign the current head of the chain. None when nothing was written since the last
    checkpoint, unless that one is older than `heartbeat_s`: a fresh checkpoint then says the
    register was quiet, not cut (verification bounds the latest checkpoint's age)."""
    acquired = pool.acquire() if isinstance(pool, asyncpg.Pool) else contextlib.nullcontext(pool)
    async with acquired as conn, conn.transaction():
        head = await conn.fetchrow("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
        if head is None:
            return None
        last = await conn.fetchrow(
            "SELECT last_id, extract(epoch FROM now() - at)::float8 AS age FROM audit_checkpoints "
            "WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
        if last is not None and last["last_id"] == head["id"] and (
                heartbeat_s is None or last["age"] < heartbeat_s):
            return None
        return await _signed(conn, signer, "periodic", head["id"], head["hash"])


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
    latest_checkpoint_age_s: float | None = None
    unsigned_rows: int = 0  # rows after the latest checkpoint (written since it)
    legacy_unverified: int = 0  # HMAC checkpoints of before issue 25 not checked (no key given)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "first_broken_id": self.first_broken_id,
                "problem": self.problem, "checkpoints": self.checkpoints,
                "latest_checkpoint_age_s": self.latest_checkpoint_age_s,
                "unsigned_rows": self.unsigned_rows,
                "legacy_unverified": self.legacy_unverified}


class _Broken(Exception):
    def __init__(self, row_id: int | None, problem: str) -> None:
        super().__init__(problem)
        self.row_id, self.problem = row_id, problem


def _check_checkpoints(rows: list[asyncpg.Record], keys: Mapping[str, Ed25519PublicKey],
                       witness: Sequence[Checkpoint],
                       legacy_key: bytes | None) -> tuple[list[Checkpoint], int]:
    """The signed checkpoints, checked: signatures by trusted keys, numbers without gaps, and the
    same as every copy a witness holds. Returns them (the witness's included) and how many legacy
    checkpoints went unchecked."""
    signed = [Checkpoint.from_dict(dict(r)) for r in rows if r["seq"] is not None]
    unchecked = 0
    for r in rows:
        if r["seq"] is not None:
            continue
        if legacy_key is None:
            unchecked += 1
        elif not hmac.compare_digest(r["signature"], legacy_sign(
                legacy_key, r["last_id"], r["last_hash"], r["kind"])):
            raise _Broken(r["last_id"], f"legacy checkpoint {r['id']} has a bad signature")
    for expected, cp in enumerate(signed, start=1):
        if cp.seq != expected:
            raise _Broken(cp.last_id, f"checkpoint {expected} is missing: the checkpoints jump "
                          f"to {cp.seq} (deleted)")
        if (problem := cp.verifies(keys)) is not None:
            raise _Broken(cp.last_id, problem)
    stored = {cp.seq: cp for cp in signed}
    for copy in sorted(witness, key=lambda c: c.seq):
        if (problem := copy.verifies(keys)) is not None:
            raise _Broken(copy.last_id, f"the witness's {problem}")
        held = stored.get(copy.seq)
        if held is None:
            raise _Broken(copy.last_id, f"checkpoint {copy.seq}, which a witness holds, is no "
                          "longer in the database: checkpoints were cut with the rows they sign")
        if held != copy:
            raise _Broken(copy.last_id, f"checkpoint {copy.seq} differs from the witness's copy "
                          "(re-signed or altered)")
    return signed, unchecked


async def verify(conn: asyncpg.Connection, keys: Mapping[str, Ed25519PublicKey], *,
                 max_age_s: float | None = None, witness: Sequence[Checkpoint] = (),
                 legacy_key: bytes | None = None, batch: int = 5000) -> Verification:
    """Walk the chain in id order; name the first row that is edited, missing, inserted or cut
    off, and the first checkpoint that is missing, forged, or not the witness's."""
    rows = await conn.fetch("SELECT * FROM audit_checkpoints ORDER BY id")
    age = await conn.fetchval("SELECT extract(epoch FROM now() - max(at))::float8 "
                              "FROM audit_checkpoints WHERE seq IS NOT NULL")
    try:
        signed, legacy = _check_checkpoints(rows, keys, witness, legacy_key)
    except _Broken as exc:
        return Verification(False, 0, exc.row_id, exc.problem, len(rows), age)
    all_signed = [*signed, *witness]
    # Only a checked signature may start or cut the chain (issue 34): an unsigned-looking legacy
    # 'purge' row is anyone's with the database password, so without the HMAC key that made it
    # it anchors nothing, and the rows it would hide show as deleted.
    purges = [cp for cp in all_signed if cp.kind == "purge"]
    if legacy_key is not None:
        purges += [Checkpoint(0, "purge", r["last_id"], r["last_hash"], r["at"], "", "")
                   for r in rows if r["seq"] is None and r["kind"] == "purge"]
    anchor = max(purges, key=lambda c: c.last_id, default=None)
    anchor_id, prev = (anchor.last_id, anchor.last_hash) if anchor else (0, GENESIS)
    early = await conn.fetchval("SELECT min(id) FROM audit_log WHERE id <= $1", anchor_id)
    if early is not None:
        return Verification(False, 0, early, f"row {early} lies before the chain's first row "
                            "(or a purge's anchor): it was inserted", len(rows), age)
    heads = {cp.last_id: cp.last_hash for cp in all_signed if cp.kind == "periodic"}
    heads |= {r["last_id"]: r["last_hash"] for r in rows
              if r["seq"] is None and r["kind"] == "periodic"}
    seen: dict[int, str] = {}
    count, last_id, prev_id = 0, anchor_id, anchor_id
    while True:
        chunk = await conn.fetch("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                                 last_id, batch)
        for row in chunk:
            count += 1
            if row["prev_hash"] != prev:
                what = "missing before it (deleted)" if row["prev_hash"] else "not chained"
                return Verification(False, count, row["id"],
                                    f"row {row['id']}: a row is {what}, or it was inserted: its "
                                    f"link does not match row {prev_id}", len(rows), age)
            if row_hash(row["id"], row["at"], _entry(row), row["prev_hash"]) != row["hash"]:
                return Verification(False, count, row["id"],
                                    f"row {row['id']} was edited: its content does not match its "
                                    "hash", len(rows), age)
            prev, prev_id = row["hash"], row["id"]
            if row["id"] in heads:
                seen[row["id"]] = row["hash"]
        if len(chunk) < batch:
            break
        last_id = chunk[-1]["id"]
    for head_id, head_hash in sorted(heads.items()):
        if head_id <= anchor_id:
            continue
        if seen.get(head_id) != head_hash:
            return Verification(False, count, head_id,
                                f"the chain no longer reaches row {head_id}, signed as its head "
                                "by a checkpoint: rows were cut from its end, or rewritten",
                                len(rows), age)
    latest = max((cp.last_id for cp in all_signed), default=anchor_id)
    unsigned = await conn.fetchval("SELECT count(*) FROM audit_log WHERE id > $1", latest)
    if max_age_s is not None and age is None:
        # A register younger than the bound has not had its first checkpoint yet: it is not cut.
        oldest = await conn.fetchval("SELECT extract(epoch FROM now() - min(at))::float8 "
                                     "FROM audit_log WHERE id > $1", anchor_id)
        if oldest is None or oldest > max_age_s:
            return Verification(False, count, None, "no signed checkpoint" + (
                "" if oldest is None else f": the oldest entry is {oldest:.0f} s old "
                f"(bound {max_age_s:.0f} s)"), len(rows), age, unsigned, legacy)
    elif max_age_s is not None and age is not None and age > max_age_s:
        return Verification(False, count, None,
                            f"the latest checkpoint is {age:.0f} s old (bound {max_age_s:.0f} s): "
                            "the signer is down, or the latest checkpoints were cut",
                            len(rows), age, unsigned, legacy)
    return Verification(True, count, None, None, len(rows), age, unsigned, legacy)


# --- the register's own retention (R15) -----------------------------------------------------------

REGISTER_KEEP_MONTHS = (12, 120)  # R15: configurable, 36 by default; vigie_purge_register's bounds


async def purge(conn: asyncpg.Connection, signer: SigningKey, *, keep_months: int,
                actor: str = "vigie audit purge") -> int:
    """Delete the whole months older than `keep_months`, behind a signed 'purge' checkpoint naming
    the last deleted row, from which the rest of the chain still verifies. The deletion is
    `vigie_purge_register`'s (migration 0030): the owner's function, which only deletes such a
    prefix; the retention service runs this every day (R15), `vigie audit purge` on demand."""
    low, high = REGISTER_KEEP_MONTHS
    if not low <= keep_months <= high:
        raise ValueError(f"the register is kept {low} to {high} months (R15), not {keep_months}")
    async with conn.transaction():
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
        await _signed(conn, signer, "purge", last["id"], last["hash"])
        deleted = int(await conn.fetchval("SELECT vigie_purge_register($1, $2)", last["id"],
                                          keep_months))
    await record(conn, Entry(actor=actor, action="register.purged", period_end=cutoff,
                             details={"rows": deleted, "through_id": last["id"],
                                      "keep_months": keep_months}))
    return deleted
