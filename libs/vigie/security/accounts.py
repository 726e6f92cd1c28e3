"""Named personal accounts (R8): argon2 password hashes, a designation record, a TOTP second factor
required for administrators and national-police accounts (remote access, R38)."""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vigie.plumbing.refusals import Refusal

ROLES = ("operator", "supervisor", "national_police", "mask_admin", "admin", "auditor",
         "deployment_admin")
TOTP_REQUIRED_ROLES = frozenset({"admin", "national_police", "deployment_admin"})
# Roles that see pictures (live, recordings, unmasked snapshots): given on a designating act the
# register names, and never used with a password someone else chose (issue 34, R8).
IMAGE_ROLES = frozenset({"operator", "supervisor", "national_police", "mask_admin"})
MIN_PASSWORD_LENGTH = 12
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
_hasher = PasswordHasher()
# Verified against when the account does not exist, so that timing does not tell which do.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(Refusal):
    """A refused account operation, with its reason."""

    domain = "account"


class AccountConflict(AccountError):
    """The record's state does not allow it now (HTTP 409)."""

    kind = "conflict"


@dataclass(frozen=True)
class NewUser:
    id: int
    totp_secret: str | None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def image_rights(roles: Sequence[str]) -> frozenset[str]:
    return IMAGE_ROLES & frozenset(roles)


def totp_required(roles: list[str] | tuple[str, ...]) -> bool:
    return bool(TOTP_REQUIRED_ROLES & set(roles))


def new_totp_secret() -> str:
    return pyotp.random_base32()


SEALED = "sealed-v1:"  # a TOTP secret as stored: AES-256-GCM under the gateway's key (issue 34)


class TotpKeyError(ValueError):
    """A sealed TOTP secret and no key, or the wrong one: the second factor cannot be checked."""


class TotpKey:
    """The key that seals the TOTP secrets at rest (`VIGIE_TOTP_KEY`, 64 hex digits): given to
    the gateway alone (and the CLI run in its container), never stored in the database. A dump of
    `users` then holds no usable second factor. Each secret is bound to its account (the
    username is the cipher's associated data): a sealed secret copied onto another account does
    not open."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a TOTP key is 32 bytes (64 hex digits: openssl rand -hex 32)")
        self._cipher = AESGCM(key)

    @classmethod
    def from_hex(cls, text: str) -> TotpKey:
        try:
            return cls(bytes.fromhex(text.strip()))
        except ValueError:
            raise ValueError("VIGIE_TOTP_KEY is 64 hex digits (openssl rand -hex 32)") from None

    def seal(self, username: str, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        body = self._cipher.encrypt(nonce, secret.encode(), username.encode())
        return SEALED + base64.urlsafe_b64encode(nonce + body).decode()

    def open(self, username: str, stored: str) -> str:
        raw = base64.urlsafe_b64decode(stored.removeprefix(SEALED))
        try:
            return self._cipher.decrypt(raw[:12], raw[12:], username.encode()).decode()
        except InvalidTag:
            raise TotpKeyError("this account's TOTP secret does not open with the gateway's key "
                               "(another key, or copied from another account)") from None


def stored_totp(key: TotpKey | None, username: str, secret: str | None) -> str | None:
    """What the database keeps of a new secret: sealed when there is a key (always in
    production), as is in the embedded default without one."""
    return key.seal(username, secret) if key is not None and secret is not None else secret


def readable_totp(key: TotpKey | None, username: str, stored: str | None) -> str | None:
    """The secret a code is checked against; TotpKeyError when it is sealed and cannot be
    opened (fail closed: no code is accepted)."""
    if stored is None or not stored.startswith(SEALED):
        return stored
    if key is None:
        raise TotpKeyError("TOTP secrets are sealed and the gateway has no VIGIE_TOTP_KEY")
    return key.open(username, stored)


async def seal_clear_totp_secrets(pool: asyncpg.Pool, key: TotpKey) -> int:
    """Seal the secrets stored before there was a key (an upgrade, the embedded default):
    at the gateway's start. Returns how many."""
    rows = await pool.fetch("SELECT id, username, totp_secret FROM users "
                            "WHERE totp_secret IS NOT NULL AND totp_secret NOT LIKE 'sealed-v1:%'")
    for row in rows:
        await pool.execute("UPDATE users SET totp_secret = $2 WHERE id = $1 AND totp_secret = $3",
                           row["id"], key.seal(row["username"], row["totp_secret"]),
                           row["totp_secret"])
    return len(rows)


def totp_uri(username: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Vigie")


def totp_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step whose code this is (the current one, or one either side for clock drift),
    None when it matches none. The caller accepts a step once: a code seen is a code spent."""
    totp = pyotp.TOTP(secret)
    code = code.strip()
    if not code.isdigit():
        return None
    current = int((time.time() if now is None else now) // totp.interval)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(secret: str, code: str) -> bool:
    return totp_step(secret, code) is not None


def check_roles(roles: Sequence[str]) -> None:
    if not roles:
        raise AccountError("at least one role", code="account.no_role")
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise AccountError(f"unknown roles: {', '.join(sorted(unknown))}",
                           code="account.unknown_roles", roles=", ".join(sorted(unknown)))
    if "national_police" in roles and len(set(roles)) > 1:
        # Whoever holds the commune, such an account would watch it (R9, R27).
        raise AccountError("a national-police account holds no other role: municipal and "
                           "national police use separate accounts", code="account.national_police_alone")


def check_new_account(*, username: str, password: str, roles: list[str]) -> None:
    if not USERNAME.match(username):
        raise AccountError("username: lower-case letters, digits, '.', '_' or '-', 2 to 63",
                           code="account.username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters",
                           code="account.password_too_short", characters=MIN_PASSWORD_LENGTH)
    check_roles(roles)


def check_training(trained_on: date | None) -> None:
    """R11: the data-protection training's date, when given, is a day that has passed."""
    if trained_on is not None and trained_on > date.today():
        raise AccountError("trained_on: the training's date cannot be in the future",
                           code="account.trained_in_future")


async def create_user(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    username: str,
    full_name: str,
    password: str,
    roles: list[str],
    communes: list[str],
    designated_by: str,
    designation_expires: date | None = None,
    agent_number: str | None = None,
    with_totp: bool = False,
    trained_on: date | None = None,
    totp_key: TotpKey | None = None,
    designation_act: str | None = None,
    owner_sets_password: bool = False,
) -> NewUser:
    """`owner_sets_password`: the password is the creator's choice, good only for the first
    sign-in, which must set the account's own."""
    check_new_account(username=username, password=password, roles=roles)
    if not designated_by.strip():
        raise AccountError("designated_by: who designated the agent (R8)",
                           code="account.designated_by_required")
    known = {r["slug"] for r in await conn.fetch("SELECT slug FROM communes")}
    if set(communes) - known:
        raise AccountError(f"unknown communes: {', '.join(sorted(set(communes) - known))}",
                           code="account.unknown_communes",
                           communes=", ".join(sorted(set(communes) - known)))
    if await conn.fetchval("SELECT true FROM users WHERE username = $1", username):
        raise AccountConflict(f"username {username!r} is taken", code="account.username_taken",
                              username=username)
    check_training(trained_on)
    secret = new_totp_secret() if with_totp or totp_required(roles) else None
    user_id: int = await conn.fetchval(
        """INSERT INTO users (username, full_name, password_hash, roles, communes, designated_by,
                              designated_on, designation_expires, agent_number, totp_secret,
                              trained_on, designation_act, password_set_by_owner)
           VALUES ($1, $2, $3, $4, $5, $6, current_date, $7, $8, $9, $10, $11, $12)
           RETURNING id""",
        username, full_name, hash_password(password), roles, communes, designated_by.strip(),
        designation_expires, agent_number, stored_totp(totp_key, username, secret), trained_on,
        designation_act, not owner_sets_password,
    )
    return NewUser(user_id, secret)
