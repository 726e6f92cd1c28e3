"""Logins and sessions (REGULATION.md R8, R38): named accounts, argon2, TOTP where required,
throttling per account and per address, sessions stored by the hash of their token."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from vigie.plumbing.certs import POST, peer_identity
from vigie.plumbing.http import PEER_CERTIFICATE
from vigie.records.audit_register import Entry, record
from vigie.security.accounts import (
    TotpKey,
    TotpKeyError,
    readable_totp,
    totp_required,
    totp_step,
    verify_password,
)
from vigie.verbalisation.catalogue import Power

from services.viewer_gateway.policy import Subject
from services.viewer_gateway.settings import ViewerGatewaySettings

COOKIE = "vigie_session"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    full_name: str
    roles: tuple[str, ...]
    communes: tuple[str, ...]
    designated_by: str | None
    designated_on: date | None
    designation_expires: date | None
    agent_number: str | None
    totp_enabled: bool
    session: str  # the token's hash: what identifies the session server-side
    post: str
    verbalisation_power: Power | None = None  # listed for vidéo-verbalisation (R32), or not
    trained_on: date | None = None  # data-protection training (R11)
    must_set_password: bool = False  # its password is its creator's: nothing opens but a new one

    @property
    def subject(self) -> Subject:
        return Subject(frozenset(self.roles), frozenset(self.communes),
                       trained=self.trained_on is not None)


class LoginRefused(Exception):
    def __init__(self, status: int, reason: str, *, retry_after_s: int | None = None,
                 totp_required: bool = False) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
        self.retry_after_s, self.totp_required = retry_after_s, totp_required


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def designation_expired(expires: date | None) -> bool:
    return expires is not None and expires < datetime.now(UTC).date()


# Advisory-lock namespaces: one lock per username and one per address serialise the counting of
# attempts (two int4 key spaces, so that a username never collides with an address).
LOCK_USERNAME, LOCK_ADDRESS = 0x56494733, 0x56494734


async def _reserve_attempt(pool: asyncpg.Pool, username: str, address: str,
                           settings: ViewerGatewaySettings) -> int:
    """Count this attempt as a failure before checking it, under the username's and the address's
    locks: a concurrent burst is counted one by one, so at most the limit is ever tried (R38).
    Returns the failure row's id (deleted when the attempt succeeds); raises LoginRefused(429)."""
    since = datetime.now(UTC) - timedelta(seconds=settings.login_window_s)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", LOCK_USERNAME,
                           username)
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", LOCK_ADDRESS,
                           address)
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE username = $1) AS by_user, "
            "       count(*) FILTER (WHERE address = $2) AS by_address, "
            "       min(at) FILTER (WHERE username = $1) AS oldest_user, "
            "       min(at) FILTER (WHERE address = $2) AS oldest_address "
            "FROM login_failures WHERE at > $3 AND (username = $1 OR address = $2)",
            username, address, since)
        by_address = row["by_address"] >= settings.login_max_failures_per_address
        if by_address or row["by_user"] >= settings.login_max_failures:
            oldest = row["oldest_address"] if by_address else row["oldest_user"]
            wait = max(1, int((oldest - since).total_seconds()))
            # Journaled once per address (and account) and window, not once per attempt.
            noted = await conn.fetchval(
                "INSERT INTO login_throttle_notes (address, username, noted_at) "
                "VALUES ($1, $2, now()) ON CONFLICT (address, username) DO UPDATE "
                "SET noted_at = now() WHERE login_throttle_notes.noted_at <= $3 RETURNING true",
                address, "" if by_address else username, since)
            if noted:
                await record(conn, Entry(actor=username, action="login", outcome="throttled",
                                         details={"address": address,
                                                  "by": "address" if by_address else "account"}))
            failure_id = None
        else:
            failure_id = await conn.fetchval(
                "INSERT INTO login_failures (username, address) VALUES ($1, $2) RETURNING id",
                username, address)
    if failure_id is None:  # raised once committed: the note and its entry stay
        raise LoginRefused(429, "too many failed logins: try again later", retry_after_s=wait)
    return int(failure_id)


WRONG_CREDENTIALS = "wrong username or password"


def police_post(state: Mapping[str, Any], scope: Mapping[str, Any]) -> str | None:
    """The post this request comes from: the common name of a *post's* certificate (`vigie certs
    post`) presented on the port that demands one — not a service's or a subscriber's of the same
    CA (issue 34). None otherwise."""
    port, server = state.get("police_port"), scope.get("server")
    if port is None or server is None or server[1] != port:
        return None
    name, kind = peer_identity((scope.get("state") or {}).get(PEER_CERTIFICATE))
    return name if kind == POST else None


def police_port_required(roles: Sequence[str], settings: ViewerGatewaySettings) -> bool:
    return settings.police_client_ca is not None and "national_police" in roles


async def login(pool: asyncpg.Pool, settings: ViewerGatewaySettings, *, username: str,
                password: str, totp: str | None, address: str, post: str,
                certified_post: str | None = None,
                totp_key: TotpKey | None = None) -> tuple[str, int]:
    """Check everything, record the outcome in the register, open a session: (token, user id).
    `certified_post` is the post a post's certificate names: it is the session's post, whatever
    the client typed."""
    post = certified_post or post
    attempt = await _reserve_attempt(pool, username, address, settings)
    user = await pool.fetchrow("SELECT * FROM users WHERE username = $1", username)
    # argon2 is deliberately slow: off the event loop, or every login stalls every view.
    ok = await asyncio.to_thread(verify_password, user["password_hash"] if user else None,
                                 password)

    async def fail(status: int, reason: str, outcome: str, **kw: bool) -> LoginRefused:
        await record(pool, Entry(actor=username, action="login", outcome=outcome,
                                 details={"address": address, "post": post}))
        return LoginRefused(status, reason, **kw)

    async def not_a_failure() -> None:
        await pool.execute("DELETE FROM login_failures WHERE id = $1", attempt)

    if user is not None and police_port_required(user["roles"], settings) and \
            certified_post is None:
        # Off their post, a national-police account answers as a wrong password would, right
        # password or not: no oracle for guessing it from anywhere else (issue 34). The register
        # tells the two apart.
        raise await fail(401, WRONG_CREDENTIALS,
                         "no_client_certificate" if ok else "wrong_password")
    if user is None or not ok:
        raise await fail(401, WRONG_CREDENTIALS, "wrong_password")
    if user["disabled"]:
        raise await fail(403, "this account is disabled", "disabled")
    if designation_expired(user["designation_expires"]):
        raise await fail(403, f"your designation expired on {user['designation_expires']}: ask "
                         "the person who designated you to renew it (R8)", "designation_expired")
    if user["totp_secret"] or totp_required(user["roles"]):
        if not user["totp_secret"]:
            raise await fail(403, "a second factor is required for this account and none is "
                             "enrolled: ask an administrator", "totp_not_enrolled")
        if not totp:
            # Not a failure: the client asks for the code (the password was right).
            await not_a_failure()
            raise LoginRefused(401, "enter the code of your authenticator app",
                               totp_required=True)
        try:
            secret = readable_totp(totp_key, username, user["totp_secret"])
        except TotpKeyError:
            # Fail closed: a secret the gateway cannot open accepts no code.
            raise await fail(503, "the second factor cannot be checked: the gateway's TOTP key "
                             "is missing or not the one that sealed it (tell the operator)",
                             "totp_unreadable") from None
        assert secret is not None
        step = totp_step(secret, totp)
        if step is None:
            raise await fail(401, "wrong authenticator code", "wrong_totp", totp_required=True)
        # A code is spent once: whoever saw it (over a shoulder, in a log) cannot reuse it.
        if not await pool.fetchval(
                "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND "
                "(totp_last_step IS NULL OR totp_last_step < $2) RETURNING true",
                user["id"], step):
            raise await fail(401, "this authenticator code was used already: wait for the next "
                             "one", "totp_replayed", totp_required=True)
    await not_a_failure()
    token = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO sessions (token_sha256, user_id, expires_at, address, post) "
            "VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5)",
            token_hash(token), user["id"], settings.session_ttl_s, address, post)
        await record(conn, Entry(actor=username, action="login",
                                 details={"address": address, "post": post}))
    return token, int(user["id"])


SESSION_SQL = """
SELECT u.*, s.token_sha256, s.post FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
"""


async def session_user(pool: asyncpg.Pool, token: str) -> User | None:
    row = await pool.fetchrow(SESSION_SQL, token_hash(token))
    if row is None or row["disabled"] or designation_expired(row["designation_expires"]):
        return None
    return User(id=row["id"], username=row["username"], full_name=row["full_name"],
                roles=tuple(row["roles"]), communes=tuple(row["communes"]),
                designated_by=row["designated_by"], designated_on=row["designated_on"],
                designation_expires=row["designation_expires"], agent_number=row["agent_number"],
                totp_enabled=row["totp_secret"] is not None, session=row["token_sha256"],
                post=row["post"], verbalisation_power=row["verbalisation_power"],
                trained_on=row["trained_on"], must_set_password=not row["password_set_by_owner"])


async def session_user_here(pool: asyncpg.Pool, settings: ViewerGatewaySettings,
                            state: Mapping[str, Any], token: str | None,
                            scope: Mapping[str, Any]) -> User | None:
    """The session's account, unless it is a national-police one reaching the gateway other than
    through the police port (R30: a stolen cookie alone does not open their view)."""
    user = await session_user(pool, token) if token else None
    if user is not None and police_port_required(user.roles, settings) and \
            police_post(state, scope) != user.post:
        return None  # from its own post only: no post's certificate, or another's, opens nothing
    return user


SIGNED_OUT = "not signed in, or the session has ended"
# What a session whose password is its creator's may do: see itself, sign out, set its own.
OWN_PASSWORD_ROUTES = frozenset({("GET", "/api/session"), ("DELETE", "/api/session"),
                                 ("POST", "/api/session/password")})
SET_YOUR_PASSWORD = ("set your own password first: the one you were given opens nothing else "
                     "(POST /api/session/password)")


def needs_own_password(user: User, method: str, path: str) -> bool:
    """Issue 34 (R8): an account whose password someone else chose works for nothing until it
    sets its own."""
    return user.must_set_password and (method, path.rstrip("/")) not in OWN_PASSWORD_ROUTES


async def why_signed_out(pool: asyncpg.Pool, token: str | None) -> str:
    """Why a session's token no longer stands: an agent whose designation expired mid-shift was
    told only « votre session a pris fin » and did not know whom to ask (issue 18)."""
    row = await pool.fetchrow(SESSION_SQL, token_hash(token)) if token else None
    if row is None:
        return SIGNED_OUT
    if row["disabled"]:
        return "this account is disabled"
    return (f"your designation expired on {row['designation_expires']}: ask the person who "
            "designated you to renew it (R8)")


async def logout(pool: asyncpg.Pool, user: User) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE sessions SET revoked_at = now() WHERE token_sha256 = $1",
                           user.session)
        await record(conn, Entry(actor=user.username, action="logout",
                                 details={"post": user.post}))
