"""Named personal accounts (R8): creation with an argon2 password hash."""

from __future__ import annotations

import secrets
from datetime import date

import asyncpg
from argon2 import PasswordHasher

ROLES = ("operator", "supervisor", "national_police", "mask_admin", "admin", "auditor")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


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
) -> int:
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    user_id: int = await conn.fetchval(
        """INSERT INTO users (username, full_name, password_hash, roles, communes,
                              designated_by, designated_on, designation_expires)
           VALUES ($1, $2, $3, $4, $5, $6, current_date, $7) RETURNING id""",
        username, full_name, hash_password(password), roles, communes, designated_by,
        designation_expires,
    )
    return user_id
