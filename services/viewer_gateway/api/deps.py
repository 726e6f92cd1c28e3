"""What every route shares: the gateway's context, the signed-in user, the policy gate."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, HTTPException, Request, WebSocket
from pydantic import BaseModel, Field
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record
from vigie.security.accounts import TotpKey
from vigie.service import Runtime

from services.viewer_gateway.alarms import Alarms
from services.viewer_gateway.auth import (
    COOKIE,
    SET_YOUR_PASSWORD,
    User,
    needs_own_password,
    session_user_here,
    why_signed_out,
)
from services.viewer_gateway.handlers import Handover, Notifier
from services.viewer_gateway.policy import UNTRAINED, Action, CameraState, Decision, decide
from services.viewer_gateway.settings import ViewerGatewaySettings
from services.viewer_gateway.tiles import SeenOnce, Tiles


class Problem(BaseModel):
    """Every refusal: a status code and a reason a person can act on."""

    detail: str = Field(description="Why the request was refused, in English (may be reworded)")
    code: str | None = Field(None, description="A domain refusal's stable code, `<domain>.<reason>` "
                             "(`hold.not_pending`…; `<domain>.refused` when the reason has none "
                             "yet): what a program or a translation keys on (docs/api.md)")
    params: dict[str, str | int | float | None] | None = Field(
        None, description="The values the code's sentence names (a date, a number of days…)")


PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text} for code, text in {
        400: "Refused: the reason says why", 401: "Not signed in, or the session ended",
        403: "Not allowed (the policy's reason)", 404: "No such thing in your communes",
        409: "Conflicts with the current state",
        413: "The request body is larger than the gateway accepts"}.items()}


@dataclass
class Gateway:
    rt: Runtime
    settings: ViewerGatewaySettings
    notifier: Notifier
    handover: Handover
    tiles: Tiles
    alarms: Alarms
    tiles_seen: SeenOnce = field(init=False)  # (session, camera) tile views recorded
    # (user, action, commune) → when a refusal for lack of training was last journaled (R11)
    refusals_journaled: dict[tuple[int, str, str | None], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tiles_seen = SeenOnce(self.settings.session_ttl_s)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.rt.require_pool()

    @property
    def totp_key(self) -> TotpKey | None:
        """What seals the accounts' TOTP secrets at rest (issue 34)."""
        key = self.rt.common.totp_key
        return TotpKey.from_hex(key.get_secret_value()) if key is not None else None


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


GatewayDep = Annotated[Gateway, Depends(gateway)]


async def current_user(request: Request, gw: GatewayDep) -> User:
    checked = getattr(request.state, "user", None)  # RequestGuard looked it up already
    if isinstance(checked, User):
        return checked
    token = request.cookies.get(COOKIE)
    user = await session_user_here(gw.pool, gw.settings, gw.rt.state, token, request.scope)
    if user is None:
        raise HTTPException(401, await why_signed_out(gw.pool, token))
    if needs_own_password(user, request.method, request.url.path):
        raise HTTPException(403, SET_YOUR_PASSWORD)
    return user


async def websocket_user(websocket: WebSocket) -> User | None:
    gw: Gateway = websocket.app.state.gateway
    token = websocket.cookies.get(COOKIE)
    user = await session_user_here(gw.pool, gw.settings, gw.rt.state, token, websocket.scope)
    return None if user is None or user.must_set_password else user


UserDep = Annotated[User, Depends(current_user)]


REFUSAL_EVERY_S = 600.0


async def journal_refusal(gw: Gateway, user: User, action: Action, decision: Decision,
                          commune: str | None = None) -> None:
    """An agent without data-protection training asked for images: journaled (R11), so the
    commune sees who must be trained before they can work."""
    if decision.reason != UNTRAINED:
        return
    # Once per account, action and commune every REFUSAL_EVERY_S: a mosaic polls its tiles each
    # second, and the register is not to fill with the same refusal.
    key, now = (user.id, action, commune), time.monotonic()
    if now - gw.refusals_journaled.get(key, -REFUSAL_EVERY_S) < REFUSAL_EVERY_S:
        return
    gw.refusals_journaled[key] = now
    await record(gw.pool, Entry(actor=user.username, action="access.refused", commune=commune,
                                reason="R11: no training date", details={"action": action}))


def refused(decision: Decision) -> Refusal:
    """A policy decision against the caller, as the refusal the handler answers with (403)."""
    return Refusal(decision.reason, code=decision.code or None, kind="forbidden",
                   **dict(decision.params))


def require(action: Action) -> Callable[..., Awaitable[User]]:
    """The permission gate, before anything else of the request is looked at."""

    async def gate(user: UserDep, gw: GatewayDep) -> User:
        decision = decide(user.subject, action)
        if not decision:
            await journal_refusal(gw, user, action, decision)
            raise refused(decision)
        return user

    return gate


async def camera_row(gw: Gateway, user: User, commune: str, camera: str) -> asyncpg.Record:
    """A camera of the user's communes; the same 404 for another commune's (R9: no hint)."""
    row = await gw.pool.fetchrow(
        "SELECT c.*, m.name AS commune_name FROM cameras c JOIN communes m ON m.slug = c.commune "
        "WHERE c.commune = $1 AND c.slug = $2", commune, camera)
    if row is None or commune not in user.communes:
        raise NotFound(f"no camera {commune}/{camera} in your communes",
                       code="camera.not_found", commune=commune, camera=camera)
    return row


async def allow(gw: Gateway, user: User, action: Action, *, commune: str,
                camera_state: CameraState | None = None) -> None:
    # Outside the account's communes the answer is R9's whatever the commune's state.
    holder = await gw.handover.holder(commune) if commune in user.communes else None
    decision = decide(user.subject, action, commune=commune, holder=holder,  # type: ignore[arg-type]
                      camera_state=camera_state)
    if not decision:
        await journal_refusal(gw, user, action, decision, commune)
        raise refused(decision)


# Users who passed the permission gate (R10), checked before the body is even read.
ConfigurationUser = Annotated[User, Depends(require("configuration"))]
HandoverUser = Annotated[User, Depends(require("handover"))]
UserAdminUser = Annotated[User, Depends(require("user_admin"))]
CommuneAdminUser = Annotated[User, Depends(require("commune_admin"))]
HoldsUser = Annotated[User, Depends(require("holds"))]
ExportUser = Annotated[User, Depends(require("export"))]
AuditUser = Annotated[User, Depends(require("register_audit"))]
PlaybackUser = Annotated[User, Depends(require("playback"))]
LiveUser = Annotated[User, Depends(require("live"))]
MaskAdminUser = Annotated[User, Depends(require("mask_admin"))]
RightsUser = Annotated[User, Depends(require("rights_requests"))]
