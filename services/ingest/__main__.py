"""Run the ingest service: `vigie service ingest` or `python -m services.ingest`."""

from __future__ import annotations

import sys

from services.ingest.settings import IngestSettings
from vigie.service import idle_until_stopped, service_main


def main() -> int:
    return service_main(service="ingest", settings_cls=IngestSettings, work=idle_until_stopped)


if __name__ == "__main__":
    sys.exit(main())
