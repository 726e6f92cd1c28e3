"""Signing in and out, who am I, and the socket that pushes rights changes to open sessions."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from vigie.plumbing.refusals import Refusal
from vigie.records.audit_register import Entry, record
from vigie.security.accounts import check_new_account, hash_password, verify_password

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, UserDep, websocket_user
from services.viewer_gateway.api.models import (
    Designation,
    LoginRefusal,
    LoginRequest,
    Me,
    PasswordChange,
)
from services.viewer_gateway.auth import (
    COOKIE,
    LoginRefused,
    User,
    login,
    logout,
    police_post,
    session_user,
)
from services.viewer_gateway.policy import ACTIONS

router = APIRouter(prefix="/api/session", tags=["session"])


def me(user: User) -> Me:
    return Me(username=user.username, full_name=user.full_name, roles=list(user.roles),
              permissions=[a for a in ACTIONS if a in user.subject.permissions],
              communes=list(user.communes), totp_enabled=user.totp_enabled, post=user.post,
              verbalisation_power=user.verbalisation_power,
              password_change_required=user.must_set_password,
              designation=Designation(designated_by=user.designated_by,
                                      designated_on=user.designated_on,
                                      expires=user.designation_expires,
                                      agent_number=user.agent_number))


@router.post("", summary="Sign in (password, then TOTP where required)", response_model=Me,
             responses={413: PROBLEMS[413],
                        400: {"model": LoginRefusal, "description": "The body is not JSON"},
                        401: {"model": LoginRefusal, "description": "Wrong credentials (and, "
                              "whatever the password, a national-police account off its post's "
                              "certificate, R30), or the TOTP code is needed (totp_required)"},
                        403: {"model": LoginRefusal, "description": "Disabled account, expired "
                              "designation, second factor not enrolled"},
                        429: {"model": LoginRefusal, "description": "Too many failures "
                              "(Retry-After)"}})
async def sign_in(body: LoginRequest, request: Request, gw: GatewayDep) -> Response:
    address = request.client.host if request.client else "unknown"
    try:
        token, _ = await login(gw.pool, gw.settings, username=body.username,
                               password=body.password, totp=body.totp, address=address,
                               post=body.post,
                               certified_post=police_post(gw.rt.state, request.scope),
                               totp_key=gw.totp_key)
    except LoginRefused as refused:
        headers = {"Retry-After": str(refused.retry_after_s)} if refused.retry_after_s else None
        return JSONResponse(LoginRefusal(detail=refused.reason,
                                         totp_required=refused.totp_required).model_dump(),
                            status_code=refused.status, headers=headers)
    user = await session_user(gw.pool, token)
    assert user is not None
    response = JSONResponse(me(user).model_dump(mode="json"))
    response.set_cookie(COOKIE, token, max_age=gw.settings.session_ttl_s, httponly=True,
                        samesite="strict", secure=gw.settings.tls, path="/")
    return response


@router.get("", summary="The signed-in account, its permissions and designation",
            response_model=Me, responses=PROBLEMS)
async def who_am_i(user: UserDep) -> Me:
    return me(user)


@router.delete("", summary="Sign out", status_code=204, responses=PROBLEMS)
async def sign_out(user: UserDep, gw: GatewayDep) -> Response:
    await logout(gw.pool, user)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.websocket("/events")
async def session_events(websocket: WebSocket) -> None:
    """Pushes `rights_changed` (a hand-over switched) and `session_ended` to the open session."""
    user = await websocket_user(websocket)
    if user is None:
        await websocket.close(code=4401, reason="not signed in")
        return
    gw = websocket.app.state.gateway
    await websocket.accept()
    queue = gw.notifier.subscribe(user.id, user.communes)
    receiving: asyncio.Task[str] | None = None
    try:
        await websocket.send_json({"type": "hello", "username": user.username})
        receiving = asyncio.create_task(websocket.receive_text())
        while True:
            getting = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getting, receiving}, return_when=asyncio.FIRST_COMPLETED)
            if receiving in done:
                getting.cancel()
                receiving.result()  # raises WebSocketDisconnect when the client left
                receiving = asyncio.create_task(websocket.receive_text())
                continue
            message = getting.result()
            await websocket.send_json(message)
            if message.get("type") == "session_ended":
                await websocket.close(code=4403, reason=message.get("reason", ""))
                return
    except WebSocketDisconnect:
        pass
    finally:
        gw.notifier.unsubscribe(user.id, queue)
        if receiving is not None:
            receiving.cancel()


@router.post("/password", summary="Set your own password (the first sign-in of an account "
             "whose password its creator chose must)", status_code=204,
             responses={**PROBLEMS, 400: {"description": "The current password is wrong, or the "
                                          "new one is refused"}})
async def set_own_password(body: PasswordChange, user: UserDep, gw: GatewayDep) -> Response:
    row = await gw.pool.fetchrow("SELECT password_hash FROM users WHERE id = $1", user.id)
    if row is None or not await asyncio.to_thread(verify_password, row["password_hash"],
                                                  body.current_password):
        raise Refusal("the current password is wrong", code="password.current_wrong")
    if body.new_password == body.current_password:
        raise Refusal("the new password must differ from the one you were given",
                      code="password.unchanged")
    check_new_account(username=user.username, password=body.new_password,
                      roles=list(user.roles))
    new_hash = await asyncio.to_thread(hash_password, body.new_password)
    async with gw.pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE users SET password_hash = $2, password_set_by_owner = true "
                           "WHERE id = $1", user.id, new_hash)
        # Every other session of the account ends: whoever knew the old password is out.
        await conn.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND "
                           "token_sha256 <> $2 AND revoked_at IS NULL", user.id, user.session)
        await record(conn, Entry(actor=user.username, action="user.password_set",
                                 details={"first": user.must_set_password}))
    return Response(status_code=204)
