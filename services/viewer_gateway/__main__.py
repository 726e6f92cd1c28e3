"""Run the viewer-gateway service: `vigie service viewer-gateway` or
`python -m services.viewer_gateway`."""

from __future__ import annotations

import sys

from vigie.plumbing.log import get_logger
from vigie.plumbing.settings import SettingsError
from vigie.security.accounts import seal_clear_totp_secrets
from vigie.service import Runtime, service_main

from services.viewer_gateway import handlers
from services.viewer_gateway.api import create_app
from services.viewer_gateway.api.deps import Gateway
from services.viewer_gateway.settings import ViewerGatewaySettings

log = get_logger(__name__)


async def work(rt: Runtime, settings: ViewerGatewaySettings) -> None:
    gw: Gateway = rt.state["app"].state.gateway
    if gw.totp_key is not None:  # secrets stored before there was a key: sealed now
        sealed = await seal_clear_totp_secrets(rt.require_pool(), gw.totp_key)
        if sealed:
            log.info("totp_secrets_sealed", accounts=sealed)
    await gw.handover.evaluate_all()
    try:
        # The register's head is signed by the retention service: the gateway, which faces the
        # internet, holds no key that could re-sign a rewritten register (issue 25).
        await handlers.run(pool=rt.require_pool(), handover=gw.handover, settings=settings,
                           stop=rt.stop, alarm_round=gw.alarms.round, notifier=gw.notifier)
    finally:
        await gw.tiles.close()


def app_factory(rt: Runtime, settings: ViewerGatewaySettings):  # type: ignore[no-untyped-def]
    if not rt.common.local_mode and rt.common.totp_key is None:
        # Issue 34: production keeps no TOTP secret in clear in the database.
        raise SettingsError("production's gateway needs VIGIE_TOTP_KEY (openssl rand -hex 32): "
                            "it seals the accounts' TOTP secrets at rest")
    app = create_app(rt, settings)
    rt.state["app"] = app
    return app


def main() -> int:
    return service_main(service="viewer-gateway", settings_cls=ViewerGatewaySettings, work=work,
                        api=app_factory)


if __name__ == "__main__":
    sys.exit(main())
