"""Run the recorder service: `vigie service recorder` or `python -m services.recorder`."""

from __future__ import annotations

import sys
import time

from vigie.cameras.runtime import STUCK_AFTER_S
from vigie.plumbing.log import get_logger
from vigie.records.announced_keys import announce
from vigie.security.signing import SigningKey
from vigie.service import Runtime, service_main

from services.recorder.handlers import Recorder
from services.recorder.settings import RecorderSettings

log = get_logger(__name__)


async def work(rt: Runtime, settings: RecorderSettings) -> None:
    key = None
    if rt.common.recording_key is not None:
        key = SigningKey.from_pem(rt.common.recording_key.get_secret_value())
        await announce(rt.require_pool(), key, purpose="recording", service="recorder")
    else:
        log.warning("no_recording_key", detail="VIGIE_RECORDING_KEY is not set: segments are "
                    "chained but not signed, and exports say so")
    recorder = Recorder(js=rt.require_js(), names=rt.names, pool=rt.require_pool(),
                        store=rt.require_store(), bucket=rt.buckets.recordings, settings=settings,
                        replica=rt.replica, signing_key=key)
    rt.state["recorder"] = recorder
    rt.watch("cameras", lambda: recorder.runtime.last_tick if recorder.runtime else time.monotonic(),
             stuck_after_s=STUCK_AFTER_S)
    await recorder.run(rt.stop)


def main() -> int:
    return service_main(service="recorder", settings_cls=RecorderSettings, work=work)


if __name__ == "__main__":
    sys.exit(main())
