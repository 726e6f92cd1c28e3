"""The gateway's HTTP API (FastAPI, OpenAPI at /openapi.json): `create_app(rt, settings)`."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from vigie.service import Runtime

from services.viewer_gateway.api import (
    cameras,
    communes,
    holds,
    live,
    playback,
    register,
    session,
    users,
)
from services.viewer_gateway.api.deps import Gateway
from services.viewer_gateway.handlers import Handover, Notifier
from services.viewer_gateway.settings import ViewerGatewaySettings
from services.viewer_gateway.tiles import Tiles

ROUTERS = tuple(m.router for m in (session, communes, cameras, live, playback, users, holds,
                                   register))


def create_app(rt: Runtime, settings: ViewerGatewaySettings) -> FastAPI:
    app = FastAPI(
        title="Vigie viewer gateway", version="0.1.0",
        description="Accounts, permissions, hand-over and the register of accesses. Every refusal "
        "is a 4xx with a reason; RTSP URLs and credentials are write-only.")
    notifier = Notifier()
    app.state.gateway = Gateway(rt=rt, settings=settings, notifier=notifier,
                                handover=Handover(rt, notifier), tiles=Tiles(rt))
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(asyncpg.DataError)
    async def _refused_value(_request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # A value the database cannot take (out of range, bad encoding): the client's, not ours.
        return JSONResponse({"detail": f"a value was refused: {exc.__class__.__name__}"},
                            status_code=400)

    return app
