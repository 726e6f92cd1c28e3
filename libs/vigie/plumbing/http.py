"""The HTTP side every service has: /healthz (alive), /readyz (connected), /metrics, in-process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vigie.plumbing.metrics import exposed_registry

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def add_health_routes(app: FastAPI, *, service: str, readiness: ReadinessCheck,
                      liveness: Callable[[], list[str]] | None = None,
                      metrics: bool = True) -> None:
    """/healthz and /readyz; /metrics too unless it is served on an operations port apart.
    ``liveness`` names the work loops that stopped moving: /healthz fails while there are any."""
    @app.get("/healthz", tags=["health"], summary="The process is alive and its work moves",
             responses={503: {"description": "A work loop is stuck: restart the process"}})
    async def healthz(response: Response) -> dict[str, object]:
        stuck = liveness() if liveness is not None else []
        response.status_code = 503 if stuck else 200
        return {"service": service, "healthy": not stuck, "stuck": stuck}

    @app.get("/readyz", tags=["health"], summary="Connected to everything it needs",
             responses={503: {"description": "Not connected to everything yet"}})
    async def readyz(response: Response) -> dict[str, object]:
        checks = await readiness()
        ready = bool(checks) and all(checks.values())
        response.status_code = 200 if ready else 503
        return {"service": service, "ready": ready, "checks": checks}

    if metrics:
        @app.get("/metrics", tags=["health"], summary="Prometheus metrics",
                 response_class=Response,
                 responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}},
                                  "description": "Prometheus text format"}})
        async def prometheus_metrics() -> Response:
            return Response(generate_latest(exposed_registry()), media_type=CONTENT_TYPE_LATEST)


PEER_CERTIFICATE = "tls_peer_certificate"  # in each request's scope["state"], on a mutual-TLS port


def _with_peer_certificate(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """Uvicorn's HTTP protocol, giving each request the client certificate its connection
    presented (`scope["state"][PEER_CERTIFICATE]`, as `getpeercert()` returns it): ASGI servers
    do not pass it on, and a mutual-TLS port must know *which* certificate, not only that one of
    its CA was shown (issue 34)."""

    class PeerCertificateProtocol(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            peer = ssl_object.getpeercert() if ssl_object is not None else None
            # uvicorn copies app_state into every request's scope: one copy per connection here.
            shared: dict[str, object] = self.app_state  # type: ignore[has-type]
            self.app_state = {**shared, PEER_CERTIFICATE: peer}

    return PeerCertificateProtocol


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handlers: the service's runner owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    def __init__(self, app: FastAPI, *, host: str, port: int, ssl_certfile: str | None = None,
                 ssl_keyfile: str | None = None, client_ca: str | None = None,
                 client_crl: str | None = None, trusted_proxies: str = "") -> None:
        """With `client_ca`, a TLS client certificate signed by it is required (handshake); with
        `client_crl`, one that list revokes is refused. X-Forwarded-For/-Proto are believed
        only from `trusted_proxies` (uvicorn would believe them from 127.0.0.1 by default: any
        local process could then pose as any client)."""
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, ssl_ca_certs=client_ca,
            ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
            http=_with_peer_certificate(AutoHTTPProtocol) if client_ca else "auto",
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=[p.strip() for p in trusted_proxies.split(",") if p.strip()] or None,
        )
        if client_crl:
            config.load()  # builds the SSL context, which the revocation list then joins
            assert config.ssl is not None
            config.ssl.load_verify_locations(cafile=client_crl)
            config.ssl.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        self._server = _Server(config)
        self._host, self._port = host, port
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        # Bind here so that a busy port is a clean OSError (uvicorn would call sys.exit).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        sock.set_inheritable(True)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it could not start (port busy…)
                raise OSError("HTTP server stopped before it started")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=5)
