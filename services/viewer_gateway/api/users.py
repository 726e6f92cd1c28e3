"""Accounts (R8, R10): created, changed and disabled by administrators, each change in the register.
A disabled account's open sessions end at once."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import segno
from fastapi import APIRouter
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record
from vigie.security.accounts import (
    check_roles,
    check_training,
    create_user,
    image_rights,
    new_totp_secret,
    stored_totp,
    totp_uri,
)

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, UserAdminUser
from services.viewer_gateway.api.models import (
    Designation,
    TotpEnrolment,
    UserChange,
    UserCreate,
    UserCreatedView,
    UserView,
    VerbalisationListing,
)
from services.viewer_gateway.auth import User

router = APIRouter(prefix="/api/users", tags=["users"])


def _view(row: asyncpg.Record) -> UserView:
    expires = row["designation_expires"]
    return UserView(
        username=row["username"], full_name=row["full_name"], roles=list(row["roles"]),
        communes=list(row["communes"]), disabled=row["disabled"],
        totp_enabled=row["totp_secret"] is not None,
        designation=Designation(designated_by=row["designated_by"],
                                designated_on=row["designated_on"], expires=expires,
                                agent_number=row["agent_number"]),
        designation_expired=expires is not None and expires < datetime.now(UTC).date(),
        verbalisation=VerbalisationListing(power=row["verbalisation_power"],
                                           designation=row["verbalisation_designation"])
        if row["verbalisation_power"] else None, trained_on=row["trained_on"])


def _within_scope(admin: User, communes: list[str]) -> None:
    outside = sorted(set(communes) - set(admin.communes))
    if outside:
        raise Refusal(f"you cannot grant communes you are not designated for: "
                      f"{', '.join(outside)} (R9)",
                      code="account.communes_outside_yours", communes=', '.join(outside),
                            kind="forbidden")


def _manages(admin: User, row: asyncpg.Record) -> bool:
    """An administrator manages the accounts whose every commune is one of theirs (R9): an
    account that also serves another commune is that commune's administrators' business too."""
    communes = set(row["communes"])
    return bool(communes) and communes <= set(admin.communes)


async def _row(gw: GatewayDep, admin: User, username: str) -> asyncpg.Record:
    row = await gw.pool.fetchrow("SELECT * FROM users WHERE username = $1", username)
    if row is None or not (_manages(admin, row) or row["username"] == admin.username):
        raise NotFound(f"no user {username} in your communes",
                       code="account.not_found", username=username)
    return row


def _above_you(admin: User, row: asyncpg.Record) -> None:
    """A deployment administrator's account is not a commune administrator's to change, disable or
    re-enrol, even when it is designated for that commune only (it created it): that would hand
    the deployment's onboarding to one commune (R9)."""
    if "deployment_admin" in row["roles"] and "deployment_admin" not in admin.roles:
        raise Refusal("a deployment administrator's account is changed by another "
                      "deployment administrator, or on the server (vigie user)",
                      code="account.deployment_admin_only", kind="forbidden")


@router.get("", summary="The accounts of your communes", responses=PROBLEMS)
async def list_users(user: UserAdminUser, gw: GatewayDep) -> list[UserView]:
    rows = await gw.pool.fetch("SELECT * FROM users ORDER BY username")
    return [_view(r) for r in rows if _manages(user, r) or r["username"] == user.username]


@router.post("", status_code=201, summary="Create a named personal account (R8)",
             responses=PROBLEMS)
async def add_user(body: UserCreate, user: UserAdminUser, gw: GatewayDep) -> UserCreatedView:
    _within_scope(user, body.communes)
    check_roles(body.roles)
    seeing = image_rights(body.roles)
    if seeing and not body.designation_act:
        raise Refusal(f"an account with image rights ({', '.join(sorted(seeing))}) "
                      "is created on a designating act: give designation_act (R8)",
                      code="account.designation_act_required")
    async with gw.pool.acquire() as conn, conn.transaction():
        made = await create_user(
            conn, username=body.username, full_name=body.full_name, password=body.password,
            roles=list(body.roles), communes=body.communes, designated_by=body.designated_by,
            designation_expires=body.designation_expires, agent_number=body.agent_number,
            with_totp=body.with_totp, trained_on=body.trained_on, totp_key=gw.totp_key,
            designation_act=body.designation_act,
            # The administrator typed it: for image rights, good for the first sign-in only
            # (issue 34).
            owner_sets_password=bool(seeing))
        await record(conn, Entry(actor=user.username, action="user.created",
                                 details={"username": body.username, "roles": body.roles,
                                          "communes": body.communes,
                                          "designated_by": body.designated_by,
                                          "designation_act": body.designation_act,
                                          "image_rights": sorted(seeing),
                                          "trained_on": body.trained_on}))
    view = _view(await _row(gw, user, body.username))
    return UserCreatedView(user=view, totp=_enrolment(body.username, made.totp_secret)
                           if made.totp_secret else None)


def _enrolment(username: str, secret: str) -> TotpEnrolment:
    """The secret once, as text and as a QR code the authenticator app scans."""
    uri = totp_uri(username, secret)
    return TotpEnrolment(username=username, secret=secret, uri=uri,
                         qr_code=segno.make(uri, error="m").png_data_uri(scale=5, border=4))


def _image_rights_widened(row: asyncpg.Record, body: UserChange) -> str | None:
    """What a change adds to the pictures an account sees: roles with image rights it did not
    have, or communes for an account that sees pictures. None when it adds nothing."""
    before_roles = image_rights(row["roles"])
    after_roles = image_rights(body.roles if body.roles is not None else row["roles"])
    added_roles = sorted(after_roles - before_roles)
    added_communes = sorted(set(body.communes or ()) - set(row["communes"])) if after_roles \
        else []
    what = [*(f"role {r}" for r in added_roles), *(f"commune {c}" for c in added_communes)]
    return ", ".join(what) or None


@router.patch("/{username}", summary="Change roles, communes, designation; disable",
              responses=PROBLEMS)
async def change_user(username: str, body: UserChange, user: UserAdminUser,
                      gw: GatewayDep) -> UserView:
    row = await _row(gw, user, username)
    _above_you(user, row)
    if username == user.username and (body.disabled or body.roles is not None
                                      or body.communes is not None
                                      or "designation_expires" in body.model_fields_set
                                      or "verbalisation" in body.model_fields_set
                                      or "trained_on" in body.model_fields_set
                                      or body.designated_by is not None):
        raise Refusal("you cannot change your own roles, communes, designation or "
                      "training, nor disable yourself: ask another administrator",
                      code="account.own_rights", kind="conflict")
    check_training(body.trained_on)
    if body.communes is not None:
        _within_scope(user, body.communes)
    if body.roles is not None:
        check_roles(body.roles)
    widened = _image_rights_widened(row, body)
    if widened and not body.designation_act:
        raise Refusal(f"wider image rights ({widened}) are given on a designating "
                      "act: give designation_act (R8)",
                      code="account.wider_rights_need_act")
    # An explicit null for a column that cannot be empty means "no change".
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items()
               if k != "verbalisation"
               and (v is not None or k in ("designation_expires", "agent_number", "trained_on"))}
    if "verbalisation" in body.model_fields_set:  # R32: listed (power, designation) or not
        listing = body.verbalisation
        changes["verbalisation_power"] = listing.power if listing else None
        changes["verbalisation_designation"] = listing.designation if listing else None
    if not changes:
        return _view(row)
    async with gw.pool.acquire() as conn, conn.transaction():
        # One statement: the columns are the model's fields (not user text), and a listing's
        # power and designation change together (a constraint ties them).
        sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
        await conn.execute(f"UPDATE users SET {sets} WHERE id = $1", row["id"], *changes.values())
        if body.disabled:
            await conn.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = $1 "
                               "AND revoked_at IS NULL", row["id"])
        await record(conn, Entry(actor=user.username, action="user.changed",
                                 details={"username": username, **changes,
                                          **({"image_rights_widened": widened} if widened
                                             else {})}))
    if body.disabled or body.roles is not None or body.communes is not None:
        gw.notifier.to_user(row["id"], {"type": "session_ended" if body.disabled
                                        else "rights_changed",
                                        "reason": "your account was changed by an administrator"})
    return _view(await _row(gw, user, username))


@router.post("/{username}/totp", summary="Enrol (or reset) the account's TOTP second factor",
             responses=PROBLEMS)
async def enrol_totp(username: str, user: UserAdminUser, gw: GatewayDep) -> TotpEnrolment:
    row = await _row(gw, user, username)
    _above_you(user, row)
    if username == user.username:
        # A stolen session must not be able to take over the second factor as well.
        raise Refusal("you cannot reset your own second factor: ask another "
                      "administrator",
                      code="account.own_second_factor", kind="conflict")
    secret = new_totp_secret()
    async with gw.pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE users SET totp_secret = $2 WHERE id = $1", row["id"],
                           stored_totp(gw.totp_key, username, secret))
        await record(conn, Entry(actor=user.username, action="user.totp_enrolled",
                                 details={"username": username}))
    return _enrolment(username, secret)
