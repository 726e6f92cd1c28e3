"""Run the viewer-gateway service: `vigie service viewer-gateway` or `python -m services.viewer_gateway`."""

from __future__ import annotations

import sys

from vigie.service import idle_until_stopped, service_main

from services.viewer_gateway.settings import ViewerGatewaySettings


def main() -> int:
    return service_main(service="viewer-gateway", settings_cls=ViewerGatewaySettings, work=idle_until_stopped)


if __name__ == "__main__":
    sys.exit(main())
