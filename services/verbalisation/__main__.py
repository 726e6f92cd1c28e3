"""Run the verbalisation service: `vigie service verbalisation` or `python -m services.verbalisation`."""

from __future__ import annotations

import sys

from vigie.service import service_main

from services.verbalisation.handlers import work
from services.verbalisation.settings import VerbalisationSettings


def main() -> int:
    return service_main(service="verbalisation", settings_cls=VerbalisationSettings, work=work)


if __name__ == "__main__":
    sys.exit(main())
