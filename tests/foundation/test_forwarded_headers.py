"""Issue 35: the gateway's replicas sit behind a load balancer, which names the client in
X-Forwarded-For; login throttling counts failures per client address. The header is believed only
from the load balancers named in VIGIE_VIEWER_GATEWAY_TRUSTED_PROXIES: uvicorn, left to itself,
believes it from 127.0.0.1 — any process on the gateway's host could then pose as any address,
and lock others out or escape its own throttling (R38)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request
from vigie.plumbing.http import HttpServer

pytestmark = pytest.mark.unit


def _echo() -> FastAPI:
    app = FastAPI()

    @app.get("/who")
    async def who(request: Request) -> dict[str, str | None]:
        return {"client": request.client.host if request.client else None,
                "scheme": request.url.scheme}

    return app


async def _ask(trusted_proxies: str) -> dict[str, str | None]:
    server = HttpServer(_echo(), host="127.0.0.1", port=0, trusted_proxies=trusted_proxies)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            answer = await client.get("/who", headers={"X-Forwarded-For": "203.0.113.7",
                                                       "X-Forwarded-Proto": "https"})
            return answer.json()  # type: ignore[no-any-return]
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_forwarded_headers_are_ignored_unless_the_sender_is_a_trusted_proxy_R38() -> None:
    assert await _ask("") == {"client": "127.0.0.1", "scheme": "http"}
    assert await _ask("10.0.0.0/8") == {"client": "127.0.0.1", "scheme": "http"}
    assert await _ask("127.0.0.1") == {"client": "203.0.113.7", "scheme": "https"}
    assert await _ask("*") == {"client": "203.0.113.7", "scheme": "https"}
