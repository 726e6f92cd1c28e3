"""Run the retention service: `vigie service retention` or `python -m services.retention`."""

from __future__ import annotations

import sys

from vigie.service import idle_until_stopped, service_main

from services.retention.settings import RetentionSettings


def main() -> int:
    return service_main(service="retention", settings_cls=RetentionSettings, work=idle_until_stopped)


if __name__ == "__main__":
    sys.exit(main())
