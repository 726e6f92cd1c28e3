"""PostgreSQL's own programs (pg_dump, pg_restore, initdb…), wherever the distribution put them:
Debian keeps them out of PATH, under /usr/lib/postgresql/<version>/bin."""

from __future__ import annotations

import shutil
from pathlib import Path


class ProgramNotFoundError(RuntimeError):
    pass


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise ProgramNotFoundError(
        f"PostgreSQL's {name} not found (install postgresql, or `make setup`)")
