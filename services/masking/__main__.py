"""Run the masking service: `vigie service masking` or `python -m services.masking`."""

from __future__ import annotations

import sys

from services.masking.settings import MaskingSettings
from vigie.service import idle_until_stopped, service_main


def main() -> int:
    return service_main(service="masking", settings_cls=MaskingSettings, work=idle_until_stopped)


if __name__ == "__main__":
    sys.exit(main())
