"""Run the retention service: `vigie service retention` or `python -m services.retention`."""

from __future__ import annotations

import sys

from vigie.service import service_main

from services.retention.handlers import run
from services.retention.settings import RetentionSettings


def main() -> int:
    return service_main(service="retention", settings_cls=RetentionSettings, work=run)


if __name__ == "__main__":
    sys.exit(main())
