"""Checks made before any route reads a request (issue 17): a body over the limit is refused with
413 however it is sent (declared length or chunks), and a request carrying a body to an API route is
refused with 401 when no session stands behind it, before its body is parsed — an anonymous
caller learns nothing of the routes' validation and costs no parsing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.viewer_gateway.auth import (
    COOKIE,
    SET_YOUR_PASSWORD,
    needs_own_password,
    session_user_here,
    why_signed_out,
)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANONYMOUS_ROUTES = frozenset({("POST", "/api/session")})  # signing in is what makes a session


class _TooLarge(HTTPException):
    """Raised from the body stream: FastAPI passes an HTTPException on as it is (a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, gateway: Any) -> None:
        self.app, self.max_body_bytes, self.gateway = app, max_body_bytes, gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _answer(send, 413, f"the request body is larger than {self.max_body_bytes} bytes")
            return
        method, path = scope["method"], scope["path"]
        if method in BODY_METHODS and path.startswith("/api/") and \
                (method, path.rstrip("/")) not in ANONYMOUS_ROUTES:
            token = _cookie(scope, COOKIE)
            gw = self.gateway
            user = await session_user_here(gw.pool, gw.settings, gw.rt.state, token, scope)
            if user is None:
                await _answer(send, 401, await why_signed_out(self.gateway.pool, token))
                return
            if needs_own_password(user, method, path):
                await _answer(send, 403, SET_YOUR_PASSWORD)
                return
            scope.setdefault("state", {})["user"] = user  # the route's dependency reuses it

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _TooLarge(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge as exc:  # read by something other than a FastAPI route
            if not started:
                await _answer(send, exc.status_code, str(exc.detail))
