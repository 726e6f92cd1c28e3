"""Run the recorder service: `vigie service recorder` or `python -m services.recorder`."""

from __future__ import annotations

import sys

from vigie.service import idle_until_stopped, service_main

from services.recorder.settings import RecorderSettings


def main() -> int:
    return service_main(service="recorder", settings_cls=RecorderSettings, work=idle_until_stopped)


if __name__ == "__main__":
    sys.exit(main())
