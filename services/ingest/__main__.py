"""Run the ingest service: `vigie service ingest` or `python -m services.ingest`."""

from __future__ import annotations

import sys
import time

from vigie.cameras.runtime import STUCK_AFTER_S
from vigie.service import Runtime, service_main

from services.ingest.api import create_app
from services.ingest.handlers import Ingest
from services.ingest.settings import IngestSettings


async def work(rt: Runtime, settings: IngestSettings) -> None:
    ingest = Ingest(js=rt.require_js(), names=rt.names, pool=rt.require_pool(), settings=settings,
                    replica=rt.replica, nc=rt.nc)
    rt.state["ingest"] = ingest
    rt.watch("cameras", lambda: ingest.runtime.last_tick if ingest.runtime else time.monotonic(),
             stuck_after_s=STUCK_AFTER_S)
    await ingest.run(rt.stop)


def main() -> int:
    return service_main(service="ingest", settings_cls=IngestSettings, work=work,
                        needs=frozenset({"nats", "postgres"}), api=create_app)


if __name__ == "__main__":
    sys.exit(main())
