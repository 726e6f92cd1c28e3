"""The gateway's HTTP API (FastAPI, OpenAPI at /openapi.json): `create_app(rt, settings)`."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from vigie.plumbing.refusals import Refusal
from vigie.service import Runtime

from services.viewer_gateway.alarms import Alarms
from services.viewer_gateway.api import (
    access_copies,
    access_requests,
    alarms,
    bookmarks,
    cameras,
    communes,
    exports,
    holds,
    incidents,
    live,
    masks,
    offences,
    playback,
    public,
    register,
    session,
    users,
    views,
)
from services.viewer_gateway.api.deps import Gateway
from services.viewer_gateway.api.guard import RequestGuard
from services.viewer_gateway.handlers import Handover, Notifier
from services.viewer_gateway.settings import ViewerGatewaySettings
from services.viewer_gateway.tiles import Tiles

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
# The web UI loads only its own files; pictures and video come as blobs from the same origin.
UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' "
    "blob:; connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ROUTERS = (*(m.router for m in (session, communes, cameras, masks, live, playback, bookmarks,
                                alarms, views, users, holds, exports, offences, access_requests,
                                access_copies, register, public, incidents)),
           exports.keys_router)


def create_app(rt: Runtime, settings: ViewerGatewaySettings) -> FastAPI:
    docs = settings.api_docs if settings.api_docs is not None else rt.common.local_mode
    app = FastAPI(
        docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        title="Vigie viewer gateway", version="0.1.0",
        description="Accounts, permissions, hand-over and the register of accesses. Every refusal "
        "is a 4xx with a reason; RTSP URLs and credentials are write-only.")
    notifier = Notifier()
    app.state.gateway = Gateway(rt=rt, settings=settings, notifier=notifier,
                                handover=Handover(rt, notifier), tiles=Tiles(rt),
                                alarms=Alarms(rt, notifier, recorder_late_s=settings.recorder_late_s,
                                              authorisation_warning_days=settings
                                              .authorisation_warning_days,
                                              camera_lost_s=settings.camera_lost_s))
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(Refusal)
    async def _refused(_request: Request, exc: Refusal) -> JSONResponse:
        # Every domain refusal, one way (issue 37): its status from its kind, its code for the
        # UI's French and for police systems, the English reason as `detail`.
        return JSONResponse(exc.problem(), status_code=exc.status)

    @app.exception_handler(asyncpg.DataError)
    async def _refused_value(_request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # A value the database cannot take (out of range, bad encoding): the client's, not ours.
        return JSONResponse({"detail": f"a value was refused: {exc.__class__.__name__}"},
                            status_code=400)

    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes,
                       gateway=app.state.gateway)
    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def _home() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.middleware("http")
    async def _ui_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if request.url.path.startswith("/ui"):
            response.headers.update(UI_HEADERS)
        return response

    return app
