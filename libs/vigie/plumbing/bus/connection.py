"""Connecting to NATS: bounded, logged retries at start, then nats-py's own reconnects."""

from __future__ import annotations

import asyncio
import ssl

import nats
from nats.aio.client import Client as NATS
from nats.errors import NoServersError
from nats.js import JetStreamContext

from vigie.plumbing.log import get_logger, redact
from vigie.plumbing.settings import CommonSettings

log = get_logger(__name__)


def tls_context(common: CommonSettings) -> ssl.SSLContext | None:
    """Verify the server against the deployment's CA and present this service's certificate."""
    if common.nats_tls_ca is None:
        return None
    context = ssl.create_default_context(cafile=str(common.nats_tls_ca))
    if common.nats_tls_cert is not None and common.nats_tls_key is not None:
        context.load_cert_chain(str(common.nats_tls_cert), str(common.nats_tls_key))
    return context


def inbox_prefix(user: str | None) -> str:
    """Each NATS user gets inboxes of its own, so that no user may read another's replies."""
    return f"_INBOX_{user}" if user else "_INBOX"


async def connect_nats(
    common: CommonSettings, *, name: str, timeout_s: float | None = None
) -> NATS:
    """Connect with retries for at most ``timeout_s``; afterwards reconnect forever."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (timeout_s or common.connect_timeout_s)
    connected = False

    async def _on_error(exc: Exception) -> None:
        if connected:  # before that, the retry loop below logs each attempt
            log.warning("nats_error", error=redact(str(exc)))

    client: list[NATS] = []

    async def _on_disconnect() -> None:
        if client and (client[0].is_closed or client[0].is_draining):
            return  # closed on purpose: nothing to warn about
        log.warning("nats_disconnected")

    async def _on_reconnect() -> None:
        log.info("nats_reconnected")

    tls = tls_context(common)
    # With a client certificate the certificate is the account (`verify_and_map`): nats-server
    # refuses a connection that also names a user; the user still names its inboxes.
    by_certificate = common.nats_tls_cert is not None
    password = common.nats_password.get_secret_value() if common.nats_password else None
    attempt = 0
    while True:
        attempt += 1
        try:
            # With unlimited reconnects nats-py would retry an initial connect by itself forever:
            # allow one server attempt per call and bound it, so start-up fails clearly.
            nc = await asyncio.wait_for(
                nats.connect(
                    # A cluster: every node's URL, comma-separated; the client moves on to
                    # another node when one dies.
                    servers=[u.strip() for u in common.nats_url.split(",") if u.strip()],
                    name=name,
                    user=None if by_certificate else common.nats_user,
                    password=None if by_certificate else password,
                    inbox_prefix=inbox_prefix(common.nats_user),
                    tls=tls,
                    connect_timeout=2,
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,
                    allow_reconnect=False,
                    error_cb=_on_error,
                    disconnected_cb=_on_disconnect,
                    reconnected_cb=_on_reconnect,
                ),
                timeout=max(deadline - loop.time(), 0.5),
            )
        except (NoServersError, OSError, TimeoutError) as exc:
            if loop.time() >= deadline:
                raise ConnectionError(f"NATS unreachable after {attempt} attempts") from exc
            log.warning("nats_connect_retry", attempt=attempt, error=redact(str(exc)))
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0, max(deadline - loop.time(), 0)))
            continue
        # Connected: from now on, survive server restarts by reconnecting forever.
        client.append(nc)
        nc.options["allow_reconnect"] = True
        connected = True
        return nc


def jetstream(nc: NATS, *, timeout_s: float = 5.0) -> JetStreamContext:
    return nc.jetstream(timeout=timeout_s)
