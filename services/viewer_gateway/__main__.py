"""Run the viewer-gateway service: `vigie service viewer-gateway` or
`python -m services.viewer_gateway`."""

from __future__ import annotations

import sys

from vigie.log import get_logger
from vigie.service import Runtime, service_main

from services.viewer_gateway import handlers
from services.viewer_gateway.api import create_app
from services.viewer_gateway.api.deps import Gateway
from services.viewer_gateway.settings import ViewerGatewaySettings

log = get_logger(__name__)


async def work(rt: Runtime, settings: ViewerGatewaySettings) -> None:
    gw: Gateway = rt.state["app"].state.gateway
    await gw.handover.evaluate_all()
    try:
        # The register's head is signed by the retention service: the gateway, which faces the
        # internet, holds no key that could re-sign a rewritten register (issue 25).
        await handlers.run(pool=rt.require_pool(), handover=gw.handover, settings=settings,
                           stop=rt.stop, alarm_round=gw.alarms.round)
    finally:
        await gw.tiles.close()


def app_factory(rt: Runtime, settings: ViewerGatewaySettings):  # type: ignore[no-untyped-def]
    app = create_app(rt, settings)
    rt.state["app"] = app
    return app


def main() -> int:
    return service_main(service="viewer-gateway", settings_cls=ViewerGatewaySettings, work=work,
                        api=app_factory)


if __name__ == "__main__":
    sys.exit(main())
