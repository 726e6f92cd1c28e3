"""Run the recorder service: `vigie service recorder` or `python -m services.recorder`."""

from __future__ import annotations

import sys

from vigie.service import Runtime, service_main

from services.recorder.handlers import Recorder
from services.recorder.settings import RecorderSettings


async def work(rt: Runtime, settings: RecorderSettings) -> None:
    recorder = Recorder(js=rt.require_js(), names=rt.names, pool=rt.require_pool(),
                        store=rt.require_store(), bucket=rt.buckets.recordings, settings=settings,
                        replica=rt.replica)
    rt.state["recorder"] = recorder
    await recorder.run(rt.stop)


def main() -> int:
    return service_main(service="recorder", settings_cls=RecorderSettings, work=work)


if __name__ == "__main__":
    sys.exit(main())
