"""The cameras a request names, found among its commune's (issue 37: the same check was written in
holds, exports, access requests, authorisations and road signs). A camera of another commune is
not found either: saying it exists elsewhere would tell what the caller may not know (R9)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from vigie.plumbing.refusals import Refusal


async def named_cameras(conn: asyncpg.Connection | asyncpg.Pool, commune: str,
                        slugs: Iterable[str], *, refusal: type[Refusal]) -> dict[str, int]:
    """slug → id of each camera named, all of them the commune's, or `refusal` (the caller's
    domain: HoldError, SignError…) with the code `camera.unknown` and those not found."""
    wanted = sorted(set(slugs))
    rows = await conn.fetch("SELECT id, slug FROM cameras WHERE commune = $1 "
                            "AND slug = ANY($2::text[])", commune, wanted)
    found = {r["slug"]: r["id"] for r in rows}
    if unknown := [s for s in wanted if s not in found]:
        raise refusal(f"unknown cameras in {commune}: {', '.join(unknown)}",
                      code="camera.unknown", cameras=", ".join(unknown), commune=commune)
    return found
